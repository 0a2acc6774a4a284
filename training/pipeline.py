"""Pipeline stages: train -> export -> promote / rollback. Each stage is one CLI command."""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from models import drift
from models.task import C, Frames, M, Task
from training import data as D
from training import report, tracking
from training.export import check_parity, combine_graphs
from training.pooling import fit_or_none, headline
from training.workspace import Workspace


def build_dir(ws: Workspace, task: Task) -> Path:
    """Stage outputs of a task: native model, evaluation, ONNX package."""
    return ws.root / "build" / task.name


def holdout_fingerprint(test: Frames, task: Task) -> str:
    """Identity of a holdout set, rows and labels, so champion and challenger compare on the
    same data (reviewer feedback that relabels held-out rows makes it a new holdout)."""
    digest = hashlib.sha256()
    for name in task.frames:
        digest.update(pd.util.hash_pandas_object(test[name], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def train(ws: Workspace, task: Task, progress: bool = True) -> dict[str, Any]:
    """Fit pooled and local-only models, evaluate on held-out data, log everything to MLflow."""
    import mlflow

    cfg = ws.task_config(task)
    exp = tracking.setup(ws, task.name)
    data = D.load_pooled(ws, task, progress)
    train_part, test = task.split(cfg, data)
    run_name = f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with mlflow.start_run(experiment_id=exp, run_name=run_name) as run:
        mlflow.log_params(tracking.flatten("", cfg.model_dump()))
        mlflow.log_dict(cfg.model_dump(), "config.json")
        t0 = time.perf_counter()
        model = task.fit(cfg, train_part, progress=progress, seed=ws.platform.seed)
        fit_s = time.perf_counter() - t0
        evaluation = task.evaluate(cfg, model, test)
        evaluation["pooling"] = pooling(ws, task, cfg, train_part, test, model, progress)
        evaluation["fit_seconds"] = fit_s
        evaluation["holdout"] = holdout_fingerprint(test, task)
        evaluation["run_id"] = run.info.run_id
        mlflow.log_metrics(tracking.flatten("", {"overall": evaluation["overall"],
                                                 "tenant": evaluation["per_tenant"]}))
        mlflow.log_metric("fit_seconds", fit_s)
        mlflow.set_tag("holdout", evaluation["holdout"])
        out = build_dir(ws, task)
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.pkl").write_bytes(pickle.dumps(model))
        (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False))
        for path in report.plots(task, model, test, evaluation, out / "plots"):
            mlflow.log_artifact(str(path), "plots")
        mlflow.log_artifact(str(out / "model.pkl"), "native")
        mlflow.log_dict(evaluation, "evaluation.json")
    return evaluation


def pooling(ws: Workspace, task: Task[C, M], cfg: C, train_part: Frames, test: Frames,
            pooled_model: M, progress: bool) -> dict[str, dict[str, float | None]]:
    """Per tenant: the pooled model's headline vs a model trained on that tenant's data alone
    (fitted with task.comparison_config), both on the tenant's held-out units (`held_out`: how
    many, so a comparison on a handful reads as such)."""
    out: dict[str, dict[str, float | None]] = {}
    first, unit = task.frames[0], task.units[0]
    codes = sorted(test[first]["tenant_code"].unique())
    local_cfg = task.comparison_config(cfg)
    for code in tqdm(codes, desc="local-only models", disable=not progress):
        local_test = task.select(test, [code])
        local = fit_or_none(task, local_cfg, task.select(train_part, [code]), ws.platform.seed)
        out[code] = {"held_out": int(local_test[first][unit].nunique()),
                     "pooled": headline(task, cfg, pooled_model, local_test),
                     "local": None if local is None else headline(task, cfg, local, local_test)}
    return out


def drift_reference(task: Task[Any, M], model: M, inputs: dict[str, np.ndarray], session: Any,
                    ) -> bytes:
    """drift.json: bins and shares of the held-out ONNX inputs and scores the model was
    validated on; serving counts requests into the same bins (models/drift.py)."""
    X = drift.sample(np.asarray(next(iter(inputs.values()))), 20000)
    names = task.feature_names(model)
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {session.get_inputs()[0].name: X}), strict=True))
    if X.ndim != 2:  # image tensors: only the score's drift is tracked
        names = []
    cols = X[:, :len(names)] if names else np.empty((len(X), 0))
    ref = drift.reference(cols, drift.score_of(outputs), names)
    return json.dumps(ref).encode()


def export(ws: Workspace, task: Task, progress: bool = True) -> dict[str, Any]:
    """ONNX export with the parity gate; log to the training run and register a version."""
    import mlflow
    import onnxruntime as ort

    cfg = ws.task_config(task)
    out = build_dir(ws, task)
    evaluation = json.loads((out / "evaluation.json").read_text())
    model = pickle.loads((out / "model.pkl").read_bytes())
    onnx_model = combine_graphs(task.to_onnx(model, ws.platform.onnx_opset))
    _, test = task.split(cfg, D.load_pooled(ws, task, progress))
    inputs, native = task.parity_inputs(model, test)
    session = ort.InferenceSession(onnx_model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    parity = check_parity(native, task.onnx_outputs(session, inputs), cfg.parity_tolerance,
                          cfg.parity_max_mismatch_share)
    tracking.setup(ws, task.name)
    package = out / "onnx"
    package.mkdir(parents=True, exist_ok=True)
    (package / "model.onnx").write_bytes(onnx_model.SerializeToString())
    assets = {**task.assets(model), drift.REFERENCE: drift_reference(task, model, inputs, session)}
    for name, blob in assets.items():
        (package / name).write_bytes(blob)
    with mlflow.start_run(run_id=evaluation["run_id"]):
        mlflow.log_dict(parity.to_dict(), "parity.json")
        sample = np.asarray(next(iter(inputs.values())))[:5]
        # one self-contained file: serving copies model.onnx alone (CNN weights would
        # otherwise go to a side file)
        info = mlflow.onnx.log_model(onnx_model, name="onnx", registered_model_name=task.name,
                                     input_example=sample, save_as_external_data=False,
                                     extra_files=[
                                         str(package / n) for n in assets])
    version = str(info.registered_model_version)
    client = tracking.client()
    tags = {"holdout": evaluation["holdout"], "headline_metric": evaluation["headline"]["metric"],
            "headline_value": str(evaluation["headline"]["value"]),
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run_id": evaluation["run_id"]}
    for k, v in tags.items():
        client.set_model_version_tag(task.name, version, k, v)
    meta = {"task": task.name, "version": version, **tags, "parity": parity.to_dict()}
    (package / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    metrics = report.write_metrics(ws, task, evaluation, version)
    return {"version": version, "parity": parity.to_dict(), "metrics": metrics}
