"""Generic RCT mode: the same uplift machinery on any randomised-experiment CSV.

A row is a person with covariates, the arm they were randomised to and a binary outcome.
Covariates that parse as numbers are numeric; others are categories (LightGBM categorical,
unseen levels = missing). Columns whose every value differs (identifiers) are skipped unless
named in `features`. Without a propensity column, arms are assumed assigned with their observed
shares (simple randomisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from models.checkup_nudge import crossfit as CF
from models.checkup_nudge import metrics as M
from models.checkup_nudge.estimator import Experiment, UpliftModel, fit_uplift
from models.checkup_nudge.schema import RosterInputError
from models.checkup_nudge.schema import read_table as read_intake

TRUE = {"1", "1.0", "true", "yes"}
FALSE = {"0", "0.0", "false", "no"}
MIN_ROWS_PER_ARM = 10
PARAMS = {"n_estimators": 150, "learning_rate": 0.05, "num_leaves": 15, "subsample": 0.8,
          "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0}


class RctInputError(ValueError):
    """An experiment file that cannot be used; the message names the column and rows."""


@dataclass
class Encoding:
    """How covariates become features: numeric columns and category levels per column."""

    features: list[str]
    levels: dict[str, list[str]] = field(default_factory=dict)  # categorical column -> levels

    @property
    def categorical(self) -> tuple[int, ...]:
        """Positions of categorical features."""
        return tuple(i for i, f in enumerate(self.features) if f in self.levels)


@dataclass
class RctData:
    """A parsed experiment: features, arm index (control = 0), outcome, assignment probability."""

    X: np.ndarray
    arm: np.ndarray
    y: np.ndarray
    prop: np.ndarray
    arms: tuple[str, ...]
    encoding: Encoding
    dropped_rows: int = 0
    excluded: dict[str, str] = field(default_factory=dict)
    known_propensity: bool = False
    clusters: np.ndarray | None = None  # (n,) cluster code per row (households), or None

    def experiment(self, rows: np.ndarray | slice = slice(None)) -> Experiment:
        """The rows as an Experiment: groups are the clusters, else each row its own."""
        idx = np.arange(len(self.y))[rows]
        groups = idx if self.clusters is None else self.clusters[idx]
        return Experiment(self.X[idx], self.arm[idx], self.y[idx], self.prop[idx], groups,
                          len(self.arms))


@dataclass
class RctPolicy:
    """The recommended policy refitted on every row: which candidate, its arm or tree."""

    kind: str  # "model", "policy_tree" or "best_single_arm"
    best_arm: int
    tree: Any

    def assign(self, X: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Arm index per row under this policy."""
        if self.kind == "model":
            return P.argmax(axis=1)
        if self.kind == "policy_tree":
            return CF.tree_assign(self.tree, X)
        return np.full(len(X), self.best_arm)


@dataclass
class RctResult:
    """The cross-fitted report and the policy refitted on every row (for scoring other files)."""

    report: dict[str, Any]
    model: UpliftModel
    encoding: Encoding
    policy: RctPolicy


