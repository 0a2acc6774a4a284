"""Cross-fitting helpers (models/checkup_nudge/crossfit.py): folds, DR scores, policy tree."""

from __future__ import annotations

import numpy as np
import pytest

from models.checkup_nudge import crossfit as CF


def test_group_folds_keep_a_person_together_and_balance() -> None:
    groups = np.repeat(np.arange(100), 3)  # three campaigns per person
    fold = CF.group_folds(groups, 5, seed=1)
    assert all(len(set(fold[groups == g])) == 1 for g in range(100))
    assert np.bincount(fold).tolist() == [60] * 5


def test_out_of_fold_shares_ignore_the_row_fold() -> None:
    arm = np.array([0, 0, 1, 1, 0, 1])
    fold = np.array([0, 0, 0, 1, 1, 1])
    prop = CF.out_of_fold_shares(arm, fold, 2)
    # fold 0 rows see fold 1's arms (1 of 3 is arm 0); fold 1 rows see fold 0's (2 of 3)
    assert np.allclose(prop, [1 / 3, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 1 / 3])


def test_dr_scores_are_unbiased_with_a_wrong_outcome_model() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    arm = rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(arm == 1, 0.4, 0.3)).astype(float)
    mu = np.full((n, 2), 0.9)  # badly wrong, but the propensity (0.5) is right
    gamma = CF.dr_scores(mu, arm, y, np.full(n, 0.5))
    assert np.allclose(gamma.mean(0), [0.3, 0.4], atol=0.01)


def test_policy_tree_finds_the_segment_and_reads_as_rules() -> None:
    rng = np.random.default_rng(2)
    n = 4000
    X = np.column_stack([rng.integers(20, 80, n), rng.integers(0, 3, n)]).astype(np.float32)
    gamma = rng.normal(0, 1, (n, 2)) * 0.1
    gamma[:, 1] += np.where(X[:, 0] > 50, 0.3, -0.3)  # arm 1 helps only the over-50s
    tree = CF.fit_policy_tree(X, gamma)
    assign = CF.tree_assign(tree, X)
    assert (assign == (X[:, 0] > 50)).mean() > 0.95
    rules = CF.tree_rules(tree, ["age", "group"], ["A", "B"], {"group": ["a", "b", "c"]})
    assert any(r.startswith("age <= 50") and r.endswith("-> A") for r in rules)


def test_cluster_bootstrap_resamples_whole_clusters() -> None:
    """One row per cluster: the row bootstrap, draw for draw. Each row copied 4 times (a
    household voting as one): the row bootstrap's CI shrinks by ~2, the cluster one does not."""
    from models.checkup_nudge import metrics as M

    rng = np.random.default_rng(0)
    v = rng.normal(size=(2000, 2))
    p1, d1 = M.cluster_bootstrap(v, np.arange(2000), 1.0, 200, 3)
    p0, d0 = M.bootstrap(v, 1.0, 200, 3)
    assert np.allclose(p1, p0) and np.allclose(d1, d0)
    dup, hh = np.repeat(v, 4, axis=0), np.repeat(np.arange(2000), 4)
    pc, dc = M.cluster_bootstrap(dup, hh, 1.0, 400, 3)
    _, dr = M.bootstrap(dup, 1.0, 400, 3)
    assert np.allclose(pc, p0)
    ratio = dc.std(axis=0) / dr.std(axis=0)
    assert ((ratio > 1.7) & (ratio < 2.3)).all(), ratio
    assert np.allclose(dc.std(axis=0), d0.std(axis=0), rtol=0.2)
    # unequal clusters: the estimand stays the mean per row (not per cluster)
    sizes = np.where(np.arange(2000) % 2 == 0, 1, 5)
    rows = np.repeat(np.arange(2000), sizes)
    pu, _ = M.cluster_bootstrap(v[rows], rows, 1.0, 50, 3)
    assert np.allclose(pu, v[rows].mean(axis=0))


