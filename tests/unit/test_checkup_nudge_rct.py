"""Generic RCT mode (`kyodo nudge fit-rct`): any arms, any covariates, clear input errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.checkup_nudge.rct import RctInputError, fit_rct, read_table, score_rct
from training.checkup_nudge_cli import nudge_app


def true_p(age: np.ndarray, group: np.ndarray, arm: np.ndarray | str) -> np.ndarray:
    """P(y = 1) in `experiment`: arm B helps group 'a' and hurts the rest; arm C the old."""
    logit = (-0.5 + 0.02 * (age - 50) + np.where(arm == "B", np.where(group == "a", 1.5, -0.5), 0)
             + np.where(arm == "C", np.where(age > 55, 1.2, -0.2), 0))
    return 1 / (1 + np.exp(-logit))


def experiment(n: int, arms: list[str], seed: int = 0) -> pd.DataFrame:
    """Arm B helps group 'a' and hurts the rest; arm C helps the old (a 3-arm trial)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 80, n)
    group = rng.choice(["a", "b", "c"], n)
    arm = rng.choice(arms, n)
    y = (rng.random(n) < true_p(age, group, arm)).astype(int)
    return pd.DataFrame({"id": [f"p{i}" for i in range(n)], "age": age, "group": group,
                         "arm": arm, "y": y}).astype(str)


@pytest.mark.parametrize("arms", [["A", "B"], ["A", "B", "C"]])
def test_fit_rct_finds_who_benefits(arms: list[str]) -> None:
    result = fit_rct(experiment(2400, arms), "arm", "y", "A", seed=1, learner="t", n_boot=50)
    r = result.report
    assert r["features"] == ["age", "group"]  # the id column is skipped
    assert list(r["arms"]) == arms and set(r["qini"]) == set(arms[1:])
    assert r["qini"]["B"]["qini"] > 0
    pv = r["policy_value"]
    assert pv["recommended_minus_random_arm"]["estimate"] > 0
    assert pv["recommended_minus_control"]["ci_low"] > 0
    # strong heterogeneity: a personalised policy beats everyone-gets-one-arm, CI above 0
    assert r["decision"]["personalised"] and r["decision"]["recommended"] != "best_single_arm"
    assert r["decision"]["recommended_gain"]["ci_low"] > 0
    # issue 16: the gain printed for the recommendation is that of the choice between the
    # candidates made out of fold; the served CIs add the learned policies' spread
    d = r["decision"]
    assert d["recommended_gain"] == d["gain_over_best_single_arm"]["selected"]
    assert len(d["selected_by_fold"]) == 5
    assert d["recommended_gain_served"] == d["served_gain_over_best_single_arm"]["selected"]
    for g in d["served_gain_over_best_single_arm"].values():
        assert g["policy_sd"] >= 0
        assert g["ci_low"] <= g["sampling_only"]["ci_low"]
        assert g["ci_high"] >= g["sampling_only"]["ci_high"]
    scored = score_rct(result, experiment(50, arms, seed=9))
    # issue 16: `arm`, p_<arm> for every arm, uplift_<arm> vs control (was recommended_arm)
    assert list(scored.columns[-2 * len(arms):]) == [
        *(f"p_{a}" for a in arms), *(f"uplift_{a}" for a in arms[1:]), "arm"]
    a_group = scored[scored["group"] == "a"]
    assert (a_group["arm"] != "A").mean() > 0.8


def test_named_features_propensity_and_auto() -> None:
    df = experiment(1200, ["A", "B"])
    df["w"] = "0.5"
    result = fit_rct(df, "arm", "y", "A", features=["group"], propensity="w", n_boot=20)
    assert result.report["features"] == ["group"] and result.report["learner"] in ("t", "s")
    assert result.report["learner_candidates"] == ["t", "s"]


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda d: d.assign(arm="A"), r"only one arm \('A'\)"),
    (lambda d: d.assign(y=d["y"].where(d.index != 3, "2")), r"column 'y' row 5: .*binary.*'2'"),
    (lambda d: d.drop(columns=["y"]), r"missing column 'y'"),
    (lambda d: d.iloc[:0], r"header but no rows"),
    (lambda d: d.assign(arm=d["arm"].replace("A", "X")), r"control value 'A' not found"),
    (lambda d: d.assign(y="1"), r"every row has outcome 1"),
    (lambda d: d.assign(arm=np.where(d.index < 5, "Z", d["arm"])), r"arm 'Z' has 5 rows"),
    (lambda d: d.assign(y=np.where(d["arm"] == "B", "0", d["y"])),
     r"arm 'B' has the same outcome in every row"),
])
def test_input_errors_name_column_and_row(edit: Callable[[pd.DataFrame], pd.DataFrame],
                                          pattern: str) -> None:
    with pytest.raises(RctInputError, match=pattern):
        fit_rct(edit(experiment(300, ["A", "B"])), "arm", "y", "A", n_boot=20)


