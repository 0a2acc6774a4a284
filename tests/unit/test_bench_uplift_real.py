"""The uplift benchmark's splitting and coverage bookkeeping (bench/uplift_real.py); the
repeated-split study itself is slow and runs in `make bench`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import uplift_real as U
from models.checkup_nudge.arms import ARMS


def test_train_sample_is_disjoint_stratified_and_capped() -> None:
    arm = pd.Series(np.random.default_rng(0).choice(["a", "b", "c"], 50_000))
    train, held = U.train_sample(arm, 6_000, seed=3, held_max=20_000)
    assert not (train & held).any()
    assert abs(int(train.sum()) - 6_000) <= 3 and int(held.sum()) == 20_000
    shares = arm[train].value_counts(normalize=True)
    assert np.allclose(shares.sort_index(), arm.value_counts(normalize=True).sort_index(),
                       atol=0.002)
    train70, held30 = U.split_70_30(arm, seed=3)
    assert not (train70 & held30).any() and (train70 | held30).all()


def test_check_reports_the_ceiling_z_and_truth() -> None:
    own = {"estimate": 0.01, "ci_low": 0.01 - 1.96 * 0.004, "ci_high": 0.01 + 1.96 * 0.004}
    held = {"estimate": 0.02, "ci_low": 0.0, "ci_high": 0.0, "se": 0.004}
    out = U._check(own, held, 0.012)
    # equal standard errors: an exact 95% CI covers the other estimate in 83% of repeats
    assert out["coverage_ceiling"] == pytest.approx(0.834, abs=0.002)
    assert out["z_own_minus_held_out"] == pytest.approx(-0.01 / np.hypot(0.004, 0.004), abs=0.01)
    assert out["covers_held_out"] is False and out["covers_true_gain"] is True
    zero = {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    trivial = U._check(zero, {**zero, "se": 0.0}, None)
    assert trivial["trivial"] and trivial["covers_held_out"] and "coverage_ceiling" not in trivial


def test_redraw_is_a_new_uniform_trial_from_the_truth() -> None:
    truth = np.tile(np.linspace(0.1, 0.6, len(ARMS)), (60_000, 1))
    meta = {"treatment": "arm", "outcome": "y", "truth": truth}
    df = pd.DataFrame({"x": np.zeros(60_000)})
    one, two = U.redraw(df, meta, 1), U.redraw(df, meta, 2)
    assert (one["arm"] != two["arm"]).mean() > 0.8  # independent repeats
    rates = one.assign(y=one["y"].astype(int)).groupby("arm")["y"].mean()
    assert np.allclose([rates[a] for a in ARMS], truth[0], atol=0.02)


def test_households_stay_whole_and_widen_the_held_out_se() -> None:
    """GGL households: blocks of hh_size rows with one arm; splits keep them whole; copies
    of a row within a household widen the cluster-robust SE by ~sqrt(size)."""
    size = np.array([2, 2, 1, 3, 3, 3])
    arm = np.array(["a", "a", "b", "a", "a", "a"])
    assert U.household_ids(size, arm).tolist() == [0, 0, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="row 0"):
        U.household_ids(size, np.array(["a", "b", "b", "a", "a", "a"]))
    rng = np.random.default_rng(0)
    hh = np.repeat(np.arange(10_000), 3)
    arms = pd.Series(np.repeat(rng.choice(["a", "b"], 10_000), 3))
    train, held = U.train_sample(arms, 6_000, seed=2, held_max=9_000, groups=hh)
    assert not (train & held).any() and 0 < held.sum() <= 9_000
    assert not set(hh[train]) & set(hh[held])
    for mask in (train, held):  # a household is all in or all out
        assert (pd.Series(mask).groupby(hh).nunique() == 1).all()
    v = np.repeat(rng.normal(size=(10_000, 2)), 3, axis=0)
    plain = U.clt(v, ["p", "q"], "q")["value"]["p"]["se"]
    robust = U.clt(v, ["p", "q"], "q", hh)["value"]["p"]["se"]
    assert robust / plain == pytest.approx(np.sqrt(3), rel=0.05)


def _splits(kappa: float, ratio: float, n: int, seed: int, bias: float = 0.0) -> list[dict]:
    """n splits whose own 95% CI (SE s_o) has error kappa * s_o (+ bias * s_o) around the true
    gain 0 and a held-out estimate with its own error ratio * s_o (independent), as `_check`
    records them."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s_o = rng.uniform(0.005, 0.02)
        own_est = kappa * s_o * rng.normal() + bias * s_o
        own = {"estimate": own_est, "ci_low": own_est - 1.96 * s_o,
               "ci_high": own_est + 1.96 * s_o}
        held = {"estimate": ratio * s_o * rng.normal(), "se": ratio * s_o}
        check = U._check(own, held, 0.0)
        out.append({"gain": {"dr": check, "ipw": check}})
    return out


