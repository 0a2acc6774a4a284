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
