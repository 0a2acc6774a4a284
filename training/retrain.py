"""`kyodo retrain <task>`: staff feedback -> next data version (DVC) -> train -> export ->
gated promote, reporting what changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from models.task import Task
from training.data import frame_path
from training.pipeline import export, train
from training.registry import PromotionRefused, promote
from training.workspace import Workspace


def _store_file(ws: Workspace) -> Path | None:
    """The service's SQLite file, or None when the service has recorded nothing yet (with
    KYODO_DATABASE_URL set, Store uses that database whatever the path)."""
    from serving.store.sqldb import database_url

    db = ws.path("state") / "kyodo.db"
    return db if db.is_file() or database_url() else None


def apply_claim_feedback(ws: Workspace, task: Task) -> dict[str, dict[str, int]]:
    """Reviewer outcomes recorded by the service -> data/claim_screening/labels/<code>.csv."""
    from models.claim_screening.feedback import merge_feedback
    from serving.store import Store

    db = _store_file(ws)
    if db is None:
        return {}
    out: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for code in Store(db).export_labels(task.name, Path(tmp)):
            path = frame_path(ws, task, "labels", code)
            labels = pd.read_csv(path, dtype=str, keep_default_na=False)
            feedback = pd.read_csv(Path(tmp) / f"{code}.csv", dtype=str, keep_default_na=False)
            merged, out[code] = merge_feedback(labels, feedback)
            merged.to_csv(path, index=False, lineterminator="\n")
    return out


def apply_road_corrections(ws: Workspace, task: Task) -> dict[str, dict[str, int]]:
    """Road crews' corrections -> their photos and tile labels added to data/road_damage/
    (a photo corrected again replaces its earlier rows)."""
    from serving.store import Store
    from training.data import append_tenant
    from training.road_export import KEYS, corrections_frames

    db = _store_file(ws)
    if db is None:
        return {}
    photos = Store(db).road_training_photos()
    out: dict[str, dict[str, int]] = {}
    for code, frames in corrections_frames(photos).items():
        append_tenant(ws, task, code, frames, KEYS)
        out[code] = {"changed": len(frames["photos"]), "tiles": len(frames["tiles"])}
    return out


FEEDBACK = {"claim_screening": apply_claim_feedback, "road_damage": apply_road_corrections}


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
    feedback = FEEDBACK[task.name](ws, task) if task.name in FEEDBACK else {}
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