def test_reads_cp932_crlf_and_rejects_empty() -> None:
    df = experiment(40, ["A", "B"]).assign(group="面倒くさがり")
    out = read_table(df.to_csv(index=False, lineterminator="\r\n").encode("cp932"))
    assert out.loc[0, "group"] == "面倒くさがり" and out.columns[-1] == "y"
    with pytest.raises(RctInputError, match="empty"):
        read_table(b"")


def _write(path: Path, df: pd.DataFrame, encoding: str = "utf-8") -> Path:
    path.write_bytes(df.to_csv(index=False, lineterminator="\r\n").encode(encoding))
    return path


def test_cli_report_and_scores(tmp_path: Path) -> None:
    data = _write(tmp_path / "rct.csv", experiment(900, ["A", "B", "C"]), "cp932")
    other = _write(tmp_path / "other.csv", experiment(30, ["A"], seed=4).drop(columns=["y"]))
    out = tmp_path / "pred.csv"
    res = CliRunner().invoke(nudge_app, ["fit-rct", str(data), "--treatment", "arm",
                                         "--outcome", "y", "--control", "A", "--score",
                                         str(other), "--out", str(out), "--learner", "t"])
    assert res.exit_code == 0, res.output
    assert "recommended - random arm" in res.output and "features used: age, group" in res.output
    assert "Gain as served by --score" in res.output
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw  # no BOM, LF
    pred = pd.read_csv(out)
    assert len(pred) == 30
    assert {"p_A", "p_B", "p_C", "uplift_B", "uplift_C", "arm"} <= set(pred.columns)


