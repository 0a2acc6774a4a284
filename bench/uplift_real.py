"""Uplift on public randomised trials and semi-synthetic ones: does the product beat simple
policies out of sample, and do its own CIs hold up?

Run with `make bench` (or `python -m bench.uplift_real [dataset ...]`, which reruns only those
and keeps the others' results); writes reports/bench/uplift_real.json.
Datasets (data card: bench/data/README.md):
- ggl2008: Gerber, Green & Larimer (2008) Michigan social-pressure mailing, 5 arms, 344,084
  persons (bench/data/ggl2008_social_pressure.csv.gz, committed, 1.2 MB).
- nsw: LaLonde (1986) NSW job-training RCT, Dehejia-Wahba sample, 2 arms, 445 persons,
  outcome = any earnings in 1978 (bench/data/nsw_lalonde.csv, committed): a small trial.
- synthetic_hetero / synthetic_null: the checkup_nudge generator (6 arms, known truth); the
  null variant keeps each arm's average effect but gives it to everyone (no heterogeneity).

Each split: 70% to `fit_rct` (the product, defaults), 30% held out. On the held-out part an
independent IPW evaluator (arm shares of that part as propensities, no outcome model) values
the product's policy, "everyone gets arm k" for every arm and "everyone gets the arm best on the
70%"; paired bootstrap CIs. Coverage: over repeated splits, how often the product's own 95% CI
for its gain over the best single arm contains the held-out estimate of that gain (and, with
known truth, the true gain).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from bench import REPO, say
from models.checkup_nudge import crossfit as CF
from models.checkup_nudge.arms import ARMS
from models.checkup_nudge.generate import GenerateSpec, generate_tenant
from models.checkup_nudge.rct import encode, fit_rct

DATA = REPO / "bench" / "data"
OUT = REPO / "reports" / "bench" / "uplift_real.json"
SEED = 20240
TEST_SHARE = 0.3
N_BOOT = 300
# repeated splits for coverage; the large trial is subsampled so a repeat takes seconds
REPEATS = {"ggl2008": 6, "nsw": 30, "synthetic_hetero": 8, "synthetic_null": 8}
REPEAT_ROWS = {"ggl2008": 60_000}
SYNTH_FEATURES = ["age", "sex", "attended_y1", "attended_y2", "attended_y3", "distance_km",
                  "household_size", "questionnaire_type", "outpatient_visits", "hba1c"]


def load_ggl() -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The GGL 2008 trial as strings; None (with a message) when the file is absent."""
    path = DATA / "ggl2008_social_pressure.csv.gz"
    if not path.is_file():
        say(f"skip ggl2008: {path} not found (see bench/data/README.md)")
        return None
    df = pd.read_csv(path, dtype=str)
    return df, {"treatment": "treatment", "outcome": "voted", "control": "control",
                "truth": None}


def load_nsw() -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The NSW (LaLonde) trial as strings; None when the file is absent."""
    path = DATA / "nsw_lalonde.csv"
    if not path.is_file():
        say(f"skip nsw: {path} not found (see bench/data/README.md)")
        return None
    df = pd.read_csv(path, dtype=str)
    return df, {"treatment": "treat", "outcome": "employed78", "control": "control",
                "truth": None}


def load_synthetic(null: bool, n: int = 60_000) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One uniform campaign of the generator: covariates, arm, outcome and the true P per arm."""
    spec = GenerateSpec(total_residents=n, min_residents=n, campaigns=("2024-summer", "x"),
                        nonuniform=())
    frames = generate_tenant("472018", n, 317_000, spec, SEED)
    res, camp, orc = frames["residents"], frames["campaigns"], frames["oracle"]
    first = camp["campaign"] == "2024-summer"
    camp, orc = camp[first].reset_index(drop=True), orc[first].reset_index(drop=True)
    truth = orc[[f"p_{a}" for a in ARMS]].to_numpy(float)
    arm = pd.Categorical(camp["arm"], categories=list(ARMS)).codes
    if null:  # same average effect for everyone: nothing to personalise
        truth = np.clip(truth[:, [0]] + (truth - truth[:, [0]]).mean(axis=0), 0, 1)
    # its own stream: the split seeds (SEED + r) must not reuse these uniforms
    y = (np.random.default_rng([SEED, 99]).random(len(arm)) < truth[np.arange(len(arm)), arm])
    df = res[SYNTH_FEATURES].astype(object).where(res[SYNTH_FEATURES].notna(), "").astype(str)
    df["arm"], df["attended"] = camp["arm"].to_numpy(), y.astype(int).astype(str)
    return df, {"treatment": "arm", "outcome": "attended", "control": "none", "truth": truth}


