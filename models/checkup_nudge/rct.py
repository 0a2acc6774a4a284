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

from models.checkup_nudge import metrics as M
from models.checkup_nudge.estimator import Experiment, UpliftModel, fit_uplift, select_learner
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

    def experiment(self, rows: np.ndarray | slice = slice(None)) -> Experiment:
        """The rows as an Experiment (each row its own person)."""
        idx = np.arange(len(self.y))[rows]
        return Experiment(self.X[idx], self.arm[idx], self.y[idx], self.prop[idx], idx,
                          len(self.arms))


@dataclass
class RctResult:
    """The held-out report and the model refitted on every row (for scoring other files)."""

    report: dict[str, Any]
    model: UpliftModel
    encoding: Encoding


def read_table(raw: bytes) -> pd.DataFrame:
    """A CSV/TSV/xlsx upload (models.intake: any encoding, blank rows dropped, NFKC) as a frame
    of strings."""
    try:
        frame = read_intake(raw, "one row per person").frame
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
        raise RctInputError(f"column '{column}' {_rows(empty)}: empty treatment")
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


def learn_encoding(frame: pd.DataFrame, features: Sequence[str] | None,
                   exclude: Sequence[str]) -> Encoding:
    """Which columns are features and which of them are categorical (with their levels)."""
    named = features is not None
    cols = list(features) if named else [c for c in frame.columns if c not in exclude]
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


def prepare(frame: pd.DataFrame, treatment: str, outcome: str, control: str,
            features: Sequence[str] | None = None, propensity: str | None = None) -> RctData:
    """Parse and check an experiment frame (strings) into model inputs."""
    if frame.empty:
        raise RctInputError("the file has a header but no rows")
    _require(frame, [treatment, outcome, *([propensity] if propensity else [])])
    y = parse_outcome(frame[outcome], outcome)
    arm, arms = parse_arms(frame[treatment], treatment, control)
    if propensity:
        prop = parse_propensity(frame[propensity], propensity)
    else:
        prop = (np.bincount(arm, minlength=len(arms)) / len(arm))[arm]
    _check_outcome_per_arm(y, arm, arms, treatment)
    enc = learn_encoding(frame, features, [treatment, outcome, propensity or ""])
    return RctData(encode(frame, enc), arm, y, prop, arms, enc)


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


def _holdout(arm: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out rows, the same share of every arm."""
    u = np.random.default_rng(seed).random(len(arm))
    pct = pd.Series(u).groupby(arm).rank(pct=True).to_numpy()
    return pct <= share


def _value(P: np.ndarray, mu: np.ndarray, val: Experiment) -> float:
    """DR mean outcome when everyone gets their recommended arm."""
    return float(M.row_scores(mu, val.arm, val.y, val.prop, P.argmax(axis=1)).mean())


def best_single_arm(data: Experiment) -> int:
    """The arm with the highest IPW-weighted mean outcome (the 'treat everyone' choice)."""
    w = 1.0 / data.prop
    means = np.bincount(data.arm, weights=w * data.y, minlength=data.n_arms) / np.maximum(
        np.bincount(data.arm, weights=w, minlength=data.n_arms), 1e-12)
    return int(means.argmax())


def evaluate_policies(P: np.ndarray, data: Experiment, best_arm: int, n_boot: int,
                      seed: int) -> dict[str, dict[str, float]]:
    """DR mean outcome of the recommended arm vs the best single arm vs a random arm, CIs."""
    gamma = np.column_stack([M.row_scores(P, data.arm, data.y, data.prop,
                                          np.full(len(data.y), k)) for k in range(P.shape[1])])
    rec = P.argmax(axis=1)
    values = np.column_stack([gamma[np.arange(len(rec)), rec], gamma[:, best_arm],
                              gamma.mean(axis=1), gamma[:, 0]])
    names = ["recommended", "best_single_arm", "random_arm", "control"]
    return M.policy_values(values, names, scale=1.0, n_boot=n_boot, seed=seed,
                           compare="recommended")


def fit_rct(frame: pd.DataFrame, treatment: str, outcome: str, control: str,
            features: Sequence[str] | None = None, propensity: str | None = None, seed: int = 0,
            learner: Literal["auto", "t", "s", "dr"] = "auto", test_share: float = 0.3,
            n_boot: int = 200) -> RctResult:
    """Fit on part of the rows, report on the held-out rest, refit on every row for scoring."""
    data = prepare(frame, treatment, outcome, control, features, propensity)
    try:
        return _fit_and_report(data, control, seed, learner, test_share, n_boot)
    except ValueError as exc:  # too few rows of an arm or outcome left after the split
        raise RctInputError(f"cannot fit: {exc}") from exc


def _fit_and_report(data: RctData, control: str, seed: int, learner: str, test_share: float,
                    n_boot: int) -> RctResult:
    """Fit on part of the rows, report on the rest, refit on every row."""
    held = _holdout(data.arm, test_share, seed)
    train, test = data.experiment(~held), data.experiment(held)
    params, cat = _params(len(train.y), len(data.arms)), data.encoding.categorical
    chosen, scores = (learner, {}) if learner != "auto" else select_learner(
        train, data.arms, ("t", "s"), params, seed, _value, 0.25, cat)
    model = fit_uplift(train, data.arms, chosen, params, seed, cat)
    P = model.predict(test.X)
    best = best_single_arm(train)
    report = {
        "rows": len(data.y), "held_out_rows": int(held.sum()), "learner": chosen,
        "learner_selection": scores, "arms": {a: int((data.arm == k).sum())
                                              for k, a in enumerate(data.arms)},
        "control": control, "features": data.encoding.features, "best_single_arm": data.arms[best],
        "qini": M.qini_summary(M.qini_by_arm(P, test.arm, test.y, test.prop, data.arms)),
        "policy_value": evaluate_policies(P, test, best, n_boot, seed),
        "recommended_share": {a: round(float((P.argmax(1) == k).mean()), 4)
                              for k, a in enumerate(data.arms)},
    }
    final = fit_uplift(data.experiment(), data.arms, chosen, _params(len(data.y), len(data.arms)),
                       seed, cat)
    return RctResult(report, final, data.encoding)


def score_rct(result: RctResult, frame: pd.DataFrame) -> pd.DataFrame:
    """Another file's rows with P(outcome) under each arm, the recommended arm and its uplift."""
    if frame.empty:
        raise RctInputError("the file to score has a header but no rows")
    P = result.model.predict(encode(frame, result.encoding))
    arms = result.model.arms
    out = frame.copy()
    for k, a in enumerate(arms):
        out[f"p_{a}"] = np.round(P[:, k], 6)
    rec = P.argmax(axis=1)
    out["recommended_arm"] = np.array(arms, dtype=object)[rec]
    out["uplift_vs_control"] = np.round(P[np.arange(len(P)), rec] - P[:, 0], 6)
    return out