@pytest.mark.parametrize(("args", "pattern"), [
    (["--outcome", "nope"], "missing column 'nope'"),
    (["--outcome", "age"], "column 'age' rows 2, 3, 4, 5, 6 (and 195 more): outcome must be"),
    (["--control", "Q"], "control value 'Q' not found"),
])
def test_cli_errors_exit_2(tmp_path: Path, args: list[str], pattern: str) -> None:
    data = _write(tmp_path / "rct.csv", experiment(200, ["A", "B"]))
    base = {"--treatment": "arm", "--outcome": "y", "--control": "A"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = ["fit-rct", str(data), *[x for kv in base.items() for x in kv]]
    res = CliRunner().invoke(nudge_app, argv)
    assert res.exit_code == 2 and pattern in res.output


def test_cli_empty_and_single_arm_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    one = _write(tmp_path / "one.csv", experiment(50, ["A"]))
    for path, pattern in ((empty, "file is empty"), (one, "only one arm")):
        res = CliRunner().invoke(nudge_app, ["fit-rct", str(path), "--treatment", "arm",
                                             "--outcome", "y", "--control", "A"])
        assert res.exit_code == 2 and pattern in res.output


def test_no_heterogeneity_recommends_best_simple_policy() -> None:
    """Arm B adds the same 15 points for everyone: no personalised policy, the simple one wins."""
    rng = np.random.default_rng(3)
    n = 3000
    age = rng.integers(20, 80, n)
    arm = rng.choice(["A", "B"], n)
    y = (rng.random(n) < 0.3 + 0.15 * (arm == "B")).astype(int)
    df = pd.DataFrame({"age": age, "arm": arm, "y": y}).astype(str)
    r = fit_rct(df, "arm", "y", "A", seed=0, n_boot=100).report
    assert r["decision"]["recommended"] == "best_single_arm" and r["best_single_arm"] == "B"
    assert not r["decision"]["personalised"]
    assert r["policy_value"]["recommended_minus_best_single_arm"]["estimate"] == 0
    assert any("no reliable difference between persons" in m for m in r["messages"])


def test_small_trial_warns_and_lists_tied_arms() -> None:
    """Three arms with 20-40 events each: too small to rank, tied arms named."""
    rng = np.random.default_rng(5)
    n = 300
    arm = rng.choice(["A", "B", "C"], n)
    y = (rng.random(n) < np.select([arm == "A", arm == "B"], [0.2, 0.25], 0.3)).astype(int)
    df = pd.DataFrame({"age": rng.integers(20, 80, n), "arm": arm, "y": y}).astype(str)
    r = fit_rct(df, "arm", "y", "A", seed=0, n_boot=100).report
    cmp = r["arm_comparison"]
    assert cmp["too_small"] and cmp["tied_with_best"]
    assert any("too small to rank the arms" in m for m in r["messages"])


def test_small_trial_is_too_small_to_personalise() -> None:
    """Strong heterogeneity (arm B +50 points for group 'a', -10 for the rest) in 360 persons:
    the personalised candidates' CIs are above zero, but an arm has fewer than 100 events, so
    the simple policy is recommended and the CLI says why (issue 16, NSW: 3 of 3 such
    personalisations lost out of sample). With 3,000 persons the same trial personalises."""
    def trial(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        group = rng.choice(["a", "b"], n)
        arm = rng.choice(["A", "B"], n)
        p = 0.2 + np.where(arm == "B", np.where(group == "a", 0.5, -0.1), 0)
        y = (rng.random(n) < p).astype(int)
        return pd.DataFrame({"group": group, "arm": arm, "y": y}).astype(str)

    r = fit_rct(trial(360, 4), "arm", "y", "A", seed=0, n_boot=100).report
    d = r["decision"]
    assert min(r["arm_comparison"]["events"].values()) < 100
    assert max(g["ci_low"] for g in d["gain_over_best_single_arm"].values()) > 0  # premise
    assert d["recommended"] == "best_single_arm" and not d["personalised"]
    assert d["too_small_to_personalise"]
    assert d["recommended_gain_served"] == {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert any("too small to personalise" in m for m in r["messages"])
    big = fit_rct(trial(3000, 4), "arm", "y", "A", seed=0, n_boot=100).report["decision"]
    assert big["personalised"] and not big["too_small_to_personalise"]


def test_missing_outcome_error_or_dropped() -> None:
    df = experiment(400, ["A", "B"])
    df.loc[7, "y"] = "NA"
    with pytest.raises(RctInputError, match=r"column 'y' row 9: outcome is missing \('NA'\)"):
        fit_rct(df, "arm", "y", "A", n_boot=20)
    r = fit_rct(df, "arm", "y", "A", n_boot=20, drop_missing_outcome=True).report
    assert r["dropped_missing_outcome"] == 1 and r["rows"] == 399


def test_default_features_leave_out_post_treatment_columns() -> None:
    df = experiment(3000, ["A", "B"])
    rng = np.random.default_rng(1)
    df["spend"] = np.where(df["y"] == "1", rng.random(len(df)).round(2), 0).astype(str)
    df["opened"] = np.where(df["arm"] == "B", rng.random(len(df)) < 0.6, 0).astype(int)
    r = fit_rct(df.astype(str), "arm", "y", "A", n_boot=20).report
    assert r["features"] == ["age", "group"]
    assert set(r["excluded_columns"]) == {"spend", "opened"}


def test_cli_arms_named_none_and_na_are_arms_not_missing(tmp_path: Path) -> None:
    """Missing-value tokens apply to covariates and the outcome, never to arm names: a control
    called 'none' (checkup_nudge's own) and an arm called 'NA' are read as written."""
    df = experiment(600, ["none", "NA", "B"])
    df.loc[3, "age"] = "NA"  # a covariate: missing
    df.loc[5, "y"] = "none"  # the outcome: missing, dropped on request
    data = _write(tmp_path / "rct.csv", df.rename(columns={"arm": "message"}))
    frame = read_table(data.read_bytes(), labels=["message"])
    assert set(frame["message"]) == {"none", "NA", "B"}
    assert frame.loc[3, "age"] == "" and frame.loc[5, "y"] == ""
    assert "NA" not in set(read_table(data.read_bytes())["message"])  # not a label column
    out = tmp_path / "pred.csv"
    res = CliRunner().invoke(nudge_app, ["fit-rct", str(data), "--treatment", "message",
                                         "--outcome", "y", "--control", "none",
                                         "--drop-missing-outcome", "--learner", "t",
                                         "--score", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "arms: none (" in res.output and "NA (" in res.output
    assert "dropped 1 row with a missing outcome" in res.output
    pred = pd.read_csv(out, keep_default_na=False)
    assert {"p_none", "p_NA", "uplift_NA", "uplift_B"} <= set(pred.columns)
    assert set(pred["arm"]) <= {"none", "NA", "B"}


def test_a_frame_may_name_its_control_none() -> None:
    """Only the file reader turns 'none' into an empty cell: a frame passed in keeps it
    (the benchmark and the checkup_nudge campaign arms use 'none')."""
    frame = experiment(300, ["A", "B"]).assign(arm=lambda d: d["arm"].replace("A", "none"))
    result = fit_rct(frame.astype(str), "arm", "y", "none", seed=1, folds=2, n_boot=20)
    assert result.model.arms[0] == "none"


def test_cluster_keeps_households_together_and_widens_the_ci(tmp_path: Path) -> None:
    """Households of 3 that share arm and outcome: without --cluster the CIs treat 3 copies as
    3 persons; with it they are about sqrt(3) wider, the household id is no feature, and an
    empty household id names its row."""
    base = experiment(700, ["A", "B"], seed=2)
    df = base.loc[base.index.repeat(3)].reset_index(drop=True)
    df["hh"] = np.repeat([f"h{i}" for i in range(len(base))], 3)
    df["id"] = [f"p{i}" for i in range(len(df))]

    def width(r: dict) -> float:
        ci = r["arm_comparison"]["pairwise"]["A_minus_B"]
        return ci["ci_high"] - ci["ci_low"]

    plain = fit_rct(df.drop(columns=["hh"]), "arm", "y", "A", seed=0, folds=2, n_boot=200,
                    learner="t").report
    data = _write(tmp_path / "hh.csv", df)
    res = CliRunner().invoke(nudge_app, ["fit-rct", str(data), "--treatment", "arm",
                                         "--outcome", "y", "--control", "A", "--cluster", "hh",
                                         "--folds", "2", "--learner", "t", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    assert r["clusters"] == 700 and "hh" not in r["features"]
    assert 1.4 < width(r) / width(plain) < 2.2
    df.loc[4, "hh"] = "NA"  # a household id is a name, not a missing value
    bad = _write(tmp_path / "bad.csv", df.assign(hh=df["hh"].where(df.index != 9, "")))
    res = CliRunner().invoke(nudge_app, ["fit-rct", str(bad), "--treatment", "arm",
                                         "--outcome", "y", "--control", "A", "--cluster", "hh"])
    assert res.exit_code == 2 and "column 'hh' row 11: empty cluster id" in res.output


@pytest.mark.slow
def test_served_gain_ci_covers_the_true_gain() -> None:
    """Issue 16: over 20 independent 1,500-person trials with a known truth, the 95% CI that
    fit-rct prints for the served uplift model's gain over the best arm (and for the
    recommended policy's) covers the true gain, computed on 100,000 other persons, in at least
    15 of 20 (an exact 95% CI fails this with probability 0.0003, one at 90% with 0.01). The
    held-out estimate of the benchmark is not needed here: the truth is known."""
    from models.checkup_nudge.rct import encode

    arms = ["A", "B", "C"]
    pop = experiment(100_000, arms, seed=999)
    age, group = pop["age"].astype(int).to_numpy(), pop["group"].to_numpy()
    truth = np.column_stack([true_p(age, group, a) for a in arms])  # (n, arms)
    covered = {"model": 0, "recommended": 0}
    for seed in range(20):
        result = fit_rct(experiment(1500, arms, seed=100 + seed), "arm", "y", "A", seed=seed,
                         n_boot=100)
        rep = result.report["decision"]
        X = encode(pop, result.encoding)
        P = result.model.predict(X)
        best = list(result.model.arms).index(result.report["best_single_arm"])
        col = [arms.index(a) for a in result.model.arms]
        T = truth[:, col]
        rows = np.arange(len(T))
        for name, assign, own in (
                ("model", P.argmax(1), rep["served_gain_over_best_single_arm"]["model"]),
                ("recommended", result.policy.assign(X, P), rep["recommended_gain_served"])):
            true_gain = float((T[rows, assign] - T[:, best]).mean())
            covered[name] += own["ci_low"] - 1e-9 <= true_gain <= own["ci_high"] + 1e-9
    assert covered["model"] >= 15 and covered["recommended"] >= 15, covered
