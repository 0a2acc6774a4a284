"""generate -> train -> export -> promote -> rollback on tiny data with a temp MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.registry import PromotionRefused, list_models, promote, read_champions, rollback
from training.workspace import Workspace

KEYS = {"task", "model_version", "overall", "per_tenant", "pooling", "headline"}


def test_metrics_json_shape(trained_root: Path) -> None:
    metrics = json.loads((trained_root / "reports/claim_screening/metrics.json").read_text())
    assert set(metrics) >= KEYS
    assert metrics["task"] == "claim_screening" and metrics["model_version"] == "1"
    head = metrics["headline"]
    assert set(head) == {"metric", "value", "oracle", "baseline", "baseline_name"}
    assert 0 < head["value"] <= head["oracle"]
    assert len(metrics["per_tenant"]) == 13
    assert set(metrics["pooling"]["402303"]) == {"held_out", "pooled", "local"}
    assert metrics["overall"]["recovered_points"] == head["value"]


def test_mlflow_run_has_metrics_plots_and_models(trained_root: Path) -> None:
    import mlflow

    ws = Workspace.load(trained_root)
    mlflow.set_tracking_uri(ws.tracking_uri())
    evaluation = json.loads((trained_root / "build/claim_screening/evaluation.json").read_text())
    run = mlflow.get_run(evaluation["run_id"])
    assert "overall_recovered_points" in run.data.metrics
    assert "tenant_402303_recovered_points" in run.data.metrics
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"plots", "native", "parity.json", "evaluation.json"} <= arts
    plots = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(
        run.info.run_id, "plots")}
    assert {"precision_recall.png", "recovered_vs_capacity.png", "pooling_gain.png"} <= plots
    assert str(trained_root / "mlflow") in run.info.artifact_uri


def test_registry_alias_and_serving_pointer(trained_root: Path) -> None:
    ws = Workspace.load(trained_root)
    rows = list_models(ws, ["claim_screening"])
    assert rows[0]["version"] == "1" and "champion" in rows[0]["aliases"]
    evaluation = json.loads((trained_root / "build/claim_screening/evaluation.json").read_text())
    tag = read_champions(ws)["claim_screening"]["tag"]
    assert tag == f"claim_screening:v1-{evaluation['run_id'][:8]}"


def test_gate_promotes_better_refuses_worse_and_rollback_restores(tmp_path: Path) -> None:
    """weak v1 -> champion; normal v2 beats it; weak v3 is refused; rollback restores v1."""
    from tests.conftest import make_workspace
    from training.data import write_generated
    from training.pipeline import export, train

    weak = {"generate": {"total_claims": 6000},
            "model": {"n_estimators": 10, "num_leaves": 4, "min_child_samples": 500}}
    normal = {"generate": {"total_claims": 6000}, "model": {"n_estimators": 80}}
    root = make_workspace(tmp_path / "ws", weak)
    ws = Workspace.load(root)
    task = ws.task("claim_screening")
    write_generated(ws, task, progress=False)

    def version_with(overrides: dict) -> str:
        make_workspace_configs(root, overrides)
        train(ws, task, progress=False)
        return export(ws, task, progress=False)["version"]

    assert version_with(weak) == "1"
    assert promote(ws, task)["promoted"]
    assert version_with(normal) == "2"
    result = promote(ws, task)
    assert result["promoted"] and result["previous"] == "1"
    assert read_champions(ws)["claim_screening"]["version"] == "2"
    assert version_with(weak) == "3"
    with pytest.raises(PromotionRefused, match="does not beat champion 2"):
        promote(ws, task)
    back = rollback(ws, task)
    assert back["version"] == "1" and back["rollback_of"] == "2"
    assert read_champions(ws)["claim_screening"]["version"] == "1"
    with pytest.raises(PromotionRefused, match="no previous champion"):
        rollback(ws, task)


def make_workspace_configs(root: Path, overrides: dict) -> None:
    """Rewrite the workspace's task config with overrides (data stays as generated)."""
    import shutil

    from tests.conftest import make_workspace

    shutil.rmtree(root / "configs")
    make_workspace(root, overrides)


def test_champion_the_current_code_cannot_score_is_replaced_with_a_logged_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrade: the champion was exported by older code (38 features) and the new data's
    holdout differs, so it must be re-scored; it cannot be, so the candidate is promoted with
    `compared: false` and the reason, instead of the promote step crashing."""
    import dataclasses

    import lightgbm as lgb
    import numpy as np

    from tests.conftest import make_workspace
    from training import registry
    from training.data import write_generated
    from training.pipeline import export, train

    small = {"generate": {"total_claims": 6000}, "model": {"n_estimators": 20}}
    root = make_workspace(tmp_path / "ws", small)
    ws = Workspace.load(root)
    task = ws.task("claim_screening")
    write_generated(ws, task, progress=False)
    train(ws, task, progress=False)
    assert export(ws, task, progress=False)["version"] == "1"
    assert promote(ws, task)["promoted"]

    make_workspace_configs(root, {**small, "generate": {"total_claims": 7000}})
    write_generated(ws, task, progress=False)  # new data: a new holdout, v1 must be re-scored
    train(ws, task, progress=False)
    assert export(ws, task, progress=False)["version"] == "2"

    real_native = registry._native_model

    def old_schema(name: str, version: str) -> object:
        """v1 as older code pickled it: boosters fitted on 38 features, not today's."""
        model = real_native(name, version)
        rng = np.random.default_rng(0)
        old = lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(
            rng.normal(size=(50, 38)), rng.integers(0, 2, 50))
        return dataclasses.replace(model, classifier=old)

    monkeypatch.setattr(registry, "_native_model", old_schema)
    result = promote(ws, task)
    assert result["promoted"] and result["previous"] == "1" and result["version"] == "2"
    assert result["compared"] is False
    assert "champion 1 cannot be scored by the current code" in result["reason"]
    assert read_champions(ws)["claim_screening"]["version"] == "2"
