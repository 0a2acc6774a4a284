"""MLflow tracking and registry: SQLite under mlflow/ by default; MLFLOW_TRACKING_URI (e.g.
PostgreSQL) and KYODO_ARTIFACT_ROOT (e.g. S3) select servers without code changes."""

from __future__ import annotations

import json
import os
from typing import Any

from training.workspace import Workspace

CHAMPION = "champion"


def setup(ws: Workspace, task: str) -> str:
    """Point MLflow at the workspace store and return the task's experiment id."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    store = ws.path("mlflow")
    store.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(ws.tracking_uri())
    mlflow.set_registry_uri(ws.tracking_uri())
    exp = mlflow.get_experiment_by_name(task)
    if exp is not None:
        return exp.experiment_id
    # KYODO_ARTIFACT_ROOT (e.g. s3://bucket/kyodo, with MLFLOW_S3_ENDPOINT_URL for S3-compatible
    # storage) puts artifacts where every machine can read them; the default stays in mlflow/
    remote = os.environ.get("KYODO_ARTIFACT_ROOT")
    location = f"{remote.rstrip('/')}/{task}" if remote else (store / "artifacts" / task).as_uri()
    return mlflow.create_experiment(task, artifact_location=location)


def flatten(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    """Nested metric dicts as flat MLflow metric names (a.b.c -> a_b_c), numbers only."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(name, value))
        elif isinstance(value, int | float) and value == value and abs(value) != float("inf"):
            out[name] = float(value)
    return out


def client():
    """An MlflowClient on the configured URIs."""
    from mlflow import MlflowClient

    return MlflowClient()


def champion_history(task: str) -> list[dict]:
    """Past and current champions, oldest first (kept as a registered-model tag)."""
    model = client().get_registered_model(task)
    return json.loads(model.tags.get("champion_history", "[]"))


def set_champion_history(task: str, history: list[dict]) -> None:
    """Store the champion history on the registered model."""
    client().set_registered_model_tag(task, "champion_history", json.dumps(history))
