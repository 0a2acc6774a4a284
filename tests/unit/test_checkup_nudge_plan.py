"""Outreach planning: the budget, the greedy uplift policy, both baselines, and bad budgets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.checkup_nudge import outreach as O
from models.checkup_nudge.arms import ARMS, DEFAULT_COSTS
from models.checkup_nudge.generate import GenerateSpec, generate
from models.checkup_nudge.scoring import gain_curve, plan_outreach

P_COLS = [f"p_{a}" for a in ARMS]
DEFAULT_COSTS_VECTOR = [float(DEFAULT_COSTS[a]) for a in ARMS]


def scored_from(P: np.ndarray) -> pd.DataFrame:
    """A score_residents-shaped frame from a probability matrix."""
    up = P[:, 1:] - P[:, [0]]
    frame = pd.DataFrame(P, columns=P_COLS)
    frame.insert(0, "resident_id", [f"r{i}" for i in range(len(P))])
    frame["best_arm"] = np.array(ARMS[1:])[up.argmax(axis=1)]
    frame["uplift"] = up.max(axis=1)
    return frame


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    oracle = generate([("472018", 317_000)], GenerateSpec(total_residents=4000), 2)["472018"][
        "oracle"]
    latest = oracle[oracle["campaign"] == oracle["campaign"].max()]
    return scored_from(latest[P_COLS].to_numpy())


def test_list_respects_the_budget(truth: pd.DataFrame) -> None:
    listing, summary = plan_outreach(truth, 100_000, DEFAULT_COSTS)
    assert summary["spent_yen"] <= 100_000 and summary["mailed"] == 1000
    assert listing["cost_yen"].sum() == summary["spent_yen"]
    assert len(listing) == len(truth) and listing["rank"].tolist() == list(range(1, 4001))
    mailed = listing[listing["mailed"]]
    assert (mailed["arm"] == mailed["best_arm"]).all() and (mailed["uplift"] > 0).all()
    assert (listing.loc[~listing["mailed"], "arm"] == "none").all()
    assert mailed["uplift"].min() >= listing.loc[~listing["mailed"], "uplift"].max()
    assert set(listing.columns) >= {"resident_id", "best_arm", "uplift", "p_none", "mailed",
                                    "rank", "arm_ja"}
    added = summary["expected_additional_attendees"]
    assert summary["attendance_rate_after"] == pytest.approx(
        summary["attendance_rate_before"] + added / 4000, abs=1e-4)
    assert summary["cost_per_additional_attendee"] == pytest.approx(100_000 / added, rel=1e-3)
    assert sum(summary["by_arm"].values()) == 1000


def test_beats_both_baselines_on_the_oracle(truth: pd.DataFrame) -> None:
    _, summary = plan_outreach(truth, 120_000, DEFAULT_COSTS)
    base = summary["baselines"]
    assert base["standard_to_all"]["mailed"] == base["highest_probability"]["mailed"] == 1200
    gained = summary["expected_additional_attendees"]
    assert gained > 1.5 * base["standard_to_all"]["expected_additional_attendees"]
    assert gained > 1.5 * base["highest_probability"]["expected_additional_attendees"]


def test_never_mails_non_positive_uplift(truth: pd.DataFrame) -> None:
    P = truth[P_COLS].to_numpy().copy()
    P[:100, 1:] = P[:100, [0]] - 0.01  # every message hurts these residents
    P[100:150, 1:] = P[100:150, [0]]  # and leaves these unmoved
    listing, summary = plan_outreach(scored_from(P), 10_000_000, DEFAULT_COSTS)
    assert summary["mailed"] == len(truth) - 150
    assert not listing.set_index("resident_id").loc[[f"r{i}" for i in range(150)], "mailed"].any()
    assert summary["baselines"]["standard_to_all"]["mailed"] == len(truth)


def test_baselines_follow_roster_order_and_probability() -> None:
    P = np.array([[0.1, 0.2, 0.1, 0.1, 0.1, 0.1], [0.9, 0.91, 0.9, 0.9, 0.9, 0.9],
                  [0.5, 0.5, 0.6, 0.5, 0.5, 0.5]])
    listing, summary = plan_outreach(scored_from(P), 100, DEFAULT_COSTS)
    assert listing.loc[listing["mailed"], "resident_id"].tolist() == ["r0"]
    assert summary["expected_additional_attendees"] == pytest.approx(0.1)
    assert summary["baselines"]["standard_to_all"]["expected_additional_attendees"] == \
        pytest.approx(0.1)  # r0 is first in the roster
    assert summary["baselines"]["highest_probability"]["expected_additional_attendees"] == \
        pytest.approx(0.01)  # r1 is the likeliest attender anyway


def test_per_arm_costs_and_switched_off_arms() -> None:
    P = np.tile([0.3, 0.32, 0.3, 0.3, 0.3, 0.36], (10, 1))
    costs = {**DEFAULT_COSTS, "simplified": 300.0}
    listing, _ = plan_outreach(scored_from(P), 1000, costs)
    assert (listing.loc[listing["mailed"], "arm"] == "simplified").sum() == 3
    listing, _ = plan_outreach(scored_from(P), 1000, {**costs, "simplified": float("inf")})
    assert (listing.loc[listing["mailed"], "arm"] == "standard").sum() == 10


@pytest.mark.parametrize(("budget", "pattern"), [(-1, "non-negative"), (float("nan"), "non-neg"),
                                                 (0, "too small for one postcard"),
                                                 (99, "too small .* 100 yen")])
def test_bad_budgets(truth: pd.DataFrame, budget: float, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        plan_outreach(truth, budget, DEFAULT_COSTS)


def test_bad_costs(truth: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="costs missing for arms: simplified"):
        plan_outreach(truth, 1000, {a: c for a, c in DEFAULT_COSTS.items() if a != "simplified"})
    with pytest.raises(ValueError, match=r"unknown arms in costs: \['sms'\]"):
        plan_outreach(truth, 1000, {**DEFAULT_COSTS, "sms": 10})
    with pytest.raises(ValueError, match="'standard' must be >= 0"):
        plan_outreach(truth, 1000, {**DEFAULT_COSTS, "standard": -5})


def test_gain_curve_matches_the_plan(truth: pd.DataFrame) -> None:
    budgets = [0, 50_000, 100_000, 200_000, 400_000]
    curve = gain_curve(truth, DEFAULT_COSTS, budgets)
    assert [c["budget_yen"] for c in curve] == budgets and curve[0]["policy"] == 0
    policy = [c["policy"] for c in curve]
    assert policy == sorted(policy)
    _, summary = plan_outreach(truth, 100_000, DEFAULT_COSTS)
    assert curve[2]["policy"] == pytest.approx(summary["expected_additional_attendees"], abs=1e-3)
    hp = summary["baselines"]["highest_probability"]["expected_additional_attendees"]
    assert curve[2]["highest_probability"] == pytest.approx(hp, abs=1e-3)
    assert all(c["policy"] >= c["standard_to_all"] for c in curve)


def test_plans_300k_residents() -> None:
    """300k residents are planned to the budget (its speed is measured in bench.checkup_nudge,
    not asserted here: timings on a shared 2-core machine are noise)."""
    rng = np.random.default_rng(0)
    base = rng.random(300_000)[:, None]
    P = np.clip(base + rng.normal(0.02, 0.03, (300_000, len(ARMS))) * (np.arange(6) > 0), 0, 1)
    scored = scored_from(P)
    _, summary = plan_outreach(scored, 9_000_000, DEFAULT_COSTS)
    assert summary["mailed"] == 90_000


def test_simple_policy_from_training_drives_list_and_curve(truth: pd.DataFrame) -> None:
    """Issue 16: when training fell back to a simple policy, the list is that policy: its arm
    to the residents first by its simple score (here the lowest attendance without a postcard),
    not roster order."""
    policy = {"kind": "simple", "arm": "loss_frame", "arm_index": ARMS.index("loss_frame"),
              "order": "baseline_low",
              "message_ja": "データからは個人差による効果の違いを確かめられませんでした。"}
    budget = 100.0 * 40
    listing, summary = plan_outreach(truth, budget, DEFAULT_COSTS, policy)
    mailed = listing[listing["mailed"]]
    assert len(mailed) == 40 and set(mailed["arm"]) == {"loss_frame"}
    lowest = truth.sort_values("p_none", kind="stable")["resident_id"].iloc[:40]
    assert mailed["resident_id"].tolist() == lowest.tolist()
    assert listing["rank"].tolist() == list(range(1, len(truth) + 1))
    assert listing["p_none"].iloc[:40].max() <= listing["p_none"].iloc[40:].min() + 1e-5
    assert summary["policy"]["kind"] == "simple" and "個人差" in summary["policy"]["message_ja"]
    assert summary["policy"]["order"] == "baseline_low"
    curve = gain_curve(truth, DEFAULT_COSTS, [budget], policy)[0]
    assert curve["policy"] == pytest.approx(summary["expected_additional_attendees"], abs=1e-3)
    model_summary = plan_outreach(truth, budget, DEFAULT_COSTS)[1]
    assert model_summary["policy"]["kind"] == "model"
    gained = "expected_additional_attendees"
    assert model_summary[gained] > summary[gained]


def test_package_without_order_keeps_roster_order(truth: pd.DataFrame) -> None:
    """nudge.json from before the simple scores has no 'order': its list stays in roster
    order, as it was trained."""
    policy = {"kind": "simple", "arm": "standard", "arm_index": 1, "message_ja": "…"}
    listing, _ = plan_outreach(truth, 100.0 * 25, DEFAULT_COSTS, policy)
    assert listing[listing["mailed"]]["resident_id"].tolist() == \
        truth["resident_id"].iloc[:25].tolist()


def test_simple_orders_rank_by_baseline_attendance() -> None:
    p_none = np.array([0.95, 0.1, 0.5, 0.45, 0.1, 0.55])
    assert O.simple_order(p_none, "baseline_high").tolist() == [0, 5, 2, 3, 1, 4]
    assert O.simple_order(p_none, "baseline_low").tolist() == [1, 4, 3, 2, 5, 0]
    assert O.simple_order(p_none, "baseline_middle").tolist() == [2, 3, 5, 1, 4, 0]
    assert O.simple_order(p_none, "roster").tolist() == list(range(6))
    with pytest.raises(ValueError, match="unknown simple order 'by_uplift'"):
        O.simple_order(p_none, "by_uplift")
    costs = np.array(DEFAULT_COSTS_VECTOR)
    assign = O.one_arm_by_score(p_none, 2, costs, 2.5 * costs[2], "baseline_low")
    assert assign.tolist() == [0, 2, 0, 0, 2, 0]  # two postcards, the two lowest


def test_simple_policies_are_every_arm_by_every_score_within_the_budget() -> None:
    rng = np.random.default_rng(4)
    P = rng.random((500, len(ARMS)))
    costs = np.array(DEFAULT_COSTS_VECTOR)
    costs[ARMS.index("simplified")] = np.inf  # switched off: no candidate uses it
    simple = O.simple_policies(P, costs, 100 * costs[1])
    mailable = [k for k in range(1, len(ARMS)) if np.isfinite(costs[k])]
    assert set(simple) == {f"{o}:{k}" for o in O.SIMPLE_ORDERS for k in mailable}
    for name, assign in simple.items():
        order, arm = name.split(":")
        assert set(np.unique(assign)) == {0, int(arm)}
        assert O.spent(assign, costs) <= 100 * costs[1]
        mailed_p = P[assign > 0, 0]
        other_p = P[assign == 0, 0]
        if order == "baseline_high":
            assert mailed_p.min() >= other_p.max()
        elif order == "baseline_low":
            assert mailed_p.max() <= other_p.min()
