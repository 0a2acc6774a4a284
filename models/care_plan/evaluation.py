"""Held-out evaluation: accuracy on received plans, and recommended plans against the oracle.

Accuracy (Brier, AUC, calibration) is measured on the outcomes persons actually had under the
plan they received. The decisive test uses the generator's truth: for held-out persons, the
true P(improve or maintain) of the recommended plan vs the oracle-best plan within the cap
(regret) vs the typical plan for the care level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.care_plan.estimator import CareModel
from models.care_plan.features import encode_inputs, person_features
from models.care_plan.generate import Latent, change_probs, outcome_probs
from models.care_plan.items import LEVELS, OUTCOMES
from models.care_plan.plans import Catalogue
from models.care_plan.recommend import best_plans, ranking_score
from models.care_plan.records import labels, plan_matrix, rows
from models.task import Frames

MIN_EVAL_PER_TENANT = 100
HEADLINE = "mean_true_p_improve_or_maintain_recommended"


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Reliability table: per equal-width bin of p, mean prediction, observed rate, count."""
    b = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for k in range(bins):
        m = b == k
        out.append({"bin": [k / bins, (k + 1) / bins], "n": int(m.sum()),
                    "predicted": round(float(p[m].mean()), 4) if m.any() else None,
                    "observed": round(float(y[m].mean()), 4) if m.any() else None})
    return out


def ece(table: list[dict[str, Any]]) -> float:
    """Expected calibration error: count-weighted |predicted - observed| over bins."""
    n = sum(r["n"] for r in table)
    return sum(r["n"] * abs(r["predicted"] - r["observed"]) for r in table if r["n"]) / max(n, 1)


