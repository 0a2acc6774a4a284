"""Package a registered ONNX version into the BentoML model store for serving."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from training import tracking
from training.workspace import Workspace


def bento_tag(task: str, version: str, run_id: str) -> str:
    """BentoML tag of a registered MLflow version; the training run's id keeps version 1 of two
    workspaces sharing a BentoML store (tests, benches, a second checkout) apart."""
    return f"{task}:v{version}-{run_id[:8]}"


def publish(ws: Workspace, task: str, version: str, history: list[dict] | None = None) -> str:
    """Copy the version's ONNX model and assets into BentoML and point serving at it; a
    running service follows the pointer (serving/lifecycle.py) and shows `history`."""
    import bentoml
    import mlflow

    mv = tracking.client().get_model_version(task, version)
    tag = bento_tag(task, version, mv.tags.get("run_id", "norun"))
    try:
        bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=tmp))
            meta = {k: v for k, v in mv.tags.items()}
            with bentoml.models.create(tag, labels={"task": task, "mlflow_version": version},
                                       metadata=meta) as ref:
                shutil.copy(local / "model.onnx", Path(ref.path) / "model.onnx")
                for extra in (local / "extra_files").glob("*"):
                    shutil.copy(extra, Path(ref.path) / extra.name)
                (Path(ref.path) / "meta.json").write_text(json.dumps(
                    {"task": task, "version": version, **meta}, ensure_ascii=False))
    pointer = ws.path("state") / "champions.json"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(pointer.read_text()) if pointer.is_file() else {}
    current[task] = {"tag": tag, "version": version,
                     **({"history": history} if history is not None else {})}
    tmp_path = pointer.with_suffix(".tmp")
    tmp_path.write_text(json.dumps(current, indent=2))
    tmp_path.replace(pointer)  # atomic, so a reading service never sees half a file
    return tag
