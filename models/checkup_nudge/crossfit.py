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
The gain that decides is that of the choice between the personalised candidates made out of
fold (`select_out_of_fold`), so choosing the better of two on the same rows does not flatter
it. The CI of a policy as served (refitted on every row, `served_gains`) counts two errors:
sampling (bootstrap of the DR scores, the fold policies held fixed) and the spread of the
learned policies themselves between folds (`policy_spread`): the served policy is one more draw
of that spread, not the fold policies' average.
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


def policy_spread(d: np.ndarray, fold: np.ndarray, groups: np.ndarray) -> float:
    """SD of a learned policy's gain around the cross-fitted average, beyond sampling noise.

    d (n,): per-row DR gain of the fold policies over a fixed baseline (a fold's rows valued
    under the policy learned without them). The cross-fitted estimate averages K policies,
    one per fold, and its bootstrap holds them fixed, so it misses how much a policy relearned
    on other rows (the one served, refitted on every row) differs in value: the spread of the
    fold means G_f beyond their own sampling variance v_f (cluster-robust within the fold). As
    in a random-effects meta-analysis over the folds (DerSimonian & Laird 1986, Controlled
    Clinical Trials 7(3)): tau^2 = max(0, S^2 - mean v_f), S^2 the variance of the G_f; a
    further learned policy's value falls around the estimate with variance tau^2 (1 + 1/K) on
    top of the sampling variance (the prediction interval of Higgins, Thompson & Spiegelhalter
    2009, J. R. Stat. Soc. A 172(1), with the normal quantile). The same term as the
    between-split variance that Chernozhukov et al. (2018, Econometrics Journal 21(1), s. 3.4)
    add when aggregating cross-fitted estimates over splits, here over the K folds already fitted
    (no refit). Returns sqrt(tau^2 (1 + 1/K)) in the units of d; 0 with one fold or no spread.
    """
    folds = np.unique(fold)
    if len(folds) < 2:
        return 0.0
    means, var = [], []
    for f in folds:
        rows = fold == f
        x = d[rows] - d[rows].mean()
        _, g = np.unique(groups[rows], return_inverse=True)
        sums = np.bincount(g, weights=x)
        m = len(sums)
        means.append(float(d[rows].mean()))
        var.append(float((sums ** 2).sum() * m / max(m - 1, 1)) / rows.sum() ** 2)
    tau2 = max(float(np.var(means, ddof=1)) - float(np.mean(var)), 0.0)
    return float(np.sqrt(tau2 * (1 + 1 / len(folds))))


def widen(ci: Mapping[str, float], sd: float, centre: float | None = None) -> dict[str, float]:
    """A 95% interval with an independent error of SD `sd` added on each side in quadrature:
    side' = sqrt(side^2 + (1.96 sd)^2) around `centre` (default the estimate)."""
    c = ci["estimate"] if centre is None else centre
    h = 1.96 * sd
    return {"estimate": ci["estimate"],
            "ci_low": round(c - float(np.hypot(c - ci["ci_low"], h)), 5),
            "ci_high": round(c + float(np.hypot(ci["ci_high"] - c, h)), 5)}


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


def by_fold(assigns: Mapping[str, np.ndarray], chosen: Sequence[str], fold: np.ndarray,
            ) -> np.ndarray:
    """Per row, the arm of candidate chosen[f] for the rows of fold f, shape (n,)."""
    out = np.zeros(len(fold), int)
    for f, name in zip(np.unique(fold), chosen, strict=True):
        out[fold == f] = assigns[name][fold == f]
    return out


