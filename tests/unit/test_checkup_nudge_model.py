"""checkup_nudge model: split, fit, evaluate on synthetic truth, ONNX export with parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from models.checkup_nudge.arms import ARMS
from models.checkup_nudge.scoring import OnnxArmPredictor, plan_outreach, score_residents
from models.checkup_nudge.task import CheckupNudge, CheckupNudgeConfig, NudgeModel
from models.configs import load_task_config
from models.task import Frames, get_task
from tests.conftest import REPO
from training.export import check_parity, combine_graphs

TASK = CheckupNudge()
SMALL = {"generate": {"total_residents": 9000, "min_residents": 150},
         "model": {"n_estimators": 40, "min_child_samples": 50}, "bootstrap": 50}


class _Tenant:
    def __init__(self, code: str, population: int) -> None:
        self.code, self.population = code, population


def small_cfg(**over: object) -> CheckupNudgeConfig:
    return CheckupNudgeConfig.model_validate({**SMALL, **over})


@pytest.fixture(scope="module")
def data() -> Frames:
    tenants = [_Tenant("472018", 317_000), _Tenant("121002", 980_000),
               _Tenant("382108", 35_000), _Tenant("472051", 100_000)]
    per = TASK.generate(small_cfg(), tenants, 11)  # type: ignore[arg-type]
    return {f: pd.concat([p[f] for p in per.values()], ignore_index=True) for f in TASK.frames}


@pytest.fixture(scope="module")
def parts(data: Frames) -> tuple[Frames, Frames]:
    return TASK.split(small_cfg(), data)


@pytest.fixture(scope="module")
def models(parts: tuple[Frames, Frames]) -> dict[str, NudgeModel]:
    return {learner: TASK.fit(small_cfg(learner=learner), parts[0], seed=3)
            for learner in ("t", "s", "dr")}


def test_registered_and_repo_config_loads() -> None:
    assert isinstance(get_task("checkup_nudge"), CheckupNudge)
    cfg = load_task_config(REPO / "configs" / "checkup_nudge.yaml", CheckupNudgeConfig)
    assert cfg.costs.costs()["standard"] == 100 and cfg.costs.costs()["none"] == 0
    with pytest.raises(ValueError, match="unknown arms"):
        CheckupNudgeConfig.model_validate({"costs": {"per_arm": {"sms": 3}}})


def test_split_holds_out_residents_per_tenant(data: Frames, parts: tuple[Frames, Frames]) -> None:
    train, test = parts
    held = set(test["residents"]["resident_id"])
    assert not held & set(train["residents"]["resident_id"])
    assert set(test["campaigns"]["resident_id"]) == held == set(test["oracle"]["resident_id"])
    assert len(train["campaigns"]) + len(test["campaigns"]) == len(data["campaigns"])
    share = test["residents"].groupby("tenant_code").size() / data["residents"].groupby(
        "tenant_code").size()
    assert ((share > 0.17) & (share < 0.23)).all()
    again = TASK.split(small_cfg(), data)[1]["residents"]["resident_id"]
    assert again.tolist() == test["residents"]["resident_id"].tolist()


@pytest.mark.parametrize("learner", ["t", "s", "dr"])
def test_policy_beats_both_baselines_on_the_truth(models: dict[str, NudgeModel],
                                                  parts: tuple[Frames, Frames],
                                                  learner: str) -> None:
    ev = TASK.evaluate(small_cfg(), models[learner], parts[1])
    truth, head = ev["overall"]["true_gain"], ev["headline"]
    assert head["value"] == truth["policy"] and head["oracle"] == truth["oracle"]
    assert head["baseline"] == truth["highest_probability"]
    # issue 16: "policy" is the recommendation; on 9,000 residents training may not show the
    # model beats the best simple policy and then recommends that one. The model's own list
    # ("uplift_model") must still beat both baselines on the truth.
    model_gain = truth["uplift_model"]
    assert model_gain > truth["standard_to_all"] and model_gain > head["baseline"]
    choice = ev["overall"]["policy_choice"]
    assert choice["kind"] in ("model", "simple") and choice["message_ja"]
    if choice["kind"] == "model":
        assert truth["policy"] == model_gain
    else:  # the simple policy is ranked by a simple score, never roster order
        assert choice["order"] in ("baseline_high", "baseline_low", "baseline_middle")
    # the rule is applied once, to the pooled data: the validation share of every
    # municipality's training residents together, not one municipality's
    train_residents = parts[0]["residents"]
    largest = int(train_residents.groupby("tenant_code").size().max())
    assert 0.17 * len(train_residents) < choice["validation_residents"] < 0.23 * len(
        train_residents)
    assert choice["validation_residents"] > 0.23 * largest
    assert {k.split(":")[0] for k in choice["simple_candidates_per_1000"]} == {
        "policy", "baseline_high", "baseline_low", "baseline_middle"}
    assert truth["policy"] <= truth["oracle"] and model_gain <= truth["oracle"]
    assert set(ev["per_tenant"]) == {"472018", "121002", "382108", "472051"}
    tenant_budget = sum(t["budget_yen"] for t in ev["per_tenant"].values())
    assert ev["overall"]["budget_yen"] == pytest.approx(tenant_budget)
    assert ev["overall"]["spent_yen"] <= tenant_budget
    pv = ev["overall"]["policy_value"]
    assert pv["policy"]["ci_low"] <= pv["policy"]["estimate"] <= pv["policy"]["ci_high"]
    assert set(ev["overall"]["qini"]) == set(ARMS[1:])


def test_auto_chooses_by_validation_policy_value(parts: tuple[Frames, Frames]) -> None:
    model = TASK.fit(small_cfg(learner="auto", candidates=["t", "s"]), parts[0], seed=3)
    scores = model.uplift.selection
    assert set(scores) == {"t", "s"} and model.uplift.learner == max(scores, key=scores.get)
    assert json.loads(TASK.assets(model)["nudge.json"])["learner"] == model.uplift.learner


def test_small_tenant_and_real_data_without_oracle(models: dict[str, NudgeModel],
                                                   parts: tuple[Frames, Frames]) -> None:
    small = TASK.select(parts[1], ["382108"])
    ev = TASK.evaluate(small_cfg(), models["t"], small)
    assert list(ev["per_tenant"]) == ["382108"] and ev["overall"]["residents"] < 60
    real = {**parts[1], "oracle": parts[1]["oracle"].iloc[:0]}
    ev = TASK.evaluate(small_cfg(), models["t"], real)
    assert ev["headline"]["oracle"] is None and ev["overall"]["true_gain"] is None
    assert ev["headline"]["value"] == ev["overall"]["policy_value"]["policy"]["estimate"]
    with pytest.raises(ValueError, match="campaign rows"):
        TASK.fit(small_cfg(min_rows_per_arm=500), TASK.select(parts[0], ["382108"]))


@pytest.mark.parametrize("learner", ["t", "s", "dr"])
def test_onnx_parity_and_serving_path(models: dict[str, NudgeModel],
                                      parts: tuple[Frames, Frames], learner: str) -> None:
    model, test = models[learner], parts[1]
    onnx_model = combine_graphs(TASK.to_onnx(model, 15))
    session = ort.InferenceSession(onnx_model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    inputs, native = TASK.parity_inputs(model, test)
    report = check_parity(native, TASK.onnx_outputs(session, inputs), 1e-4, 0.001)
    assert report.passed and report.rows >= len(test["residents"])
    assets = json.loads(TASK.assets(model)["nudge.json"])
    scored = score_residents(test["residents"], assets, OnnxArmPredictor(session))
    from models.checkup_nudge.features import build_features

    X = build_features(test["residents"], assets)
    # the CLI scores the arms on several threads: the same numbers
    assert np.array_equal(OnnxArmPredictor(session, workers=4)(X), OnnxArmPredictor(session)(X))

    expected = model.predict(build_features(test["residents"], model.assets))
    diff = np.abs(scored[[f"p_{a}" for a in ARMS]].to_numpy() - expected)
    assert (diff > 1e-4).mean() <= 0.001  # float32 thresholds in ONNX: rare boundary rows
    listing, summary = plan_outreach(scored, 50_000, assets["costs"])
    assert summary["mailed"] == 500 and listing["mailed"].sum() == 500


def test_cli_plan_writes_the_outreach_list(models: dict[str, NudgeModel],
                                           parts: tuple[Frames, Frames], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from training.checkup_nudge_cli import nudge_app

    model, test = models["s"], parts[1]
    (tmp_path / "model.onnx").write_bytes(combine_graphs(TASK.to_onnx(model, 15))
                                          .SerializeToString())
    (tmp_path / "nudge.json").write_bytes(TASK.assets(model)["nudge.json"])
    roster = tmp_path / "roster.csv"
    roster.write_bytes(test["residents"].to_csv(index=False, lineterminator="\r\n")
                       .encode("cp932"))
    out = tmp_path / "list.csv"
    args = ["plan", str(roster), "--out", str(out), "--model-dir", str(tmp_path)]
    res = CliRunner().invoke(nudge_app, [*args, "--budget", "20000"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["mailed"] == 200 and set(summary["baselines"]) == {"standard_to_all",
                                                                      "highest_probability"}
    listing = pd.read_csv(out, encoding="utf-8-sig")
    assert len(listing) == 200 and set(listing["送付"]) == {"送付"}  # the mailed list only
    assert listing["順位"].tolist() == sorted(listing["順位"])
    res = CliRunner().invoke(nudge_app, [*args, "--budget", "20000", "--all"])
    everyone = pd.read_csv(out, encoding="utf-8-sig")
    assert len(everyone) == len(test["residents"]) and (everyone["送付"] == "送付").sum() == 200
    res = CliRunner().invoke(nudge_app, [*args, "--budget", "-5"])
    assert res.exit_code == 2 and "non-negative" in res.output
    born = test["residents"].drop(columns=["age"]).assign(生年月日="1980-06-01")
    born.loc[born.index[:3], "生年月日"] = ["1987-04-02", "S62.4.1", "1951-04-01"]
    roster.write_bytes(born.to_csv(index=False).encode("cp932"))
    res = CliRunner().invoke(nudge_app, [*args, "--fiscal-year", "2026"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["excluded"]["rows"] == [2, 4]  # 39 and 76 at FY end


def test_cli_plan_names_unknown_districts(models: dict[str, NudgeModel],
                                          parts: tuple[Frames, Frames], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from training.checkup_nudge_cli import nudge_app

    model, test = models["s"], parts[1]
    (tmp_path / "model.onnx").write_bytes(combine_graphs(TASK.to_onnx(model, 15))
                                          .SerializeToString())
    (tmp_path / "nudge.json").write_bytes(TASK.assets(model)["nudge.json"])
    residents = test["residents"].copy()
    residents.loc[residents.index[0], "district"] = "typo-district"
    roster = tmp_path / "roster.csv"
    roster.write_text(residents.to_csv(index=False), encoding="utf-8")
    args = ["plan", str(roster), "--out", str(tmp_path / "list.csv"), "--model-dir",
            str(tmp_path), "--budget", "20000"]
    res = CliRunner().invoke(nudge_app, args)
    assert res.exit_code == 2 and "typo-district in rows 2" in res.output
    assert CliRunner().invoke(nudge_app, [*args, "--allow-new-districts"]).exit_code == 0