def read_table(raw: bytes, labels: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV/TSV/xlsx upload (models.intake: any encoding, blank rows dropped, NFKC) as a frame
    of strings. Missing-value tokens (NA, null, none, -) read as empty except in the `labels`
    columns (the treatment and cluster columns: an arm called "none" or "NA" is a name)."""
    try:
        frame = read_intake(raw, "one row per person", labels=labels).frame
    except RosterInputError as exc:
        raise RctInputError(str(exc)) from None
    if frame.empty:
        raise RctInputError("the file has a header but no rows")
    return frame.apply(lambda c: c.str.strip())


def _rows(idx: np.ndarray, limit: int = 5) -> str:
    rows = ", ".join(str(int(i) + 2) for i in idx[:limit])  # CSV line numbers (header = 1)
    return f"row{'s' if len(idx) > 1 else ''} {rows}" + (
        f" (and {len(idx) - limit} more)" if len(idx) > limit else "")


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RctInputError("; ".join(f"missing column '{c}'" for c in missing)
                            + f" (columns are: {', '.join(frame.columns)})")


def parse_outcome(values: pd.Series, column: str) -> np.ndarray:
    """0/1 outcome (also true/false, yes/no); RctInputError naming rows otherwise."""
    low = values.astype(str).str.strip().str.lower()
    good = low.isin(TRUE | FALSE).to_numpy()
    if not good.all():
        bad = np.flatnonzero(~good)
        got = ", ".join(repr(v) for v in values.iloc[bad[:3]])
        raise RctInputError(f"column '{column}' {_rows(bad)}: outcome must be binary (0 or 1), "
                            f"got {got}")
    y = low.isin(TRUE).to_numpy(float)
    if len(np.unique(y)) < 2:
        raise RctInputError(f"column '{column}': every row has outcome {int(y[0])}; "
                            "nothing to learn")
    return y


def parse_arms(values: pd.Series, column: str, control: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Arm index per row with the control first; RctInputError for one arm or a missing control."""
    text = values.astype(str).str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if len(empty):
        raise RctInputError(f"column '{column}' {_rows(empty)}: empty treatment (name every "
                            "arm)")
    found = sorted(text.unique())
    if control not in found:
        raise RctInputError(f"column '{column}': control value {control!r} not found; "
                            f"values are {found}")
    if len(found) < 2:
        raise RctInputError(f"column '{column}': only one arm ({found[0]!r}); "
                            "an experiment needs a control and at least one treatment")
    arms = (control, *[a for a in found if a != control])
    arm = pd.Categorical(text, categories=list(arms)).codes.astype(int)
    counts = np.bincount(arm, minlength=len(arms))
    if counts.min() < MIN_ROWS_PER_ARM:
        small = arms[int(counts.argmin())]
        raise RctInputError(f"column '{column}': arm {small!r} has {counts.min()} rows; "
                            f"need at least {MIN_ROWS_PER_ARM} per arm")
    return arm, arms


def parse_propensity(values: pd.Series, column: str) -> np.ndarray:
    """Assignment probabilities in (0, 1]; RctInputError naming rows otherwise."""
    p = pd.to_numeric(values, errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~((p > 0) & (p <= 1)))
    if len(bad):
        raise RctInputError(f"column '{column}' {_rows(bad)}: assignment probability must be "
                            f"in (0, 1], got {', '.join(repr(v) for v in values.iloc[bad[:3]])}")
    return p


MISSING = {"", "na", "n/a", "nan", "null", "none", "-", "欠損"}


def missing_outcome(values: pd.Series) -> np.ndarray:
    """Boolean mask of rows whose outcome is empty or a missing-value code (NA, null, ...)."""
    return values.astype(str).str.strip().str.lower().isin(MISSING).to_numpy()


def _imbalance_p(text: pd.Series, arm: np.ndarray) -> float:
    """p-value that a covariate has the same distribution in every arm (Kruskal or chi-square).

    Randomisation balances every pre-treatment covariate; a column that differs between arms
    was measured after the treatment (or the arm was not randomised for it).
    """
    from scipy import stats

    num = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(float)
    ok = ~np.isnan(num)
    try:
        if ok.mean() > 0.99:
            groups = [num[ok & (arm == k)] for k in np.unique(arm)]
            if len({float(v) for g in groups for v in g[:1000]}) < 2:
                return 1.0
            return float(stats.kruskal(*groups).pvalue)
        table = pd.crosstab(text.to_numpy(), arm).to_numpy()
        return float(stats.chi2_contingency(table)[1]) if min(table.shape) > 1 else 1.0
    except ValueError:  # constant column
        return 1.0


def _outcome_like(text: pd.Series, y: np.ndarray) -> bool:
    """True when a non-zero value (nearly) implies the outcome: a conversion or spend column."""
    num = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(float)
    if np.isnan(num).mean() > 0.01:
        return False
    nonzero = np.nan_to_num(num) != 0
    among_pos, among_neg = nonzero[y == 1].mean(), nonzero[y == 0].mean()
    return bool(among_pos > 0.01 and among_neg < 0.001) or bool(
        among_neg > 0.01 and among_pos < 0.001)


def screen_features(frame: pd.DataFrame, cols: Sequence[str], y: np.ndarray, arm: np.ndarray,
                    ) -> tuple[list[str], dict[str, str]]:
    """Default covariates: drop outcome-like and post-treatment (arm-imbalanced) columns.

    Returns the kept columns and {dropped column: reason}.
    """
    kept, dropped = [], {}
    for c in cols:
        if _outcome_like(frame[c], y):
            dropped[c] = "outcome-like (a non-zero value only occurs with one outcome)"
        elif _imbalance_p(frame[c], arm) < 1e-6:
            dropped[c] = "differs between arms (measured after treatment?)"
        else:
            kept.append(c)
    return kept, dropped


def learn_encoding(frame: pd.DataFrame, features: Sequence[str] | None,
                   exclude: Sequence[str]) -> Encoding:
    """Which columns are features and which of them are categorical (with their levels)."""
    named = features is not None
    cols = list(features) if features is not None else [c for c in frame.columns
                                                        if c not in exclude]
    _require(frame, cols)
    levels, keep = {}, []
    for c in cols:
        text = frame[c]
        numeric = pd.to_numeric(text.where(text != "", None), errors="coerce")
        if (numeric.notna() | (text == "")).all():
            keep.append(c)
        elif named or text.nunique() < len(text):  # an all-distinct text column is an id
            levels[c] = sorted(text[text != ""].unique())
            keep.append(c)
    if not keep:
        raise RctInputError("no covariate columns: add some or name them with --features")
    return Encoding(keep, levels)


def encode(frame: pd.DataFrame, enc: Encoding) -> np.ndarray:
    """Feature matrix float32; categories as level codes, unseen or empty = missing (NaN)."""
    _require(frame, enc.features)
    cols = []
    for c in enc.features:
        text = frame[c].astype(str).str.strip()
        if c in enc.levels:
            code = pd.Categorical(text, categories=enc.levels[c]).codes.astype(float)
            cols.append(np.where(code < 0, np.nan, code))
            continue
        num = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(float)
        bad = np.flatnonzero(np.isnan(num) & (text != "").to_numpy())
        if len(bad):
            raise RctInputError(f"column '{c}' {_rows(bad)}: expected a number, got "
                                f"{', '.join(repr(v) for v in text.iloc[bad[:3]])}")
        cols.append(num)
    return np.column_stack(cols).astype(np.float32)


def parse_clusters(values: pd.Series, column: str) -> np.ndarray:
    """Cluster code per row (rows with the same value share a cluster); RctInputError naming
    the rows whose cluster is empty."""
    text = values.astype(str).str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if len(empty):
        raise RctInputError(f"column '{column}' {_rows(empty)}: empty cluster id (every row "
                            "needs its household or other randomisation unit)")
    return pd.factorize(text)[0].astype(np.int64)


def prepare(frame: pd.DataFrame, treatment: str, outcome: str, control: str,
            features: Sequence[str] | None = None, propensity: str | None = None,
            drop_missing_outcome: bool = False, cluster: str | None = None) -> RctData:
    """Parse and check an experiment frame (strings) into model inputs.

    A missing outcome (empty, NA, null, ...) is an error naming the rows unless
    `drop_missing_outcome`, which drops those rows (counted in `dropped_rows`). Without
    `features`, outcome-like and arm-imbalanced columns are left out (`excluded`), and so is
    the `cluster` column (the unit randomised, e.g. a household id: rows of one cluster share
    a fold and are resampled together in every CI).
    """
    if frame.empty:
        raise RctInputError("the file has a header but no rows")
    _require(frame, [treatment, outcome, *([propensity] if propensity else []),
                     *([cluster] if cluster else [])])
    gone = missing_outcome(frame[outcome])
    if gone.any() and not drop_missing_outcome:
        raise RctInputError(f"column '{outcome}' {_rows(np.flatnonzero(gone))}: outcome is "
                            f"missing ({frame[outcome].iloc[int(np.flatnonzero(gone)[0])]!r}); "
                            "fix those rows or pass --drop-missing-outcome to leave them out")
    frame = frame[~gone].reset_index(drop=True)
    if frame.empty:
        raise RctInputError(f"column '{outcome}': every row's outcome is missing")
    y = parse_outcome(frame[outcome], outcome)
    arm, arms = parse_arms(frame[treatment], treatment, control)
    if propensity:
        prop = parse_propensity(frame[propensity], propensity)
    else:
        prop = (np.bincount(arm, minlength=len(arms)) / len(arm))[arm]
    _check_outcome_per_arm(y, arm, arms, treatment)
    excluded: dict[str, str] = {}
    if features is None:
        cols = [c for c in frame.columns if c not in (treatment, outcome, propensity, cluster)]
        features, excluded = screen_features(frame, cols, y, arm)
        enc = learn_encoding(frame, None, [c for c in frame.columns if c not in features])
    else:
        enc = learn_encoding(frame, features, [])
    data = RctData(encode(frame, enc), arm, y, prop, arms, enc)
    data.dropped_rows, data.excluded = int(gone.sum()), excluded
    data.known_propensity = propensity is not None
    if cluster:
        data.clusters = parse_clusters(frame[cluster], cluster)
    return data


def _check_outcome_per_arm(y: np.ndarray, arm: np.ndarray, arms: Sequence[str], column: str,
                           ) -> None:
    """Every arm needs both outcomes, or its response cannot be learned."""
    rate = np.bincount(arm, weights=y, minlength=len(arms)) / np.bincount(arm,
                                                                          minlength=len(arms))
    flat = [a for a, r in zip(arms, rate, strict=True) if r in (0.0, 1.0)]
    if flat:
        raise RctInputError(f"column '{column}': arm {flat[0]!r} has the same outcome in every "
                            "row; every arm needs both outcomes")


def _params(n_rows: int, n_arms: int) -> dict[str, Any]:
    """Leaves need enough rows of every arm: scale min_child_samples with the data."""
    return {**PARAMS, "min_child_samples": int(np.clip(n_rows // (n_arms * 40), 5, 200))}


def best_single_arm(data: Experiment) -> int:
    """The arm with the highest IPW-weighted mean outcome (the 'treat everyone' choice)."""
    w = 1.0 / data.prop
    means = np.bincount(data.arm, weights=w * data.y, minlength=data.n_arms) / np.maximum(
        np.bincount(data.arm, weights=w, minlength=data.n_arms), 1e-12)
    return int(means.argmax())


def fit_rct(frame: pd.DataFrame, treatment: str, outcome: str, control: str,
            features: Sequence[str] | None = None, propensity: str | None = None, seed: int = 0,
            learner: Literal["auto", "t", "s", "dr"] = "auto", folds: int = CF.FOLDS,
            n_boot: int = 200, drop_missing_outcome: bool = False,
            cluster: str | None = None) -> RctResult:
    """Cross-fitted report on every row, then the policy refitted on every row for scoring.

    `cluster`: the column with the unit that was randomised (household id) when it is not the
    row; folds keep a cluster together and every CI is a cluster bootstrap.
    """
    data = prepare(frame, treatment, outcome, control, features, propensity,
                   drop_missing_outcome, cluster)
    try:
        return _fit_and_report(data, control, seed, learner, folds, n_boot)
    except ValueError as exc:  # too few rows of an arm or outcome left in a fold
        raise RctInputError(f"cannot fit: {exc}") from exc


def _policy_values(cf: CF.CrossFit, pol: CF.FoldPolicies, chosen: np.ndarray,
                   groups: np.ndarray, n_boot: int, seed: int) -> dict[str, dict[str, float]]:
    """DR mean outcome of the recommendation vs the other candidates (cross-fitted, CIs that
    resample whole `groups`)."""
    rows = np.arange(len(chosen))
    values = np.column_stack([cf.gamma[rows, chosen], cf.gamma[rows, pol.assign["model"]],
                              cf.gamma[rows, pol.assign["policy_tree"]],
                              cf.gamma[rows, pol.assign["best_single_arm"]],
                              cf.gamma.mean(axis=1), cf.gamma[:, 0]])
    names = ["recommended", "model", "policy_tree", "best_single_arm", "random_arm", "control"]
    return M.policy_values(values, names, scale=1.0, n_boot=n_boot, seed=seed,
                           compare="recommended", groups=groups)


def _fit_and_report(data: RctData, control: str, seed: int, learner: str, folds: int,
                    n_boot: int) -> RctResult:
    """Cross-fit, choose and value the policy out of fold, then refit everything on all rows."""
    exp = data.experiment()
    learners = ("t", "s") if learner == "auto" else (learner,)
    params, cat = _params(len(exp.y) * (folds - 1) // folds, len(data.arms)), \
        data.encoding.categorical
    cf = CF.crossfit(exp, data.arms, learners, params, seed, folds, cat, data.known_propensity)
    pol = CF.fold_policies(cf, exp.X, len(data.arms), seed)
    arms_cmp = CF.arm_comparison(cf.gamma, exp.arm, exp.y, exp.groups, data.arms, n_boot, seed)
    decision = CF.policy_report(cf, pol, exp.groups, data.arms, n_boot, seed,
                                fewest_events=min(arms_cmp["events"].values()))
    # the served model and tree are refitted on every row: their gain is the cross-fitted one
    # plus the learning curve's next step (issue 16: the CI is for the policy served)
    small_params = _params(int(len(exp.y) * (folds - 1) / folds * CF.SMALLER_SHARE),
                           len(data.arms))
    smaller = CF.smaller_policies(cf, exp, data.arms, pol, small_params, seed, cat)
    # the selection between the candidates made out of fold, as the gate saw it
    chosen_by_fold = decision["selected_by_fold"]
    smaller["selected"] = CF.by_fold(smaller, chosen_by_fold, cf.fold)
    with_selected = CF.FoldPolicies({**pol.assign, "selected": CF.by_fold(
        pol.assign, chosen_by_fold, cf.fold)}, pol.best_arm_by_fold, pol.learner_by_fold)
    served = CF.served_gains(cf, with_selected, smaller, exp.groups, n_boot, seed)
    zero = {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    decision["served_gain_over_best_single_arm"] = served
    decision["recommended_gain_served"] = served["selected"] if decision["personalised"] \
        else zero
    chosen = pol.assign[decision["recommended"]]
    final_learner = max(learners, key=decision["learner_by_fold"].count)
    model = fit_uplift(exp, data.arms, final_learner, _params(len(exp.y), len(data.arms)),
                       seed, cat)
    tree = CF.fit_policy_tree(exp.X, cf.gamma, seed=seed)
    best = int(cf.gamma.mean(0).argmax())
    report = {
        "rows": len(data.y), "dropped_missing_outcome": data.dropped_rows,
        "clusters": None if data.clusters is None else len(np.unique(data.clusters)),
        "arms": {a: int((data.arm == k).sum()) for k, a in enumerate(data.arms)},
        "control": control, "features": data.encoding.features,
        "excluded_columns": data.excluded, "learner": final_learner,
        "learner_candidates": list(learners), "estimation": (
            f"{folds}-fold cross-fitting: every figure is valued on folds the models and the "
            "policy were not fitted or chosen on, by policies learned on "
            f"{folds - 1}/{folds} of the rows; --score uses the model and tree refitted on "
            "every row, whose gain ('as served') adds the learning curve's next step"),
        "best_single_arm": data.arms[best],
        "qini": M.qini_summary(M.qini_by_arm(cf.mu, exp.arm, exp.y, cf.prop, data.arms)),
        "policy_value": _policy_values(cf, pol, chosen, exp.groups, n_boot, seed),
        "decision": decision, "arm_comparison": arms_cmp,
        "policy_tree_rules": CF.tree_rules(tree, data.encoding.features, data.arms,
                                            data.encoding.levels),
        "recommended_share": {a: round(float((chosen == k).mean()), 4)
                              for k, a in enumerate(data.arms)},
        "messages": _messages(decision, arms_cmp, data.arms[best]),
    }
    policy = RctPolicy(decision["recommended"], best, tree)
    return RctResult(report, model, data.encoding, policy)


def _messages(decision: dict[str, Any], arms_cmp: dict[str, Any], best: str) -> list[str]:
    """Plain-words statements about what the data support."""
    out = []
    if decision.get("too_small_to_personalise"):
        out.append(CF.SMALL_TRIAL_EN.format(min_events=CF.MIN_EVENTS_PER_ARM,
                                            name=f"everyone gets {best}"))
    elif not decision["personalised"]:
        out.append(CF.NO_HETEROGENEITY_EN.format(name=f"everyone gets {best}"))
    warn = CF.ranking_message(arms_cmp)
    if warn:
        out.append(f"Warning: {warn}.")
    return out


def score_rct(result: RctResult, frame: pd.DataFrame) -> pd.DataFrame:
    """Another file's rows with `arm` (the recommended policy's arm), p_<arm>, uplift_<arm>.

    p_<arm> is P(outcome) under each arm from the uplift model refitted on every row;
    uplift_<arm> = p_<arm> - p_<control> for each treated arm. `arm` follows the recommended
    policy: the model's best arm, the policy tree's arm, or the same arm for everyone.
    Input columns named like an output get the suffix `_input`.
    """
    if frame.empty:
        raise RctInputError("the file to score has a header but no rows")
    X = encode(frame, result.encoding)
    P = result.model.predict(X)
    arms = result.model.arms
    names = ["arm", *(f"p_{a}" for a in arms), *(f"uplift_{a}" for a in arms[1:])]
    # an input column with an output's name (often the trial's own `arm`) is kept, renamed
    out = frame.rename(columns={c: f"{c}_input" for c in frame.columns if c in names})
    for k, a in enumerate(arms):
        out[f"p_{a}"] = np.round(P[:, k], 6)
    for k, a in enumerate(arms[1:], start=1):
        out[f"uplift_{a}"] = np.round(P[:, k] - P[:, 0], 6)
    out["arm"] = np.array(arms, dtype=object)[result.policy.assign(X, P)]
    return out