def auc(score: np.ndarray, y: np.ndarray) -> float | None:
    """ROC AUC by ranks (ties averaged); None with one class only."""
    from scipy.stats import rankdata

    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    r = rankdata(score)
    return float((r[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def brier(P: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score (sum over classes, mean over rows)."""
    onehot = np.zeros_like(P)
    onehot[np.arange(len(y)), y] = 1.0
    return float(((P - onehot) ** 2).sum(axis=1).mean())


def eval_subset(persons: pd.DataFrame, total: int) -> np.ndarray:
    """Positions of held-out persons scored against the oracle: a share of each tenant
    (at least MIN_EVAL_PER_TENANT), deterministic by person id."""
    n = len(persons)
    picked = []
    for _, group in persons.groupby("tenant_code", sort=True):
        k = min(len(group), max(MIN_EVAL_PER_TENANT, round(total * len(group) / n)))
        picked.append(group.sort_values("person_id").index.to_numpy()[:k])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, int)


@dataclass
class Decisions:
    """For the evaluated persons: true P(improve or maintain) under each plan choice."""

    rows: np.ndarray  # positions in the held-out persons frame
    recommended: np.ndarray
    oracle: np.ndarray
    typical: np.ndarray
    received: np.ndarray
    predicted: np.ndarray  # the model's own P(improve or maintain) of its recommendation


def decide(model: CareModel, cat: Catalogue, persons: pd.DataFrame, lat: Latent,
           rows_: np.ndarray) -> Decisions:
    """Recommend for each person (top-1 within the cap) and score every option on the truth."""
    sub = persons.iloc[rows_]
    feats = person_features(encode_inputs(sub))
    level = sub["care_level"].map(LEVELS.index).to_numpy(int)
    plans, probs = best_plans(cat, feats, cat.grid_plans(), model.predict)
    rec = np.zeros((len(sub), len(cat.names)))
    pred = np.zeros(len(sub))
    for i, (Q, P) in enumerate(zip(plans, probs, strict=True)):
        k = int(np.argmax(ranking_score(P, cat.monthly_units(Q, level[i]))))
        rec[i], pred[i] = Q[k], 1.0 - P[k]
    sizes = np.array([len(Q) for Q in plans])
    who = np.repeat(np.arange(len(sub)), sizes)
    truth_all = _true_score(lat.take(rows_[who]), np.vstack(plans), level[who], cat)
    oracle = np.maximum.reduceat(truth_all, np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    typical = np.array([model.assets["typical_plans"][str(lv)] for lv in level], float)
    lat_sub = lat.take(rows_)
    return Decisions(rows_, _true_score(lat_sub, rec, level, cat), oracle,
                     _true_score(lat_sub, typical, level, cat),
                     _true_score(lat_sub, plan_matrix(sub, cat), level, cat), pred)


def _true_score(lat: Latent, Q: np.ndarray, level: np.ndarray, cat: Catalogue) -> np.ndarray:
    out = np.empty(len(Q))
    for s in range(0, len(Q), 200_000):  # bounded memory for many candidates
        part = slice(s, s + 200_000)
        P = outcome_probs(lat.take(np.arange(len(Q))[part]), Q[part], cat.names)
        out[part] = 1.0 - change_probs(P, level[part])[:, 2]
    return out


def _accuracy(P_change: np.ndarray, P_outcome: np.ndarray, change: np.ndarray,
              outcome: np.ndarray, true_worsen: np.ndarray | None) -> dict[str, Any]:
    worse = change == 2
    table = reliability(P_change[:, 2], worse)
    out = {"persons": len(change), "brier_change": round(brier(P_change, change), 5),
           "brier_outcome": round(brier(P_outcome, outcome), 5),
           "auc_worsen": _r(auc(P_change[:, 2], worse)),
           "calibration_error_worsen": round(ece(table), 5),
           "observed_worsen_rate": round(float(worse.mean()), 4),
           "mean_predicted_worsen": round(float(P_change[:, 2].mean()), 4),
           "reliability_worsen": table}
    if true_worsen is not None:
        out["mae_vs_true_p_worsen"] = round(float(np.abs(P_change[:, 2] - true_worsen).mean()),
                                            5)
    return out


def _decision_metrics(d: Decisions, m: np.ndarray) -> dict[str, Any]:
    if not m.any():
        return {}
    rec, orc, typ = d.recommended[m], d.oracle[m], d.typical[m]
    gain = float(orc.mean() - typ.mean())
    regret = float(orc.mean() - rec.mean())
    return {"eval_persons": int(m.sum()),
            "true_p_improve_or_maintain": {"recommended": _mean4(rec),
                                           "oracle_best": round(float(orc.mean()), 4),
                                           "typical_plan": round(float(typ.mean()), 4),
                                           "received_plan": round(float(d.received[m].mean()), 4)},
            "predicted_p_improve_or_maintain_recommended": round(float(d.predicted[m].mean()), 4),
            "regret": round(regret, 4),
            "oracle_gain_over_typical": round(gain, 4),
            "regret_share_of_oracle_gain": round(regret / gain, 4) if gain > 0 else None,
            "share_recommended_ge_typical": round(float((rec >= typ - 1e-9).mean()), 4),
            "share_recommended_gt_typical": round(float((rec > typ + 1e-9).mean()), 4)}


def evaluate_model(cfg: Any, model: CareModel, test: Frames) -> dict[str, Any]:
    """Overall and per-tenant metrics and the headline (see module docstring)."""
    persons, outcomes, oracle = test["persons"], test["outcomes"], test["oracle"]
    cat = Catalogue.from_dict(model.assets["catalogue"])
    pred = model.predict(rows(persons, cat), ("change", "outcome"))
    change, outcome, _ = labels(persons, outcomes)
    level = persons["care_level"].map(LEVELS.index).to_numpy(int)
    has_truth = len(oracle) == len(persons) and len(persons) > 0
    lat = Latent.from_frames(persons, oracle) if has_truth else None
    true_worsen = (change_probs(outcome_probs(lat, plan_matrix(persons, cat), cat.names),
                                level)[:, 2] if lat is not None else None)
    decisions = decide(model, cat, persons, lat, eval_subset(persons, cfg.eval_persons)) \
        if lat is not None else None
    tenant = persons["tenant_code"].astype(str).to_numpy()

    def metrics(m: np.ndarray) -> dict[str, Any]:
        out = _accuracy(pred["change"][m], pred["outcome"][m], change[m], outcome[m],
                        None if true_worsen is None else true_worsen[m])
        if decisions is not None:
            out.update(_decision_metrics(decisions, m[decisions.rows]))
        return out

    overall = metrics(np.ones(len(persons), bool))
    overall["outcome_classes"] = list(OUTCOMES)
    per_tenant = {code: metrics(tenant == code) for code in sorted(set(tenant))}
    return {"overall": overall, "per_tenant": per_tenant, "headline": _headline(overall)}


def headline_on_resamples(cfg: Any, model: CareModel, test: Frames,
                          ) -> Callable[[Frames], float] | None:
    """The oracle headline (HEADLINE) as a function of a bootstrap resample of `test`, each
    held-out person's recommendation worked out once, when a resample first needs it.

    evaluate_model recommends for up to `eval_persons` persons per call, scoring each one's
    ~1,000 feasible grid plans; the pooling report's bootstrap calls it 100 times per
    municipality on copies of the same persons. A resampled person "<id>#k"
    (training/pooling.py `resample`) is person <id>, and the recommendation and its true score
    depend on that person's row alone, so the value is evaluate_model's headline on the
    resample. None without the oracle (real data: the headline is then another metric).
    """
    persons, oracle = test["persons"], test["oracle"]
    if not (len(oracle) == len(persons) and len(persons) > 0):
        return None
    cat = Catalogue.from_dict(model.assets["catalogue"])
    latent = Latent.from_frames(persons, oracle)
    ids = persons["person_id"].astype(str).to_numpy()  # resample makes "<id>#k" strings
    position = pd.Series(np.arange(len(persons)), index=ids)
    known: dict[str, float] = {}  # person_id -> true P(improve or maintain) of its top plan

    def value(sample: Frames) -> float:
        drawn = sample["persons"]
        copies = drawn["person_id"].to_numpy()[eval_subset(drawn, cfg.eval_persons)]
        originals = pd.Series(copies).str.rsplit("#", n=1).str[0].tolist()
        new = [p for p in dict.fromkeys(originals) if p not in known]
        if new:
            rows_ = np.sort(position.loc[new].to_numpy())
            known.update(zip(ids[rows_], decide(model, cat, persons, latent, rows_).recommended,
                             strict=True))
        return _mean4(np.array([known[p] for p in originals]))

    return value


def _mean4(values: np.ndarray) -> float:
    """The mean as the headline reports it (4 decimals)."""
    return round(float(values.mean()), 4)


def _headline(overall: dict[str, Any]) -> dict[str, Any]:
    truth = overall.get("true_p_improve_or_maintain")
    if truth is None:  # real data: no oracle, report the model's own estimate
        return {"metric": "mean_predicted_p_improve_or_maintain_observed_plans",
                "value": round(1 - overall["mean_predicted_worsen"], 4), "oracle": None,
                "baseline": round(1 - overall["observed_worsen_rate"], 4),
                "baseline_name": "observed outcome under the plans received"}
    return {"metric": HEADLINE, "value": truth["recommended"], "oracle": truth["oracle_best"],
            "baseline": truth["typical_plan"],
            "baseline_name": "typical plan for the care level"}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 5)
