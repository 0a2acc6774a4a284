"""Honest policy estimates: K-fold cross-fitting, DR scores, policies chosen out of fold.

Every row's outcome model (P(attend | x, arm)) and assignment probability come from models fitted
on the other folds, so its doubly robust (AIPW) score per arm, gamma (n, n_arms), is unbiased for
that row's outcome under each arm. Candidate policies (everyone gets arm k, a depth-2 policy tree
on the scores, the uplift model's own argmax) are chosen on the other folds and valued on the
held-out fold; concatenating the folds gives per-person values whose bootstrap CIs account for
having chosen the policy (Athey & Wager 2021, "Policy learning with observational data"; the
cross-fitted evaluation of Chernozhukov et al. 2018).

Rule (issue 16): a personalised policy is recommended only when its cross-fitted gain over the
best simple policy has a 95% CI above zero; otherwise the best simple policy is recommended.
A trial with fewer than MIN_EVENTS_PER_ARM events in an arm is too small to personalise, CI or
not (`policy_report`'s `fewest_events`): the same data cannot even rank the arms' averages, a
personalised policy's gain is an interaction of arm and person, estimated with about twice the
standard error of an average effect at the same size (Gelman 2018, "You need 16 times the
sample size to estimate an interaction than to estimate a main effect", Statistical Modeling,
Causal Inference, and Social Science, 15 March 2018), and the rule picks the better of two
candidates by that noisy CI, which flatters the one picked (the winner's curse). Measured on
NSW (bench.uplift_real, 200 splits of 312 persons, seeds 31001-31200): 4 personalised, 3 of
them in splits with under 100 events in an arm, and all 3 lost to the best arm out of sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.checkup_nudge import metrics as M
from models.checkup_nudge.estimator import Experiment, fit_uplift

FOLDS = 5
TREE_DEPTH = 2
SMALLER_SHARE = 0.75  # learning-curve step: policies relearned on 3/4 of their training rows
MIN_EVENTS_PER_ARM = 100  # below this, arm rates swap between halves of a trial (issue 16)
NO_HETEROGENEITY_JA = ("データからは個人差による効果の違いを確かめられませんでした。"
                       "全員に同じメッセージを送る方針（{arm}）を推奨します。")
SMALL_TRIAL_EN = ("The trial is too small to personalise: a personalised policy's gain had a "
                  "95% CI above zero, but an arm has fewer than {min_events} events, too few "
                  "to rank even the arms' averages; the recommendation is the simple policy "
                  "'{name}'.")
NO_HETEROGENEITY_EN = ("The data show no reliable difference between persons: the personalised "
                       "policy's gain over the best simple policy has a 95% CI that includes "
                       "zero, so the recommendation is the simple policy '{name}'.")


@dataclass
class CrossFit:
    """Out-of-fold nuisances and DR scores of one experiment.

    fold (n,) int; mu (n, n_arms) out-of-fold P(outcome | x, arm) averaged over learners;
    preds maps a learner to its own out-of-fold P; prop (n,) out-of-fold probability of the
    received arm; gamma (n, n_arms) DR score of each arm.
    """

    fold: np.ndarray
    mu: np.ndarray
    preds: dict[str, np.ndarray]
    prop: np.ndarray
    gamma: np.ndarray


def group_folds(groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per row; all rows of a person share a fold; folds of near-equal size."""
    uniq, inverse = np.unique(groups, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = np.empty(len(uniq), int)
    fold_of[order] = np.arange(len(uniq)) % k
    return fold_of[inverse]


def out_of_fold_shares(arm: np.ndarray, fold: np.ndarray, n_arms: int) -> np.ndarray:
    """Probability of each row's arm estimated as the arm share in the other folds."""
    prop = np.empty(len(arm))
    for f in np.unique(fold):
        rest = fold != f
        share = np.bincount(arm[rest], minlength=n_arms) / max(int(rest.sum()), 1)
        prop[fold == f] = share[arm[fold == f]]
    return np.clip(prop, 1e-3, 1.0)


def dr_scores(mu: np.ndarray, arm: np.ndarray, y: np.ndarray, prop: np.ndarray) -> np.ndarray:
    """AIPW score of each arm per row: mu + 1[arm = a] (y - mu) / prop, shape (n, n_arms)."""
    gamma = mu.copy()
    rows = np.arange(len(y))
    gamma[rows, arm] += (y - mu[rows, arm]) / prop
    return gamma


def crossfit(data: Experiment, arms: Sequence[str], learners: Sequence[str], params: dict,
             seed: int, k: int = FOLDS, categorical: Sequence[int] = (),
             known_propensity: bool = True) -> CrossFit:
    """Fit every learner K times, each on K-1 folds, and predict the held-out fold.

    Without a known propensity, the arm shares of the other folds are the propensity model
    (simple randomisation). ValueError when a fold leaves an arm without both outcomes.
    """
    fold = group_folds(data.groups, k, seed)
    preds = {name: np.zeros((len(data.y), len(arms))) for name in learners}
    for f in range(k):
        test = fold == f
        train = data.subset(~test)
        for name in learners:
            model = fit_uplift(train, arms, name, params, seed, categorical)
            preds[name][test] = model.predict(data.X[test])
    mu = np.mean(list(preds.values()), axis=0)
    prop = data.prop if known_propensity else out_of_fold_shares(data.arm, fold, len(arms))
    return CrossFit(fold, mu, preds, prop, dr_scores(mu, data.arm, data.y, prop))


def fit_policy_tree(X: np.ndarray, gamma: np.ndarray, depth: int = TREE_DEPTH,
                    seed: int = 0) -> Any:
    """A depth-1..2 tree on the DR scores: each leaf gets the arm with the best mean score.

    A multi-output regression tree on gamma (n, n_arms) splits to separate persons whose best
    arm differs, which is what a policy tree maximises, at a fraction of an exhaustive search.
    """
    from sklearn.tree import DecisionTreeRegressor

    leaf = max(30, len(X) // 20)  # a rule staff can read covers at least 5% of persons
    tree = DecisionTreeRegressor(max_depth=depth, min_samples_leaf=leaf, random_state=seed)
    return tree.fit(np.asarray(X, np.float32), gamma)


def tree_assign(tree: Any, X: np.ndarray) -> np.ndarray:
    """The arm per row of a fitted policy tree (argmax of its leaf's mean scores)."""
    return np.asarray(tree.predict(np.asarray(X, np.float32))).reshape(len(X), -1).argmax(1)


def tree_rules(tree: Any, features: Sequence[str], arms: Sequence[str],
               levels: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Each leaf as a readable rule: 'age <= 54.5 and p2004 > 0.5 -> neighbors'.

    A categorical feature (coded by its sorted `levels`) reads as 'group in {a, b}'.
    """
    t = tree.tree_
    out: list[str] = []
    levels = levels or {}

    def test(name: str, thr: float, left: bool) -> str:
        if name not in levels:
            return f"{name} {'<=' if left else '>'} {thr:g}"
        cut = int(np.floor(thr)) + 1
        chosen = levels[name][:cut] if left else levels[name][cut:]
        return f"{name} in {{{', '.join(chosen)}}}"

    def walk(node: int, path: list[str]) -> None:
        if t.children_left[node] < 0:
            arm = arms[int(np.argmax(t.value[node].reshape(-1)))]
            out.append(f"{' and '.join(path) or 'everyone'} -> {arm}")
            return
        name, thr = features[t.feature[node]], t.threshold[node]
        walk(t.children_left[node], [*path, test(name, thr, True)])
        walk(t.children_right[node], [*path, test(name, thr, False)])

    walk(0, [])
    return out


@dataclass
class FoldPolicies:
    """Per row, the arm each candidate assigns, every candidate chosen without the row's fold."""

    assign: dict[str, np.ndarray]  # candidate name -> arm index per row
    best_arm_by_fold: list[int]
    learner_by_fold: list[str]


def fold_policies(cf: CrossFit, X: np.ndarray, n_arms: int, seed: int) -> FoldPolicies:
    """Choose the policy tree and the learner on K-1 folds and apply them to the K-th fold.

    The model's policy on a fold is the argmax of the learner that did best on the other folds
    (its predictions there are out-of-fold too).
    """
    n = len(cf.fold)
    # the baseline is the arm best on ALL rows (what would be deployed): its value carries the
    # winner's curse in its own favour, so the personalised policies must beat a baseline that
    # is, if anything, flattered (a per-fold choice of arm would handicap it when arms are close)
    assign = {"best_single_arm": np.full(n, int(cf.gamma.mean(0).argmax())),
              "policy_tree": np.zeros(n, int), "model": np.zeros(n, int)}
    arms_chosen, learners_chosen = [], []
    for f in np.unique(cf.fold):
        test, rest = cf.fold == f, cf.fold != f
        best = int(cf.gamma[rest].mean(0).argmax())
        tree = fit_policy_tree(X[rest], cf.gamma[rest], seed=seed)
        assign["policy_tree"][test] = tree_assign(tree, X[test])
        learner = max(cf.preds, key=lambda name: _value(cf, name, rest))
        assign["model"][test] = cf.preds[learner][test].argmax(1)
        arms_chosen.append(best)
        learners_chosen.append(learner)
    return FoldPolicies(assign, arms_chosen, learners_chosen)


def smaller_policies(cf: CrossFit, data: Experiment, arms: Sequence[str],
                     policies: FoldPolicies, params: dict, seed: int,
                     categorical: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """One step down the learning curve: per row, the arm the uplift model (the learner chosen
    for the row's fold) and the policy tree assign when relearned on a random SMALLER_SHARE of
    the groups of the row's training folds. {candidate: arm index (n,)}."""
    keep_group = np.random.default_rng([seed, 11]).random(len(np.unique(data.groups)))
    keep = keep_group[np.unique(data.groups, return_inverse=True)[1]] < SMALLER_SHARE
    out = {"model": np.zeros(len(cf.fold), int), "policy_tree": np.zeros(len(cf.fold), int)}
    for f, learner in zip(np.unique(cf.fold), policies.learner_by_fold, strict=True):
        test = cf.fold == f
        train = ~test & keep
        model = fit_uplift(data.subset(train), arms, learner, params, seed, categorical)
        out["model"][test] = model.predict(data.X[test]).argmax(1)
        tree = fit_policy_tree(data.X[train], cf.gamma[train], seed=seed)
        out["policy_tree"][test] = tree_assign(tree, data.X[test])
    return out


def served_gains(cf: CrossFit, policies: FoldPolicies, smaller: Mapping[str, np.ndarray],
                 groups: np.ndarray, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Gain over the best single arm of each personalised candidate AS SERVED (relearned on
    every row), from its cross-fitted gain (learned on (K-1)/K of the rows) plus the learning
    curve's next step.

    step = value of the fold policies - value of the same policies relearned on SMALLER_SHARE
    of their rows (paired, cross-fitted DR). If value grows like a - b / rows, going from
    (K-1)/K of the rows to all of them adds 3 / K steps (SMALLER_SHARE = 3/4): the estimate
    adds that; the CI keeps the cross-fitted lower bound (the served policy learns from more
    rows) and its upper bound is the 97.5th percentile of bootstrap draws of gain + max(1, 3/K)
    steps (each draw's step, so the step's own noise widens it). Negative steps count as 0.

    The CI is for the TRUE gain. An estimate of it on other persons (a held-out check) has its
    own sampling error s_h, so even an exact CI (SE s_o) covers such an estimate in only
    2 Phi(1.96 / sqrt(1 + (s_h / s_o)^2)) - 1 of checks (~78% on NSW's 133 held-out persons):
    judge it with the prediction interval, each side widened to sqrt(side^2 + (1.96 s_h)^2)
    (Cumming & Maillardet 2006, Psychological Methods 11(3)), as bench.uplift_real does.
    Measured there (seeds never used while developing): README, issue 16.
    """
    k = int(cf.fold.max()) + 1
    rows = np.arange(len(cf.fold))
    base = cf.gamma[rows, policies.assign["best_single_arm"]]
    cols = []
    for p, small in smaller.items():
        full = cf.gamma[rows, policies.assign[p]]
        cols += [full - base, full - cf.gamma[rows, small]]
    point, draws = M.cluster_bootstrap(np.column_stack(cols), groups, 1.0, n_boot, seed)
    out = {}
    for j, p in enumerate(smaller):
        gain = M.interval(point[2 * j], draws[:, 2 * j])
        step = max(float(point[2 * j + 1]), 0.0)
        # the upper bound from joint draws of gain + steps: the step's own noise counts (a
        # step estimated at 0 can still be positive)
        upper = draws[:, 2 * j] + max(1.0, 3 / k) * np.maximum(draws[:, 2 * j + 1], 0.0)
        high = max(gain["ci_high"], float(np.percentile(upper, 97.5))) if len(upper) \
            else gain["ci_high"]
        out[p] = {"estimate": round(gain["estimate"] + 3 / k * step, 5),
                  "ci_low": gain["ci_low"], "ci_high": round(high, 5),
                  "cross_fitted": gain, "learning_curve_step": round(step, 5)}
    return out


def _value(cf: CrossFit, learner: str, rows: np.ndarray) -> float:
    rec = cf.preds[learner][rows].argmax(1)
    return float(cf.gamma[rows][np.arange(len(rec)), rec].mean())


def policy_report(cf: CrossFit, policies: FoldPolicies, groups: np.ndarray,
                  arms: Sequence[str], n_boot: int, seed: int,
                  personalised: Sequence[str] = ("policy_tree", "model"),
                  fewest_events: int | None = None) -> dict[str, Any]:
    """Cross-fitted value of every candidate, gains over the best single arm, the decision.

    Values are mean outcomes per row (DR); CIs resample whole `groups` (clusters: households,
    or a person's campaigns). The decision follows the module's rule; the
    returned 'recommended' names a key of 'values'. `fewest_events`: the events (outcome = 1)
    of the arm with fewest; below MIN_EVENTS_PER_ARM no personalised policy is recommended
    ('too_small_to_personalise' True when that blocked one whose CI was above zero).
    """
    rows = np.arange(len(cf.fold))
    names = [f"everyone_{a}" for a in arms] + list(policies.assign)
    cols = [cf.gamma[:, k] for k in range(len(arms))]
    cols += [cf.gamma[rows, a] for a in policies.assign.values()]
    table = np.column_stack(cols)
    values = M.policy_values(table, names, scale=1.0, n_boot=n_boot, seed=seed, compare=None,
                             groups=groups)
    point, draws = M.cluster_bootstrap(table, groups, 1.0, n_boot, seed)
    base = names.index("best_single_arm")
    gains = {p: M.interval(point[names.index(p)] - point[base],
                           draws[:, names.index(p)] - draws[:, base]) for p in personalised}
    reliable = [p for p in personalised if gains[p]["ci_low"] > 0]
    blocked = bool(reliable) and fewest_events is not None \
        and fewest_events < MIN_EVENTS_PER_ARM
    if blocked:
        reliable = []
    recommended = max(reliable, key=lambda p: gains[p]["estimate"]) if reliable \
        else "best_single_arm"
    gain = gains[recommended] if reliable else {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    return {"values": values, "gain_over_best_single_arm": gains,
            "recommended": recommended, "recommended_gain": gain,
            "personalised": bool(reliable), "too_small_to_personalise": blocked,
            "folds": int(cf.fold.max()) + 1,
            "best_single_arm_by_fold": [arms[k] for k in policies.best_arm_by_fold],
            "learner_by_fold": policies.learner_by_fold}


def arm_comparison(gamma: np.ndarray, arm: np.ndarray, y: np.ndarray, groups: np.ndarray,
                   arms: Sequence[str], n_boot: int, seed: int) -> dict[str, Any]:
    """Events per arm, each arm's DR mean, pairwise differences and which arms are tied.

    'too_small' when an arm has fewer than MIN_EVENTS_PER_ARM events or the best arm cannot
    be told apart from another (its pairwise 95% CI includes zero).
    """
    point, draws = M.cluster_bootstrap(gamma, groups, 1.0, n_boot, seed)
    events = {a: int(y[arm == k].sum()) for k, a in enumerate(arms)}
    pairs, tied = {}, []
    for i in range(len(arms)):
        for j in range(i + 1, len(arms)):
            ci = M.interval(point[i] - point[j], draws[:, i] - draws[:, j])
            pairs[f"{arms[i]}_minus_{arms[j]}"] = ci
            if ci["ci_low"] <= 0 <= ci["ci_high"]:
                tied.append([arms[i], arms[j]])
    best = arms[int(point.argmax())]
    tied_with_best = sorted({a for pair in tied if best in pair for a in pair} - {best})
    few = min(events.values()) < MIN_EVENTS_PER_ARM
    return {"events": events, "means": {a: round(float(point[k]), 5)
                                        for k, a in enumerate(arms)},
            "pairwise": pairs, "cannot_tell_apart": tied, "best_arm": best,
            "tied_with_best": tied_with_best, "too_small": few or bool(tied_with_best)}


def ranking_message(cmp: dict[str, Any]) -> str | None:
    """Plain-words warning when the trial cannot rank its arms, else None."""
    if not cmp["too_small"]:
        return None
    fewest = min(cmp["events"], key=cmp["events"].get)
    parts = []
    if cmp["events"][fewest] < MIN_EVENTS_PER_ARM:
        parts.append(f"the trial is too small to rank the arms reliably (arm '{fewest}' has "
                     f"{cmp['events'][fewest]} events; at least {MIN_EVENTS_PER_ARM} per arm "
                     "are needed)")
    if cmp["tied_with_best"]:
        parts.append(f"the best arm '{cmp['best_arm']}' cannot be told apart from "
                     f"{', '.join(repr(a) for a in cmp['tied_with_best'])} (95% CI of the "
                     "difference includes zero)")
    return "; ".join(parts)
