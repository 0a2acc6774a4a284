"""Who gets which postcard within a budget: the uplift policy and the two baselines (numpy).

Every function takes a probability matrix P, shape (n, len(arms)), column 0 = no postcard, and
returns an assignment: the arm index per resident, 0 for those not mailed. The same functions
run on predicted P (the plan staff see) and on the oracle's true P (what a plan really gains).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STANDARD = 1  # column of the standard postcard in ARMS


def best_arm(P: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resident: the mailable arm with the largest uplift over none, and that uplift."""
    mailable = np.flatnonzero(np.isfinite(costs[1:])) + 1  # an infinite cost switches an arm off
    up = P[:, mailable] - P[:, [0]]
    pick = up.argmax(axis=1) if len(P) else np.zeros(0, int)
    return mailable[pick], up[np.arange(len(P)), pick]


def priority(P: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best arm, its uplift, and the mailing order (uplift per yen, ties in input order)."""
    arm, up = best_arm(P, costs)
    per_yen = up / np.maximum(costs[arm], 1e-9)
    order = np.lexsort((np.arange(len(P)), -per_yen))
    return arm, up, order


def policy_assignment(P: np.ndarray, costs: np.ndarray, budget: float) -> np.ndarray:
    """Greedy by uplift per yen: mail residents with positive uplift until the budget is spent."""
    arm, up, order = priority(P, costs)
    spend = np.cumsum(np.where(up[order] > 0, costs[arm[order]], 0.0))
    take = order[(up[order] > 0) & (spend <= budget + 1e-9)]
    assign = np.zeros(len(P), dtype=int)
    assign[take] = arm[take]
    return assign


def standard_to_all(n: int, costs: np.ndarray, budget: float) -> np.ndarray:
    """The standard postcard to everyone the budget covers, in roster order."""
    k = min(n, int(budget // costs[STANDARD])) if costs[STANDARD] > 0 else n
    assign = np.zeros(n, dtype=int)
    assign[:k] = STANDARD
    return assign


# Simple scores for the budget-feasible simple policies (issue 16): each orders residents by
# their predicted attendance without a postcard, P[:, 0] (baseline risk), never by uplift.
# key -> (staff-facing Japanese description of the order, English description)
SIMPLE_ORDERS: dict[str, tuple[str, str]] = {
    "baseline_high": ("送付しなくても受診する見込みが高い人から順に",
                      "highest predicted attendance without a postcard first"),
    "baseline_low": ("送付しないと受診する見込みが低い人から順に",
                     "lowest predicted attendance without a postcard first"),
    "baseline_middle": ("受診の見込みが五分五分に近い人から順に",
                        "predicted attendance without a postcard closest to 50% first"),
}
ROSTER = "roster"  # packages exported before the simple scores: roster order


def simple_order(p_none: np.ndarray, order: str) -> np.ndarray:
    """Resident indices in mailing order under a simple score (ties in input order).

    `order` is a SIMPLE_ORDERS key, or "roster" (input order; older packages).
    ValueError for an unknown order.
    """
    idx = np.arange(len(p_none))
    if order == ROSTER:
        return idx
    key = {"baseline_high": -p_none, "baseline_low": p_none,
           "baseline_middle": np.abs(p_none - 0.5)}.get(order)
    if key is None:
        raise ValueError(f"unknown simple order {order!r}; expected one of "
                         f"{[*SIMPLE_ORDERS, ROSTER]}")
    return np.lexsort((idx, key))


def one_arm_by_score(p_none: np.ndarray, arm: int, costs: np.ndarray, budget: float,
                     order: str) -> np.ndarray:
    """A simple budget-feasible policy: arm `arm` to the residents first in `order` (see
    simple_order) until the budget is spent; arm 0 for the rest."""
    n = len(p_none)
    k = min(n, int(budget // costs[arm])) if costs[arm] > 0 else n
    assign = np.zeros(n, dtype=int)
    assign[simple_order(p_none, order)[:k]] = arm
    return assign


def simple_policies(P: np.ndarray, costs: np.ndarray, budget: float) -> dict[str, np.ndarray]:
    """Every mailable arm x every simple score within the budget, keyed '<order>:<arm index>'."""
    mailable = np.flatnonzero(np.isfinite(costs[1:])) + 1
    return {f"{order}:{k}": one_arm_by_score(P[:, 0], int(k), costs, budget, order)
            for order in SIMPLE_ORDERS for k in mailable}


def planned_assignment(P: np.ndarray, costs: np.ndarray, budget: float,
                       policy: dict | None = None) -> np.ndarray:
    """The assignment the product recommends: the uplift policy, or, when the training data
    did not show it beats the best simple policy (policy['kind'] == 'simple'), that simple
    policy (policy['arm_index'] in policy['order'], default roster order for older packages).
    Shared by training metrics and the list."""
    if policy and policy.get("kind") == "simple":
        return one_arm_by_score(P[:, 0], int(policy["arm_index"]), costs, budget,
                                str(policy.get("order", ROSTER)))
    return policy_assignment(P, costs, budget)


def highest_probability(p_none: np.ndarray, costs: np.ndarray, budget: float) -> np.ndarray:
    """The standard postcard to those most likely to attend anyway (today's vendor practice)."""
    n = len(p_none)
    k = min(n, int(budget // costs[STANDARD])) if costs[STANDARD] > 0 else n
    order = np.lexsort((np.arange(n), -p_none))
    assign = np.zeros(n, dtype=int)
    assign[order[:k]] = STANDARD
    return assign


def gain(P: np.ndarray, assign: np.ndarray) -> float:
    """Expected additional attendees of an assignment under P."""
    return float((P[np.arange(len(P)), assign] - P[:, 0]).sum())


def spent(assign: np.ndarray, costs: np.ndarray) -> float:
    """Yen spent by an assignment."""
    return float(costs[assign].sum())


def assignments(P: np.ndarray, costs: np.ndarray, budget: float, policy: dict | None = None,
                ) -> dict[str, np.ndarray]:
    """The recommended policy (see planned_assignment) and both baselines at one budget."""
    return {"policy": planned_assignment(P, costs, budget, policy),
            "standard_to_all": standard_to_all(len(P), costs, budget),
            "highest_probability": highest_probability(P[:, 0], costs, budget)}


def gain_curves(P: np.ndarray, costs: np.ndarray, budgets: Sequence[float] | np.ndarray,
                P_true: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Gain vs budget for the policy and both baselines; gains read from P_true if given."""
    truth = P if P_true is None else P_true
    rows = np.arange(len(P))
    arm, up, order = priority(P, costs)
    mailed = order[up[order] > 0]  # the policy never mails a predicted non-positive uplift
    std = truth[:, STANDARD] - truth[:, 0]
    std_cost = np.full(len(P), costs[STANDARD])
    return {"policy": cumulative_gain(mailed, truth[rows, arm] - truth[:, 0], costs[arm],
                                      budgets),
            "standard_to_all": cumulative_gain(rows, std, std_cost, budgets),
            "highest_probability": cumulative_gain(np.lexsort((rows, -P[:, 0])), std, std_cost,
                                                   budgets)}


def cumulative_gain(order: np.ndarray, gains: np.ndarray, costs: np.ndarray,
                    budgets: Sequence[float] | np.ndarray) -> np.ndarray:
    """Gain of mailing residents in `order` until each budget is spent, shape (len(budgets),)."""
    cum_cost = np.cumsum(costs[order])
    cum_gain = np.concatenate([[0.0], np.cumsum(gains[order])])
    return cum_gain[np.searchsorted(cum_cost, np.asarray(budgets, float) + 1e-9, side="right")]