def select_out_of_fold(cf: CrossFit, policies: FoldPolicies, candidates: Sequence[str],
                       ) -> tuple[np.ndarray, list[str]]:
    """The choice between personalised candidates, made without the fold it is valued on.

    For each fold f, the candidate with the highest DR gain over the best single arm on the
    OTHER folds' rows (their cross-fitted assignments) is chosen, and the fold's rows get that
    candidate's arm. Valuing this per-row assignment values the selection step itself on rows
    it was not made on: picking the larger of two noisy gains on the same rows would flatter
    the winner (the winner's curse). Returns (arm per row (n,), chosen name per fold).
    """
    rows = np.arange(len(cf.fold))
    base = cf.gamma[rows, policies.assign["best_single_arm"]]
    gain = {c: cf.gamma[rows, policies.assign[c]] - base for c in candidates}
    chosen = [max(candidates, key=lambda c: float(gain[c][cf.fold != f].mean()))
              for f in np.unique(cf.fold)]
    return by_fold(policies.assign, chosen, cf.fold), chosen


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
    The served policy is one more learned policy, not the fold policies' average: both sides
    add its spread (`policy_spread`, reported as 'policy_sd'; 'sampling_only' is the CI
    without it, kept for the benchmark).

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
        sampled = M.interval(point[2 * j], draws[:, 2 * j])
        sd = policy_spread(cols[2 * j], cf.fold, groups)
        gain = widen(sampled, sd)
        step = max(float(point[2 * j + 1]), 0.0)
        # the upper bound from joint draws of gain + steps: the step's own noise counts (a
        # step estimated at 0 can still be positive)
        upper = draws[:, 2 * j] + max(1.0, 3 / k) * np.maximum(draws[:, 2 * j + 1], 0.0)
        high_sampled = max(sampled["ci_high"], float(np.percentile(upper, 97.5))) \
            if len(upper) else sampled["ci_high"]
        centre = sampled["estimate"] + max(1.0, 3 / k) * step
        high = max(gain["ci_high"], centre + float(np.hypot(max(high_sampled - centre, 0.0),
                                                            1.96 * sd)))
        out[p] = {"estimate": round(gain["estimate"] + 3 / k * step, 5),
                  "ci_low": gain["ci_low"], "ci_high": round(high, 5),
                  "cross_fitted": {**gain, "policy_sd": round(sd, 5)},
                  "learning_curve_step": round(step, 5), "policy_sd": round(sd, 5),
                  # the CI before the policies' own spread was counted (sampling only)
                  "sampling_only": {"ci_low": sampled["ci_low"],
                                    "ci_high": round(high_sampled, 5)}}
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
    or a person's campaigns). The gains' CIs are for the fold policies' average (sampling
    error only): the decision tests whether the learning procedure beats the best single arm,
    which that CI does; 'policy_sd' (`policy_spread`) is reported beside it and counted in the
    CIs of the policies as served (`served_gains`). The decision follows the module's rule; the
    returned 'recommended' names a key of 'values'. `fewest_events`: the events (outcome = 1)
    of the arm with fewest; below MIN_EVENTS_PER_ARM no personalised policy is recommended
    ('too_small_to_personalise' True when that blocked one whose CI was above zero).
    The gate is the gain of 'selected' (select_out_of_fold: the personalised candidate chosen
    on the other folds, per fold), which is also the recommended gain printed; the candidate
    served is the one with the highest gain on every row.
    """
    rows = np.arange(len(cf.fold))
    names = [f"everyone_{a}" for a in arms] + list(policies.assign)
    cols = [cf.gamma[:, k] for k in range(len(arms))]
    cols += [cf.gamma[rows, a] for a in policies.assign.values()]
    table = np.column_stack(cols)
    values = M.policy_values(table, names, scale=1.0, n_boot=n_boot, seed=seed, compare=None,
                             groups=groups)
    selected, selected_by_fold = select_out_of_fold(cf, policies, personalised)
    names.append("selected")
    table = np.column_stack([table, cf.gamma[rows, selected]])
    point, draws = M.cluster_bootstrap(table, groups, 1.0, n_boot, seed)
    base = names.index("best_single_arm")
    gains = {}
    for p in [*personalised, "selected"]:
        sd = policy_spread(table[:, names.index(p)] - table[:, base], cf.fold, groups)
        gains[p] = {**M.interval(point[names.index(p)] - point[base],
                                 draws[:, names.index(p)] - draws[:, base]),
                    "policy_sd": round(sd, 5)}
    reliable = gains["selected"]["ci_low"] > 0
    blocked = reliable and fewest_events is not None and fewest_events < MIN_EVENTS_PER_ARM
    reliable = reliable and not blocked
    # served: the candidate best on every row; its gain is that of the selection made out of
    # fold ('selected'), which the choice between the candidates does not flatter
    recommended = max(personalised, key=lambda p: gains[p]["estimate"]) if reliable \
        else "best_single_arm"
    gain = gains["selected"] if reliable else {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    return {"values": values, "gain_over_best_single_arm": gains,
            "recommended": recommended, "recommended_gain": gain,
            "personalised": bool(reliable), "too_small_to_personalise": blocked,
            "folds": int(cf.fold.max()) + 1, "selected_by_fold": selected_by_fold,
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
