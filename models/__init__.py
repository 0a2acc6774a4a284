"""What kyodo learns: the Task contract and one sub-package per task."""
