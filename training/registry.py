"""Promotion gate, rollback and the model list, on MLflow registry aliases (not stages)."""

from __future__ import annotations

import json
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

from models.task import Task
from training import data as D
from training import package, tracking
from training.pipeline import holdout_fingerprint
from training.workspace import Workspace


class PromotionRefused(RuntimeError):
    """The candidate does not beat the current champion on the same holdout."""


def _version_value(task: str, version: str) -> tuple[float, str]:
    mv = tracking.client().get_model_version(task, version)
    return float(mv.tags["headline_value"]), mv.tags.get("holdout", "")


def _champion_on(ws: Workspace, task: Task, version: str, holdout: str) -> float:
    """The champion's headline on the candidate's holdout, re-evaluating if holdouts differ."""
    value, its_holdout = _version_value(task.name, version)
    if its_holdout == holdout:
        return value
    import mlflow

    run_id = tracking.client().get_model_version(task.name, version).tags["run_id"]
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="native/model.pkl",
                                                   dst_path=tmp)
        model = pickle.loads(Path(path).read_bytes())
    cfg = ws.task_config(task)
    _, test = task.split(cfg, D.load_pooled(ws, task, progress=False))
    if holdout_fingerprint(test, task) != holdout:
        raise PromotionRefused("the candidate's holdout is not the current data's; retrain first")
    return float(task.evaluate(cfg, model, test)["headline"]["value"])


def promote(ws: Workspace, task: Task, version: str | None = None, who: str = "cli",
            ) -> dict[str, Any]:
    """Move alias 'champion' to `version` (default: latest) if it beats the current champion."""
    tracking.setup(ws, task.name)
    client = tracking.client()
    versions = client.search_model_versions(f"name='{task.name}'")
    if not versions:
        raise PromotionRefused(f"no registered versions of {task.name}; run `kyodo export` first")
    version = version or str(max(int(v.version) for v in versions))
    value, holdout = _version_value(task.name, version)
    history = tracking.champion_history(task.name)
    current = history[-1]["version"] if history else None
    if current == version:
        package.publish(ws, task.name, version, history)
        return {"promoted": False, "version": version, "reason": "already champion"}
    if current is not None:
        incumbent = _champion_on(ws, task, current, holdout)
        if value <= incumbent:
            raise PromotionRefused(f"version {version} ({value:.4g}) does not beat champion "
                                   f"{current} ({incumbent:.4g}) on the same holdout")
    client.set_registered_model_alias(task.name, tracking.CHAMPION, version)
    entry = {"version": version, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "by": who,
             "metric": client.get_model_version(task.name, version).tags["headline_metric"],
             "value": value}
    tracking.set_champion_history(task.name, [*history, entry])
    package.publish(ws, task.name, version, [*history, entry])
    return {"promoted": True, **entry, "previous": current}


def rollback(ws: Workspace, task: Task, who: str = "cli") -> dict[str, Any]:
    """Restore the previous champion; the history keeps the rollback as its own entry."""
    tracking.setup(ws, task.name)
    history = tracking.champion_history(task.name)
    if len(history) < 2:
        raise PromotionRefused(f"{task.name} has no previous champion to roll back to")
    previous = history[-2]
    client = tracking.client()
    client.set_registered_model_alias(task.name, tracking.CHAMPION, previous["version"])
    entry = {**previous, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "by": who,
             "rollback_of": history[-1]["version"]}
    tracking.set_champion_history(task.name, [*history[:-2], entry])
    package.publish(ws, task.name, previous["version"], [*history[:-2], entry])
    return entry


def list_models(ws: Workspace, tasks: list[str]) -> list[dict[str, Any]]:
    """Every registered version of the given tasks with aliases and headline."""
    rows = []
    for name in tasks:
        tracking.setup(ws, name)
        client = tracking.client()
        for found in client.search_model_versions(f"name='{name}'"):
            v = client.get_model_version(name, found.version)  # search omits aliases
            rows.append({"task": name, "version": str(v.version), "aliases": list(v.aliases),
                         "metric": v.tags.get("headline_metric", ""),
                         "value": v.tags.get("headline_value", ""),
                         "trained_at": v.tags.get("trained_at", "")})
    return sorted(rows, key=lambda r: (r["task"], int(r["version"])))


def champions_file(ws: Workspace) -> Path:
    """state/champions.json: which packaged version serving should load per task."""
    return ws.path("state") / "champions.json"


def read_champions(ws: Workspace) -> dict[str, Any]:
    """The serving pointer file, empty when nothing is promoted."""
    path = champions_file(ws)
    return json.loads(path.read_text()) if path.is_file() else {}
