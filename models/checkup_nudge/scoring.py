"""Scoring and outreach planning shared by training, the parity gate and serving.

No lightgbm or sklearn here: serving runs this with onnxruntime sessions only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.checkup_nudge import outreach as O
from models.checkup_nudge.arms import ARM_LABELS_JA, ARMS, check_costs
from models.checkup_nudge.estimator import combine_outputs
from models.checkup_nudge.features import FEATURE_NAMES, Columns, build_features

__all__ = ["FEATURE_NAMES", "OnnxArmPredictor", "build_features", "gain_curve", "plan_outreach",
           "score_matrix", "score_residents"]

# X (n, d) float32 -> P(attend) under every arm, shape (n, len(ARMS))
ArmPredictor = Callable[[np.ndarray], np.ndarray]
P_COLUMNS = tuple(f"p_{a}" for a in ARMS)


@dataclass
class OnnxArmPredictor:
    """ArmPredictor backed by the combined ONNX model; the learner is read from output names."""

    session: Any  # onnxruntime.InferenceSession
    arms: tuple[str, ...] = ARMS
    # S-learner: arms scored by this many threads at once (session.run releases the GIL and is
    # thread-safe); 1 for serving, whose workers share the cores; the CLI uses every core
    workers: int = 1

    def __post_init__(self) -> None:
        names = {o.name for o in self.session.get_outputs()}
        self.learner = "s" if "s_probabilities" in names else (
            "dr" if f"tau_{self.arms[1]}_variable" in names else "t")
        graphs = {"t": list(self.arms), "s": ["s"],
                  "dr": [self.arms[0], *(f"tau_{a}" for a in self.arms[1:])]}[self.learner]
        self.graphs = graphs
        self.outputs = [f"{g}_{'variable' if g.startswith('tau_') else 'probabilities'}"
                        for g in graphs]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self.learner == "s":
            return self._s_learner(X)
        raw = self.session.run(self.outputs, {"input": X})
        out = {g: (r.reshape(-1) if g.startswith("tau_") else r[:, 1])
               for g, r in zip(self.graphs, raw, strict=True)}
        return combine_outputs(self.learner, self.arms, out, len(X))

    def _s_learner(self, X: np.ndarray) -> np.ndarray:
        """One run per arm on X with that arm's one-hot set (no 6x copy of a large roster:
        one buffer per worker thread)."""
        P = np.empty((len(X), len(self.arms)))
        workers = max(1, min(self.workers, len(self.arms)))
        buffers = [np.hstack([X, np.zeros((len(X), len(self.arms) - 1), np.float32)])
                   for _ in range(workers)]

        def run(w: int) -> None:
            Z = buffers[w]
            for k in range(w, len(self.arms), workers):
                Z[:, X.shape[1]:] = 0.0
                if k:
                    Z[:, X.shape[1] + k - 1] = 1.0
                P[:, k] = self.session.run(self.outputs, {"input": Z})[0][:, 1]

        if workers == 1:
            run(0)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, range(workers)))
        return P


def _cost_vector(costs: Mapping[str, float]) -> np.ndarray:
    check_costs(costs)
    return np.array([float(costs[a]) for a in ARMS])


def score_matrix(residents: Columns, assets: dict[str, Any], predict: ArmPredictor,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P (n, arms), best mailable arm index (n,), its uplift over none (n,)) for a validated
    roster: a DataFrame or schema.plain_roster's columns (serving's single-resident path)."""
    n = len(residents["resident_id"])
    P = predict(build_features(residents, assets)) if n else np.zeros((0, len(ARMS)))
    arm, up = O.best_arm(P, np.zeros(len(ARMS)))
    return P, arm, up


def score_residents(residents: pd.DataFrame, assets: dict[str, Any], predict: ArmPredictor,
                    ) -> pd.DataFrame:
    """Per resident: P(attend) under every arm, the best mailable arm and its uplift over none."""
    P, arm, up = score_matrix(residents, assets, predict)
    out = pd.DataFrame(P, columns=list(P_COLUMNS))
    out.insert(0, "resident_id", residents["resident_id"].to_numpy())
    out["best_arm"] = np.array(ARMS)[arm]
    out["uplift"] = up
    return out


def _figures(P: np.ndarray, assign: np.ndarray, costs: np.ndarray, budget: float,
             ) -> dict[str, float | int | None]:
    n = len(P)
    added = O.gain(P, assign)
    spent = O.spent(assign, costs)
    before = float(P[:, 0].mean()) if n else 0.0
    return {"budget_yen": float(budget), "spent_yen": spent, "mailed": int((assign > 0).sum()),
            "expected_additional_attendees": round(added, 3),
            "attendance_rate_before": round(before, 5),
            "attendance_rate_after": round(before + added / n, 5) if n else 0.0,
            "cost_per_additional_attendee": round(spent / added, 1) if added > 0 else None}


def check_budget(budget_yen: float, costs: np.ndarray) -> None:
    """ValueError for a negative budget or one too small for a single postcard."""
    if not np.isfinite(budget_yen) or budget_yen < 0:
        raise ValueError(f"budget must be a non-negative number of yen, got {budget_yen}")
    cheapest = float(np.min(costs[1:][np.isfinite(costs[1:])]))
    if budget_yen < cheapest:
        raise ValueError(f"budget of {budget_yen:g} yen is too small for one postcard "
                         f"(the cheapest costs {cheapest:g} yen)")


def _matrix(scored: pd.DataFrame) -> np.ndarray:
    return scored[list(P_COLUMNS)].to_numpy(float)


