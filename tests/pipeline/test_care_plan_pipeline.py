"""care_plan end to end on tiny data: generate -> train -> export (parity) -> promote."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.care_plan.features import encode_inputs
from models.care_plan.plans import Catalogue, Constraints
from models.care_plan.recommend import Advisor, OnnxPredictor
from models.care_plan.schema import validate_frame


def test_evaluation_reports_accuracy_regret_and_headline(care_root: Path) -> None:
    ev = json.loads((care_root / "build/care_plan/evaluation.json").read_text())
    o = ev["overall"]
    assert 0 < o["brier_change"] < 0.667  # better than always predicting 1/3 each
    assert o["auc_worsen"] > 0.6
    assert abs(o["mean_predicted_worsen"] - o["observed_worsen_rate"]) < 0.08
    truth = o["true_p_improve_or_maintain"]
    assert truth["oracle_best"] >= truth["recommended"] > truth["typical_plan"]
    assert o["share_recommended_ge_typical"] > 0.7
    assert set(ev["per_tenant"]) == {"232017", "152021", "382108", "382060"}
    h = ev["headline"]
    assert h["metric"] == "mean_true_p_improve_or_maintain_recommended"
    assert h["baseline_name"] == "typical plan for the care level"
    assert h["oracle"] >= h["value"] > h["baseline"]
    assert set(ev["pooling"]) == set(ev["per_tenant"])
    plots = care_root / "build/care_plan/plots"
    assert (plots / "reliability_worsen.png").is_file() and (plots / "regret_hist.png").is_file()
    metrics = json.loads((care_root / "reports/care_plan/metrics.json").read_text())
    assert metrics["headline"] == h


def test_onnx_package_matches_native_model_on_candidates(care_root: Path) -> None:
    package = care_root / "build/care_plan/onnx"
    meta = json.loads((package / "meta.json").read_text())
    assert meta["parity"]["passed"]
    assets = json.loads((package / "plan.json").read_text(encoding="utf-8"))
    model = pickle.loads((care_root / "build/care_plan/model.pkl").read_bytes())
    opened = [ort.InferenceSession(str(package / n), providers=["CPUExecutionProvider"])
              for n in ("model.onnx", "rank.onnx")]
    cat = Catalogue.from_dict(assets["catalogue"])
    persons = validate_frame("persons", _first_rows(care_root))
    onnx = Advisor(cat, assets, OnnxPredictor(opened[0], assets["classes"], opened[1]))
    native = Advisor(cat, assets, model.predict)
    inputs = encode_inputs(persons)
    for i in range(3):
        a = onnx.suggest(inputs[i:i + 1], Constraints())
        b = native.suggest(inputs[i:i + 1], Constraints())
        assert [p["plan"] for p in a["plans"]] == [p["plan"] for p in b["plans"]]
        np.testing.assert_allclose([p["p_worsen"] for p in a["plans"]],
                                   [p["p_worsen"] for p in b["plans"]], atol=1e-3)
    champions = json.loads((care_root / "state/champions.json").read_text())
    assert champions["care_plan"]["version"] == meta["version"]


def _first_rows(root: Path):
    import pandas as pd

    return pd.read_csv(root / "data/care_plan/382060.csv", dtype=str,
                       keep_default_na=False).head(5)


def test_bootstrap_metric_is_the_headline_on_every_resample(care_root: Path) -> None:
    """The pooling report's bootstrap reuses each held-out person's recommendation
    (CarePlan.bootstrap_metric) instead of recommending again per resample: on resamples of
    the largest municipality's holdout, where the evaluated subset (first `eval_persons` by
    id) is a part of the resample, it gives evaluate_model's headline to the last bit."""
    from training.data import load_pooled
    from training.pooling import resample
    from training.workspace import Workspace

    ws = Workspace.load(care_root)
    task = ws.task("care_plan")
    cfg = ws.task_config(task).model_copy(update={"eval_persons": 100})
    model = pickle.loads((care_root / "build/care_plan/model.pkl").read_bytes())
    _, test = task.split(cfg, load_pooled(ws, task, progress=False))
    largest = test["persons"]["tenant_code"].value_counts().index[0]
    local = task.select(test, [largest])
    assert len(local["persons"]) > 100  # the subset is a part: its choice is exercised
    on_resample = task.bootstrap_metric(cfg, model, local)
    rng = np.random.default_rng(7)
    for _ in range(3):
        sample = resample(task, local, rng)
        name, expected = task.pooling_metric(cfg, model, sample)
        assert name == "mean_true_p_improve_or_maintain_recommended"
        assert on_resample(sample) == expected