def test_served_gain_adds_the_learning_curve_step() -> None:
    """The served (refitted) policy's gain: the cross-fitted one plus 3/K learning-curve
    steps; the CI keeps its lower bound and widens upwards; no step when the smaller policies
    assign the same arms."""
    rng = np.random.default_rng(1)
    n, k = 4000, 5
    gamma = rng.normal(0.3, 0.5, size=(n, 2))
    gamma[:, 1] += np.where(np.arange(n) % 2 == 0, 0.2, -0.1)  # arm 1 helps even rows
    fold = np.arange(n) % k
    cf = CF.CrossFit(fold, gamma, {}, np.full(n, 0.5), gamma)
    full = (np.arange(n) % 2 == 0).astype(int)  # learned: arm 1 for even rows
    pol = CF.FoldPolicies({"best_single_arm": np.zeros(n, int), "model": full,
                           "policy_tree": full}, [0] * k, ["t"] * k)
    worse = np.where(np.arange(n) % 4 == 0, 1, 0)  # on fewer rows: half the even rows
    same = CF.served_gains(cf, pol, {"model": full}, np.arange(n), 100, 0)["model"]
    assert same["learning_curve_step"] == 0
    assert {k_: same[k_] for k_ in ("estimate", "ci_low", "ci_high")} == {
        k_: same["cross_fitted"][k_] for k_ in ("estimate", "ci_low", "ci_high")}  # no noise
    out = CF.served_gains(cf, pol, {"model": worse}, np.arange(n), 100, 0)["model"]
    step, cfg = out["learning_curve_step"], out["cross_fitted"]
    assert step == pytest.approx((gamma[2::4, 1] - gamma[2::4, 0]).sum() / n, abs=1e-4)
    assert step > 0.03
    assert out["estimate"] == pytest.approx(cfg["estimate"] + 3 / k * step, abs=1e-4)
    assert out["ci_low"] == cfg["ci_low"]
    # the upper bound moves by about one step (plus the step's own noise)
    assert cfg["ci_high"] + 0.8 * step < out["ci_high"] < cfg["ci_high"] + 1.6 * step


def _threshold_trials(reps: int, spread: float, seed: int, n: int = 2000,
                      ) -> tuple[float, float, float]:
    """Fold policies 'treat if x > c_f' with c_f drawn anew per fold (unstable learning) and
    the served policy one more draw; returns the coverage of the served policy's true gain by
    the sampling-only CI and by the CI with `policy_spread`, and the mean policy SD."""
    rng = np.random.default_rng(seed)
    k = 5
    hits = np.zeros(2)
    sds = []
    for _ in range(reps):
        x = rng.uniform(-1, 1, n)
        fold = np.arange(n) % k
        g0, g1 = rng.normal(0, 0.5, n), 0.2 * x + rng.normal(0, 0.5, n)
        c = rng.uniform(-spread, spread, k + 1)  # folds' thresholds, then the served one's
        d = (g1 - g0) * (x > c[fold])
        se = d.std(ddof=1) / np.sqrt(n)
        ci = {"estimate": d.mean(), "ci_low": d.mean() - 1.96 * se,
              "ci_high": d.mean() + 1.96 * se}
        sd = CF.policy_spread(d, fold, np.arange(n))
        wide = CF.widen(ci, sd)
        true = 0.2 * (1 - c[k] ** 2) / 4  # E[0.2 x 1(x > c)], x ~ U(-1, 1)
        hits += [ci["ci_low"] <= true <= ci["ci_high"],
                 wide["ci_low"] <= true <= wide["ci_high"]]
        sds.append(sd)
    return float(hits[0] / reps), float(hits[1] / reps), float(np.mean(sds))