def plan_outreach(scored: pd.DataFrame, budget_yen: float, costs: Mapping[str, float],
                  policy: Mapping[str, Any] | None = None,
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The outreach list (every resident, ranked) and its summary vs both baselines.

    `policy` is nudge.json's "policy" (chosen at training, models/checkup_nudge/task.py
    check_policy): kind "model" = greedy by uplift per yen within the budget, mailing only
    positive expected uplift; kind "simple" = its one arm to the residents first by its simple
    score (outreach.SIMPLE_ORDERS: predicted attendance without a postcard) within the budget,
    because the training data did not show the model beats that. None = the model.
    """
    c = _cost_vector(costs)
    check_budget(budget_yen, c)
    P = _matrix(scored)
    arm, up, order = O.priority(P, c)
    plans = O.assignments(P, c, budget_yen, dict(policy) if policy else None)
    assign = plans["policy"]
    if policy and policy.get("kind") == "simple":  # the simple policy's rank is its score
        order = O.simple_order(P[:, 0], str(policy.get("order", O.ROSTER)))
    rank = np.empty(len(P), dtype=int)
    rank[order] = np.arange(1, len(P) + 1)
    listing = pd.DataFrame({
        "rank": rank, "resident_id": scored["resident_id"].to_numpy(),
        "mailed": assign > 0, "arm": np.array(ARMS)[assign],
        "arm_ja": np.array([ARM_LABELS_JA[a] for a in ARMS])[assign],
        "best_arm": np.array(ARMS)[arm], "uplift": up.round(5), "p_none": P[:, 0].round(5),
        "p_after": P[np.arange(len(P)), assign].round(5), "cost_yen": c[assign]})
    summary = {**_figures(P, assign, c, budget_yen), "residents": len(P),
               "by_arm": {a: int((assign == k).sum()) for k, a in enumerate(ARMS) if k},
               "baselines": {name: _figures(P, plans[name], c, budget_yen)
                             for name in ("standard_to_all", "highest_probability")},
               "policy": _policy_summary(policy)}
    return listing.sort_values("rank", kind="stable").reset_index(drop=True), summary


def _policy_summary(policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the list rests on, for staff: the kind, its arm and the Japanese statement."""
    if not policy:
        return {"kind": "model", "message_ja": None}
    return {k: policy.get(k) for k in ("kind", "arm", "order", "message_ja",
                                       "gain_per_1000_residents_vs_best_simple")}


def gain_curve(scored: pd.DataFrame, costs: Mapping[str, float], budgets: Sequence[float],
               policy: Mapping[str, Any] | None = None) -> list[dict[str, float]]:
    """Expected attendees gained vs budget for the recommended policy and both baselines."""
    P, c = _matrix(scored), _cost_vector(costs)
    curves = O.gain_curves(P, c, budgets)
    if policy and policy.get("kind") == "simple":  # the list follows the simple policy
        k = int(policy["arm_index"])
        order = O.simple_order(P[:, 0], str(policy.get("order", O.ROSTER)))
        curves["policy"] = O.cumulative_gain(order, P[:, k] - P[:, 0],
                                             np.full(len(P), c[k]), budgets)
    return [{"budget_yen": float(b), **{k: round(float(v[i]), 3) for k, v in curves.items()}}
            for i, b in enumerate(budgets)]


# Column headers of the list staff download (CSV, Shift_JIS CSV, Excel).
LIST_COLUMNS_JA = {"rank": "順位", "resident_id": "住民ID", "mailed": "送付",
                   "arm_ja": "メッセージの種類", "uplift": "受診確率の上昇（見込み）",
                   "p_none": "送付しない場合の受診確率", "p_after": "送付後の受診確率",
                   "cost_yen": "費用（円）"}


def list_table(listing: pd.DataFrame, include_all: bool = False) -> pd.DataFrame:
    """The outreach list as staff read it: mailed residents (or all), Japanese headers."""
    chosen = listing if include_all else listing[listing["mailed"].to_numpy()]
    table = chosen[list(LIST_COLUMNS_JA)].assign(
        mailed=np.where(chosen["mailed"].to_numpy(), "送付", "送付しない"),
        uplift=chosen["uplift"].round(5), p_none=chosen["p_none"].round(5),
        p_after=chosen["p_after"].round(5))
    return table.rename(columns=LIST_COLUMNS_JA)


def unknown_districts(residents: Columns, assets: dict[str, Any],
                      row_offset: int | np.ndarray = 2) -> str | None:
    """Why the roster's districts are not all known to the model for their municipality, or None.

    Typos would otherwise fall back silently to the municipality's average attendance.
    `residents`: a roster DataFrame or its columns (schema.plain_roster). `row_offset`:
    position + offset is the row, or each row's Excel row number.
    """
    rates = assets["encodings"]["district_rate"]
    tenants = [str(t) for t in np.asarray(residents["tenant_code"], dtype=object)]
    districts = [str(d) for d in np.asarray(residents["district"], dtype=object)]
    tenants_known = {k.split("|", 1)[0] for k in rates}
    unknown = np.array([t in tenants_known and f"{t}|{d}" not in rates
                        for t, d in zip(tenants, districts, strict=True)], bool)
    if not unknown.any():
        return None
    idx = np.flatnonzero(unknown)[:5]
    nums = idx + row_offset if isinstance(row_offset, int) else np.asarray(row_offset)[idx]
    rows = ", ".join(str(int(n)) for n in nums)
    names = ", ".join(sorted({districts[i] for i in np.flatnonzero(unknown)})[:5])
    return (f"district: unknown district(s) {names} in rows {rows} ({int(unknown.sum())} rows); "
            "allow new districts to score them with the municipality's average instead")
