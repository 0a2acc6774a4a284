"""How kyodo runs: the `kyodo` CLI, data I/O, MLflow tracking and registry, ONNX export."""