def test_policy_spread_counts_unstable_learned_policies() -> None:
    """Issue 16: a policy relearned on other rows is one more draw of an unstable learner; the
    bootstrap with the fold policies held fixed misses that and under-covers the served
    policy's gain (~83% here); adding the folds' spread beyond sampling restores ~90% (5 folds
    estimate it noisily). Stable policies: coverage is kept, the spread estimate is noise only
    (its cost: wider CIs, ~1.5x at 2,000 rows, less with more rows per fold)."""
    sampling, widened, sd = _threshold_trials(400, 0.8, 0)
    assert sampling < 0.87 and widened > 0.88 and widened - sampling > 0.04, (sampling, widened)
    assert 0.006 < sd < 0.014  # true SD of the served gain: ~0.0095 * sqrt(1.2)
    stable_sampling, stable_widened, _ = _threshold_trials(200, 0.0, 1)
    assert stable_widened >= stable_sampling
    # with 10x the rows the folds' sampling noise shrinks: a real spread stands out
    _, _, sd_big = _threshold_trials(100, 0.8, 2, n=20_000)
    _, _, sd_big_stable = _threshold_trials(100, 0.0, 3, n=20_000)
    assert 0.007 < sd_big < 0.013 and sd_big_stable < 0.5 * sd_big, (sd_big, sd_big_stable)
    # one fold, or no spread at all: nothing to add
    assert CF.policy_spread(np.ones(10), np.zeros(10, int), np.arange(10)) == 0.0
    assert CF.policy_spread(np.ones(10), np.arange(10) % 2, np.arange(10)) == 0.0


def test_policy_spread_uses_cluster_robust_fold_variance() -> None:
    """Rows of a household move together: the within-fold sampling variance is the cluster
    one, so duplicated rows do not pass for a spread between the folds."""
    rng = np.random.default_rng(2)
    d = rng.normal(0, 1, 500)
    fold = np.arange(500) % 5
    dup, hh = np.repeat(d, 4), np.repeat(np.arange(500), 4)
    assert CF.policy_spread(dup, np.repeat(fold, 4), hh) == pytest.approx(
        CF.policy_spread(d, fold, np.arange(500)), rel=0.05, abs=1e-4)
    assert CF.policy_spread(dup, np.repeat(fold, 4), np.arange(2000)) >= \
        CF.policy_spread(d, fold, np.arange(500))
    wide = CF.widen({"estimate": 0.1, "ci_low": 0.0, "ci_high": 0.3}, 0.05)
    assert wide["ci_low"] == pytest.approx(0.1 - np.hypot(0.1, 0.098), abs=1e-5)
    assert wide["ci_high"] == pytest.approx(0.1 + np.hypot(0.2, 0.098), abs=1e-5)


def test_selection_out_of_fold_removes_the_winners_curse() -> None:
    """Two candidates with no true gain: the larger of their gains on the same rows is
    flattered (winner's curse); the choice made on the other folds and valued on the fold
    is not."""
    rng = np.random.default_rng(4)
    n, k = 1000, 5
    fold = np.arange(n) % k
    best_of_two, selected = [], []
    for _ in range(300):
        gamma = rng.normal(0.3, 1.0, size=(n, 2))  # arms equal in truth
        cf = CF.CrossFit(fold, gamma, {}, np.full(n, 0.5), gamma)
        pol = CF.FoldPolicies({"best_single_arm": np.zeros(n, int),
                               "model": rng.integers(0, 2, n),
                               "policy_tree": rng.integers(0, 2, n)}, [0] * k, ["t"] * k)
        gain = {c: (gamma[np.arange(n), pol.assign[c]] - gamma[:, 0]).mean()
                for c in ("model", "policy_tree")}
        best_of_two.append(max(gain.values()))
        assign, chosen = CF.select_out_of_fold(cf, pol, ("model", "policy_tree"))
        assert len(chosen) == k and set(chosen) <= {"model", "policy_tree"}
        assert (assign == CF.by_fold(pol.assign, chosen, fold)).all()
        selected.append((gamma[np.arange(n), assign] - gamma[:, 0]).mean())
    se = np.std(selected) / np.sqrt(len(selected))
    assert np.mean(best_of_two) > 0.01  # ~0.56 SE of one gain (0.032) above 0
    assert abs(np.mean(selected)) < 3 * se
