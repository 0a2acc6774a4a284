"""`kyodo retrain <task>`: staff feedback -> next data version (DVC) -> train -> export ->
gated promote, reporting what changed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from models.task import Feedback, Task
from training.data import TaskFolder
from training.pipeline import export, train
from training.registry import PromotionRefused, promote
from training.workspace import Workspace


def _store_file(ws: Workspace) -> Path | None:
    """The service's SQLite file, or None when the service has recorded nothing yet (with
    KYODO_DATABASE_URL set, Store uses that database whatever the path)."""
    from serving.store.sqldb import database_url

    db = ws.path("state") / "kyodo.db"
    return db if db.is_file() or database_url() else None


def apply_feedback(ws: Workspace, task: Task) -> Feedback:
    """The task's feedback hook (models/task.py Task.apply_feedback) over the service's store
    and the workspace's data folder; {} when the service has recorded nothing yet."""
    from serving.store import Store

    db = _store_file(ws)
    return {} if db is None else task.apply_feedback(Store(db), TaskFolder(ws, task))


def data_version(ws: Workspace) -> str | None:
    """`dvc add data` when the workspace is a DVC project; the new data.dvc md5."""
    if not (ws.root / ".dvc").is_dir() or shutil.which("dvc") is None:
        return None
    subprocess.run(["dvc", "add", "-q", "data"], cwd=ws.root, check=True)
    return yaml.safe_load((ws.root / "data.dvc").read_text())["outs"][0]["md5"]


def _metrics(ws: Workspace, task: Task) -> dict[str, Any]:
    path = ws.path("reports") / task.name / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_stages(ws: Workspace, task: Task, dvc: bool, progress: bool,
               ) -> tuple[dict[str, Any], str]:
    """train -> export: through `dvc repro` in a DVC project (so dvc.lock records which data
    version made the model; nothing reruns if nothing changed), else directly."""
    stages = ws.root / "dvc.yaml"
    if dvc and stages.is_file() and task.name in stages.read_text(encoding="utf-8"):
        subprocess.run(["dvc", "repro", f"export@{task.name}"], cwd=ws.root, check=True)
        evaluation = json.loads((ws.root / "build" / task.name / "evaluation.json").read_text())
        return evaluation, str(_metrics(ws, task)["model_version"])
    evaluation = train(ws, task, progress=progress)
    return evaluation, export(ws, task, progress=progress)["version"]


def retrain(ws: Workspace, task: Task, who: str = "cli", progress: bool = True,
            ) -> dict[str, Any]:
    """Feedback into the data, a new data version, train + export, and the promotion gate."""
    before = _metrics(ws, task)
    feedback = apply_feedback(ws, task)
    md5 = data_version(ws)
    evaluation, version = run_stages(ws, task, md5 is not None, progress)
    try:
        decision = promote(ws, task, version, who=who)
    except PromotionRefused as exc:
        decision = {"promoted": False, "version": version, "reason": str(exc)}
    old = before.get("pooling", {})
    per_tenant = {code: {"before": old.get(code, {}).get("pooled"), "after": r["pooled"]}
                  for code, r in evaluation["pooling"].items()}
    return {
        "task": task.name,
        "feedback": feedback,
        "labels_changed": sum(c["changed"] for c in feedback.values()),
        "data_md5": md5,
        "holdout_changed": before.get("holdout") != evaluation["holdout"],
        "headline": {"metric": evaluation["headline"]["metric"],
                     "before": before.get("headline", {}).get("value"),
                     "after": evaluation["headline"]["value"]},
        "candidate_version": version,
        "decision": decision,
        "per_tenant": per_tenant,
    }
