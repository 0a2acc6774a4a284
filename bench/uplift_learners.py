"""In-house T/S learners vs econml's DR-learner and causal forest on the same cross-fitted value.

Optional: `pip install -e .[causal]` (econml 0.17, ~316 MB with numba/llvmlite/shap/statsmodels,
no GPU packages), then `python -m bench.uplift_learners [dataset ...]`; without econml it says so
and exits 0. Not in `make bench`. Writes reports/bench/uplift_learners.json. Last run (40,000-row
subsamples, 5 folds): the in-house S-learner's policy beat econml's DR-learner and causal forest
on the synthetic set and the GGL trial; on NSW (445 rows) no learner beat "everyone gets the
best arm".

Every learner is fitted on K-1 folds and its policy (argmax of predicted effects, control = 0)
is valued on the held-out fold with the same doubly robust scores (nuisances from the in-house
cross-fit), so differences between learners are paired.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from bench import REPO, say
from bench.uplift_real import load_ggl, load_nsw, load_synthetic
from models.checkup_nudge import crossfit as CF
from models.checkup_nudge import metrics as M
from models.checkup_nudge.rct import _params, prepare

OUT = REPO / "reports" / "bench" / "uplift_learners.json"
SEED = 7
ROWS = 40_000  # subsample: the causal forest is the slow one


def econml_policies(X: np.ndarray, arm: np.ndarray, y: np.ndarray, fold: np.ndarray,
                    n_arms: int, seed: int) -> dict[str, np.ndarray]:
    """Out-of-fold arm per row from econml's DRLearner and CausalForestDML (LightGBM nuisances)."""
    import lightgbm as lgb
    from econml.dml import CausalForestDML
    from econml.dr import DRLearner

    X = np.nan_to_num(X, nan=-1.0)  # econml's final stages do not take NaN
    lgb_kw = {"n_estimators": 100, "learning_rate": 0.05, "num_leaves": 15, "verbose": -1,
              "n_jobs": 1}
    out = {"econml_dr": np.zeros(len(y), int), "econml_causal_forest": np.zeros(len(y), int)}
    for f in np.unique(fold):
        rest, test = fold != f, fold == f
        makers = {
            "econml_dr": lambda: DRLearner(
                model_propensity=lgb.LGBMClassifier(**lgb_kw),
                model_regression=lgb.LGBMRegressor(**lgb_kw),
                model_final=lgb.LGBMRegressor(**lgb_kw), cv=2, random_state=seed),
            "econml_causal_forest": lambda: CausalForestDML(
                model_y=lgb.LGBMRegressor(**lgb_kw), model_t=lgb.LGBMClassifier(**lgb_kw),
                discrete_treatment=True, n_estimators=100, min_samples_leaf=50, cv=2,
                random_state=seed, n_jobs=1),
        }
        for name, make in makers.items():
            est = make().fit(y[rest], arm[rest], X=X[rest])
            effects = np.column_stack([np.zeros(int(test.sum()))] + [
                np.asarray(est.effect(X[test], T0=0, T1=k)).reshape(-1)
                for k in range(1, n_arms)])
            out[name][test] = effects.argmax(1)
    return out


def compare(name: str, df: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """Cross-fitted DR value of each learner's policy; paired differences vs the in-house best."""
    if len(df) > ROWS:
        df = df.sample(ROWS, random_state=SEED).reset_index(drop=True)
    data = prepare(df, meta["treatment"], meta["outcome"], meta["control"])
    exp = data.experiment()
    t0 = time.perf_counter()
    cf = CF.crossfit(exp, data.arms, ("t", "s"), _params(len(exp.y), len(data.arms)), SEED,
                     CF.FOLDS, data.encoding.categorical, known_propensity=False)
    seconds = {"in_house_t_s": round(time.perf_counter() - t0, 1)}
    assign = {k: P.argmax(1) for k, P in cf.preds.items()}
    t0 = time.perf_counter()
    assign.update(econml_policies(exp.X, exp.arm, exp.y, cf.fold, len(data.arms), SEED))
    seconds["econml_dr_and_forest"] = round(time.perf_counter() - t0, 1)
    best = int(cf.gamma.mean(0).argmax())
    assign["best_single_arm"] = np.full(len(exp.y), best)
    rows = np.arange(len(exp.y))
    names = list(assign)
    values = np.column_stack([cf.gamma[rows, a] for a in assign.values()])
    in_house = max(("t", "s"), key=lambda k: values[:, names.index(k)].mean())
    res = M.policy_values(values, names, scale=1.0, n_boot=300, seed=SEED, compare=in_house)
    say(f"{name}: " + ", ".join(f"{k} {res[k]['estimate']:.4f}" for k in names))
    return {"rows": len(exp.y), "arms": list(data.arms), "best_in_house": in_house,
            "seconds": seconds, "values": res}


def main() -> None:
    """Run the comparison on each dataset the benchmark uses."""
    try:
        import econml  # noqa: F401
    except ImportError:
        say("econml is not installed: nothing to compare (it is optional; see the report)")
        return
    sets = {"synthetic_hetero": load_synthetic(False), "ggl2008": load_ggl(), "nsw": load_nsw()}
    only = set(sys.argv[1:])
    report = {name: compare(name, *loaded) for name, loaded in sets.items()
              if loaded is not None and (not only or name in only)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1), encoding="utf-8")
    say(f"wrote {OUT}")


if __name__ == "__main__":
    main()