def test_a_noisy_held_out_estimate_is_judged_with_its_own_error() -> None:
    """An exact own CI (kappa 1) against a held-out estimate 1.5x as noisy (NSW's case): it
    covers the held-out estimate in only ~72% of splits, but the held-out estimate falls in
    its prediction interval in ~95%, and the implied coverage of the truth is ~95%, as the
    direct coverage of the truth. A CI 1.6x too narrow is caught by the implied coverage
    (~78%) though the prediction-interval share stays ~89% (the yardstick's noise hides it)."""
    exact = _splits(1.0, 1.5, 1500, 0)
    got = U.coverage(exact, "gain")
    assert got["dr"]["covers_held_out_share"] == pytest.approx(0.72, abs=0.04)
    assert got["dr"]["covers_held_out_with_its_error_share"] == pytest.approx(0.95, abs=0.02)
    implied = got["dr"]["implied_true_gain_coverage"]
    assert implied["estimate"] == pytest.approx(0.95, abs=0.03)
    assert implied["ci_low"] < 0.95 < implied["ci_high"]
    assert got["covers_true_gain_share"] == pytest.approx(0.95, abs=0.02)
    assert got["covers_true_gain_count"]["n"] == 1500
    narrow = U.coverage(_splits(1.6, 1.5, 1500, 1), "gain")
    assert narrow["covers_true_gain_share"] == pytest.approx(0.78, abs=0.04)
    assert narrow["dr"]["implied_true_gain_coverage"]["estimate"] == pytest.approx(0.78, abs=0.05)
    assert narrow["dr"]["implied_true_gain_coverage"]["ci_high"] < 0.9
    assert narrow["dr"]["covers_held_out_with_its_error_share"] == pytest.approx(0.89, abs=0.03)


def test_prediction_interval_widens_each_side_and_binomial_ci() -> None:
    own = {"estimate": 0.01, "ci_low": 0.0, "ci_high": 0.05}  # asymmetric, as served
    low, high = U.prediction_interval(own, 0.01)
    assert low == pytest.approx(0.01 - np.hypot(0.01, 0.0196))
    assert high == pytest.approx(0.01 + np.hypot(0.04, 0.0196))
    assert U.prediction_interval(own, 0.0) == pytest.approx((0.0, 0.05))
    assert U.binomial_ci(40, 50) == pytest.approx([0.663, 0.9], abs=0.002)
    assert U.binomial_ci(50, 50)[1] == 1.0 and U.binomial_ci(0, 10)[0] == 0.0


def test_error_decomposition_tells_bias_from_variance() -> None:
    """Issue 16: misses of the own CI come from a biased centre (one-sided) or a too narrow
    CI (both sides); the decomposition names which."""
    exact = U.error_decomposition(_splits(1.0, 1.5, 2000, 3), "gain")
    assert abs(exact["bias"]) < 2.5 * exact["bias_se"]
    assert exact["variance_ratio"] == pytest.approx(1.0, abs=0.1)
    assert abs(exact["prediction_interval_misses_below"]
               - exact["prediction_interval_misses_above"]) < 30
    narrow = U.error_decomposition(_splits(1.6, 1.5, 2000, 4), "gain")
    assert abs(narrow["bias"]) < 2.5 * narrow["bias_se"]
    assert narrow["variance_ratio"] == pytest.approx((1.6 ** 2 + 2.25) / 3.25, abs=0.12)
    biased = U.error_decomposition(_splits(1.0, 1.5, 2000, 5, bias=1.5), "gain")
    assert biased["bias"] > 5 * biased["bias_se"]  # own above held-out: misses below
    assert biased["prediction_interval_misses_below"] > \
        4 * biased["prediction_interval_misses_above"]
    assert biased["own_ci_misses_below"] > biased["own_ci_misses_above"]
    assert U.error_decomposition(_splits(1.0, 1.5, 1, 6), "gain") is None


def test_repeat_counts_default_full_and_per_dataset() -> None:
    """`make bench` runs the shorter default; `full` is the published study; bad specs stop."""
    assert U.parse_repeats("") == U.REPEATS
    assert U.parse_repeats("full") == U.REPEATS_FULL
    assert sum(U.REPEATS.values()) < sum(U.REPEATS_FULL.values())
    assert U.parse_repeats("3") == dict.fromkeys(U.REPEATS, 3)
    assert U.parse_repeats("nsw:7") == {**U.REPEATS, "nsw": 7}
    for bad in ("nsw:x", "lots", "hillstrom:3"):
        with pytest.raises(SystemExit):
            U.parse_repeats(bad)