def holdout(arm: pd.Series, share: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out rows, the same share of every arm."""
    u = np.random.default_rng(seed).random(len(arm))
    return pd.Series(u).groupby(arm.to_numpy()).rank(pct=True).to_numpy() <= share


def ipw_columns(arm: np.ndarray, y: np.ndarray, assigns: dict[str, np.ndarray],
                n_arms: int) -> np.ndarray:
    """Per held-out row and policy: 1[arm = policy's arm] y / share(arm), shape (n, k)."""
    share = np.bincount(arm, minlength=n_arms) / len(arm)
    return np.column_stack([(arm == a) * y / share[arm] for a in assigns.values()])


def paired(values: np.ndarray, names: list[str], base: str, rng: np.random.Generator,
           ) -> dict[str, Any]:
    """Mean per policy, and each policy minus `base`, with 95% bootstrap CIs (paired)."""
    n = len(values)
    draws = np.stack([values[rng.integers(0, n, n)].mean(0) for _ in range(N_BOOT)])
    point = values.mean(0)
    b = names.index(base)

    def ci(est: float, d: np.ndarray) -> dict[str, float]:
        lo, hi = np.percentile(d, [2.5, 97.5])
        return {"estimate": round(float(est), 5), "ci_low": round(float(lo), 5),
                "ci_high": round(float(hi), 5)}

    return {"value": {m: ci(point[j], draws[:, j]) for j, m in enumerate(names)},
            f"minus_{base}": {m: ci(point[j] - point[b], draws[:, j] - draws[:, b])
                              for j, m in enumerate(names) if j != b}}


def one_split(df: pd.DataFrame, meta: dict[str, Any], seed: int) -> dict[str, Any]:
    """Fit the product on 70%, value its policy and the simple ones on the other 30%."""
    held = holdout(df[meta["treatment"]], TEST_SHARE, seed)
    train, test = df[~held].reset_index(drop=True), df[held].reset_index(drop=True)
    t0 = time.perf_counter()
    result = fit_rct(train, meta["treatment"], meta["outcome"], meta["control"], seed=seed)
    seconds = time.perf_counter() - t0
    rep, arms = result.report, result.model.arms
    arm = pd.Categorical(test[meta["treatment"]], categories=list(arms)).codes.astype(int)
    y = test[meta["outcome"]].astype(float).to_numpy()
    X = encode(test, result.encoding)
    train_best = arms.index(rep["best_single_arm"])
    assigns = {"product": result.policy.assign(X, result.model.predict(X)),
               "best_arm_on_training_part": np.full(len(y), train_best),
               **{f"everyone_{a}": np.full(len(y), k) for k, a in enumerate(arms)}}
    names = list(assigns)
    oos = paired(ipw_columns(arm, y, assigns, len(arms)), names, "best_arm_on_training_part",
                 np.random.default_rng(seed))
    own = rep["policy_value"]["recommended_minus_best_single_arm"]
    oos_ci = oos["minus_best_arm_on_training_part"]["product"]
    gain_oos = oos_ci["estimate"]
    out = {"rows_train": len(train), "rows_test": len(test), "fit_seconds": round(seconds, 1),
           "recommended": rep["decision"]["recommended"], "best_single_arm": arms[train_best],
           "product_own_gain_vs_best_single_arm": own,
           "product_own_value": rep["policy_value"]["recommended"],
           "out_of_sample": oos, "own_ci_covers_out_of_sample_gain":
               bool(own["ci_low"] - 1e-12 <= gain_oos <= own["ci_high"] + 1e-12),
           "own_ci_overlaps_out_of_sample_ci": bool(own["ci_low"] <= oos_ci["ci_high"] + 1e-12
                                                    and oos_ci["ci_low"] <= own["ci_high"]
                                                    + 1e-12),
           "messages": rep["messages"], "arm_comparison_too_small":
               rep["arm_comparison"]["too_small"], "tied_with_best":
               rep["arm_comparison"]["tied_with_best"]}
    if meta["truth"] is not None:
        # the truth's columns are in ARMS order; the model's arms put the control first and
        # sort the rest
        T = meta["truth"][held][:, [ARMS.index(a) for a in arms]]
        rows = np.arange(len(T))
        true_gain = float((T[rows, assigns["product"]] - T[:, train_best]).mean())
        out["true_gain_vs_best_single_arm"] = round(true_gain, 5)
        out["own_ci_covers_true_gain"] = bool(own["ci_low"] - 1e-12 <= true_gain
                                              <= own["ci_high"] + 1e-12)
    return out


def target_met(split: dict[str, Any]) -> bool:
    """Issue 16: product - best arm on the training part >= 0 and its CI low >= -0.3 points."""
    g = split["out_of_sample"]["minus_best_arm_on_training_part"]["product"]
    return g["estimate"] >= 0 and g["ci_low"] >= -0.003


def run_dataset(name: str, df: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """The main split on all rows, then repeated splits (subsampled if large) for coverage."""
    say(f"{name}: {len(df)} rows, main split")
    main = one_split(df, meta, SEED)
    reps = []
    for r in range(REPEATS[name]):
        seed = SEED + 1 + r
        sub, sub_meta = df, meta
        if name in REPEAT_ROWS and len(df) > REPEAT_ROWS[name]:
            keep = np.sort(np.random.default_rng(seed).choice(len(df), REPEAT_ROWS[name],
                                                              replace=False))
            sub = df.iloc[keep].reset_index(drop=True)
        say(f"{name}: repeat {r + 1}/{REPEATS[name]} ({len(sub)} rows)")
        reps.append(one_split(sub, sub_meta, seed))
    cover = [s["own_ci_covers_out_of_sample_gain"] for s in reps]
    summary = {"rows": len(df), "main_split": main, "target_met_main_split": target_met(main),
               "repeats": len(reps), "repeat_rows": len(sub) if reps else None,
               "target_met_share_over_repeats": round(float(np.mean([target_met(s)
                                                                     for s in reps])), 3),
               "own_ci_covers_out_of_sample_gain_share": round(float(np.mean(cover)), 3),
               "own_ci_overlaps_out_of_sample_ci_share": round(float(np.mean(
                   [s["own_ci_overlaps_out_of_sample_ci"] for s in reps])), 3),
               "recommended_over_repeats": [s["recommended"] for s in reps],
               "splits": reps}
    if meta["truth"] is not None:
        summary["own_ci_covers_true_gain_share"] = round(
            float(np.mean([s["own_ci_covers_true_gain"] for s in reps])), 3)
    return summary


def main() -> None:
    """Run every dataset and write the JSON report."""
    t0 = time.perf_counter()
    sets: dict[str, tuple[pd.DataFrame, dict[str, Any]] | None] = {
        "ggl2008": load_ggl(), "nsw": load_nsw(),
        "synthetic_hetero": load_synthetic(False), "synthetic_null": load_synthetic(True)}
    only = set(sys.argv[1:])
    report: dict[str, Any] = {"seed": SEED, "test_share": TEST_SHARE, "folds": CF.FOLDS,
                              "evaluator": "IPW on the held-out 30% with its arm shares; "
                                           "paired percentile bootstrap, 300 draws",
                              "datasets": {}}
    if only and OUT.is_file():  # a partial rerun keeps the other datasets' results
        report["datasets"] = json.loads(OUT.read_text(encoding="utf-8"))["datasets"]
    for name, loaded in sets.items():
        if only and name not in only:
            continue
        if loaded is None:
            report["datasets"][name] = {"skipped": "data file absent"}
            continue
        report["datasets"][name] = run_dataset(name, *loaded)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    say(f"wrote {OUT} in {report['seconds']} s")


if __name__ == "__main__":
    main()
