"""Issue 16 under a budget (models/checkup_nudge/task.py check_policy): the simple candidates are
one arm for the residents the budget reaches, ranked by a simple score, and the AI list is kept
only when its gain over the best of them has a 95% CI above zero."""

from __future__ import annotations

import numpy as np

from models.checkup_nudge.arms import ARMS, DEFAULT_COSTS
from models.checkup_nudge.estimator import Experiment
from models.checkup_nudge.task import check_policy

COSTS = np.array([DEFAULT_COSTS[a] for a in ARMS])
LOSS = ARMS.index("loss_frame")


def _trial(truth: np.ndarray, seed: int) -> Experiment:
    """One validation row per person: a uniform random arm and an outcome drawn from truth."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    arm = rng.integers(0, len(ARMS), n)
    y = (rng.random(n) < truth[np.arange(n), arm]).astype(float)
    return Experiment(np.zeros((n, 1), np.float32), arm, y, np.full(n, 1 / len(ARMS)),
                      np.arange(n), len(ARMS))


def _base(n: int, seed: int) -> np.ndarray:
    p_none = np.random.default_rng([seed, 1]).uniform(0.05, 0.95, n)
    return np.repeat(p_none[:, None], len(ARMS), axis=1)


def test_effect_among_unlikely_attenders_picks_the_baseline_score_not_the_model() -> None:
    """Loss frame moves only those unlikely to attend: 'loss frame to the lowest predicted
    attendance first' is as good as the AI list, so the simple policy is recommended, by that
    score (roster order would have lost to the AI list)."""
    n = 30_000
    truth = _base(n, 0)
    low = truth[:, 0] < 0.3
    truth[low, LOSS] += 0.15
    budget = float(low.mean()) * 100.0 * 0.9  # yen per resident: 90% of the low group
    choice = check_policy(_trial(truth, 1), truth, truth, COSTS, budget, 200, 0)
    assert choice["kind"] == "simple"
    assert (choice["arm"], choice["order"]) == ("loss_frame", "baseline_low")
    assert "送付しないと受診する見込みが低い人から順に" in choice["message_ja"]
    assert "個人差" in choice["message_ja"]
    cands = choice["simple_candidates_per_1000"]
    assert cands["baseline_low:3"] > cands["baseline_high:3"] + 10  # the score matters


def test_effect_unrelated_to_the_baseline_keeps_the_model() -> None:
    """Loss frame moves every other person whatever their baseline: no simple score finds
    them, so the AI list's gain has a CI above zero and it is kept."""
    n = 30_000
    truth = _base(n, 2)
    truth[::2, LOSS] += 0.15
    choice = check_policy(_trial(truth, 3), truth, truth, COSTS, 40.0, 200, 0)
    assert choice["kind"] == "model"
    gain = choice["gain_per_1000_residents_vs_best_simple"]
    assert gain["ci_low"] > 0 and gain["estimate"] > 20
    assert choice["validation_residents"] == n
