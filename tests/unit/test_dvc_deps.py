"""dvc.yaml's deps cover every first-party module a stage's code can import, so that changing one
reruns `dvc repro` (issue 18: hand-listed deps had drifted from the code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from models.task import registry
from tests.conftest import REPO

FIRST_PARTY = ("models", "training", "serving")
TASKS = tuple(registry())
# Where each stage's command starts (training/cli.py's train and export commands), besides the
# task's own package. Imports are followed statically, function-level ones included.
STAGE_ENTRIES = {"train": ("training/pipeline.py", "training/cluster.py"),
                 "export": ("training/pipeline.py", "training/export.py")}


def _module_file(dotted: str) -> Path | None:
    path = REPO.joinpath(*dotted.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def _type_only(tree: ast.Module) -> set[ast.AST]:
    """The nodes under `if TYPE_CHECKING:`: imported for the type checker only, never run, so
    they cannot change what a stage makes (models/task.py names serving.store's Store there)."""
    blocks = [n for n in ast.walk(tree) if isinstance(n, ast.If)
              and ast.unparse(n.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")]
    return {inner for b in blocks for stmt in b.body for inner in ast.walk(stmt)}


def _imported(path: Path) -> set[str]:
    """Dotted first-party names imported anywhere in the file (relative imports resolved),
    except under `if TYPE_CHECKING:`."""
    own = list(path.relative_to(REPO).with_suffix("").parts)
    package = own[:-1]
    names: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_only(tree)
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] in FIRST_PARTY}


def _reachable(entries: list[Path], task: str) -> set[Path]:
    """Files reachable from the entries. Other tasks' packages are skipped: the registry imports
    them lazily by name, and a stage runs only its own task's code."""
    others = {f"models.{t}" for t in TASKS if t != task}
    seen: set[Path] = set()
    todo = list(entries)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported(path):
            parts = name.split(".")
            if ".".join(parts[:2]) in others:
                continue
            todo += [f for i in range(1, len(parts) + 1)
                     if (f := _module_file(".".join(parts[:i]))) and f not in seen]
    return seen


def _deps(stage: str, task: str) -> list[Path]:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["do"]["deps"]
    return [REPO / d.replace("${key}", task) for d in spec]


@pytest.mark.parametrize("stage", sorted(STAGE_ENTRIES))
@pytest.mark.parametrize("task", TASKS)
def test_stage_deps_cover_imported_code(stage: str, task: str) -> None:
    entries = [REPO / e for e in STAGE_ENTRIES[stage]]
    entries += sorted((REPO / "models" / task).rglob("*.py"))
    deps = _deps(stage, task)
    missing = sorted(
        str(f.relative_to(REPO)) for f in _reachable(entries, task)
        if f.read_text(encoding="utf-8").strip()  # an empty __init__.py cannot change a result
        and not any(f == d or d in f.parents for d in deps))
    assert not missing, f"dvc.yaml {stage}@{task} does not depend on: {', '.join(missing)}"


def test_reachable_follows_function_level_imports() -> None:
    """The scan sees imports inside functions (training/cli.py imports its stages lazily)."""
    reached = _reachable([REPO / "training" / "cli.py"], "claim_screening")
    assert REPO / "training" / "pipeline.py" in reached
    assert REPO / "models" / "road_damage" / "task.py" not in reached


def test_type_checking_imports_are_not_stage_code() -> None:
    """models/task.py names serving.store only for the type checker; the registry it imports
    at run time is followed."""
    imported = _imported(REPO / "models" / "task.py")
    assert "models.configs" in imported
    assert not {n for n in imported if n.startswith("serving")}


def test_both_stages_run_for_the_one_list_of_tasks() -> None:
    """Both stages loop over configs/platform.yaml's tasks (tests/unit/test_tasks_list.py checks
    what DVC resolves that to)."""
    doc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert doc["vars"] == ["configs/platform.yaml:tasks"]
    for stage in STAGE_ENTRIES:
        assert doc["stages"][stage]["foreach"] == "${tasks}"
