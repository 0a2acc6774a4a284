"""Throw-away workspaces: repo configs with overrides, trained end to end (tests, benches)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from models.configs import small_overrides, task_labels, with_overrides

REPO = Path(__file__).resolve().parents[1]


def make_workspace(root: Path, task: str, overrides: dict[str, Any] | None = None) -> Path:
    """The repo's configs under root, configs/<task>.yaml updated with overrides (2 levels;
    models/configs.py with_overrides); None: the config's own `small` block (seconds)."""
    shutil.copytree(REPO / "configs", root / "configs", dirs_exist_ok=True)
    path = root / "configs" / f"{task}.yaml"
    if overrides is None:
        overrides = small_overrides(path)
    cfg = with_overrides(yaml.safe_load(path.read_text(encoding="utf-8")), overrides)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    _serve_only(root / "configs" / "platform.yaml", task)
    return root


def _serve_only(path: Path, task: str) -> None:
    """The workspace's service is ready (/readyz) with the champions of the tasks made in this
    workspace alone, not every listed task (configs/.sandbox-tasks remembers them across
    calls)."""
    made = path.parent / ".sandbox-tasks"
    tasks = sorted({*(made.read_text().split() if made.is_file() else []), task})
    made.write_text("\n".join(tasks) + "\n")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["tasks"] = {t: task_labels()[t] for t in tasks}  # the repo's list, cut to these
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


def build_champion(root: Path, task_name: str, say: Callable[[str], None] | None = None,
                   ) -> Path:
    """generate -> train -> export -> promote one task in the workspace at root."""
    from training.data import write_generated
    from training.pipeline import export, train
    from training.registry import promote
    from training.workspace import Workspace

    ws = Workspace.load(root)
    task = ws.task(task_name)
    for stage in (write_generated, train, export):
        t0 = time.perf_counter()
        stage(ws, task, progress=False)
        if say:
            say(f"workspace: {stage.__name__} done in {time.perf_counter() - t0:.1f} s")
    promote(ws, task)
    return root


def build_champion_in_child(root: Path, task_name: str) -> Path:
    """build_champion in a fresh process with OMP_WAIT_POLICY=PASSIVE, leaving this process's
    OpenMP settings (and any measurement made in it) untouched."""
    ctx = multiprocessing.get_context("spawn")
    before = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        child = ctx.Process(target=build_champion, args=(root, task_name),
                            name=f"kyodo-build-{task_name}")
        child.start()
    finally:
        if before is None:
            os.environ.pop("OMP_WAIT_POLICY")
        else:
            os.environ["OMP_WAIT_POLICY"] = before
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"building the {task_name} workspace failed "
                           f"(exit code {child.exitcode})")
    return root
