"""Multi-arm uplift learners on LightGBM: T-, S- and DR-learner, for any number of arms.

Data are randomised rows (x, arm, attended, assignment probability); arm 0 is the control.
Each learner ends as named boosters (one ONNX graph each) and predicts P(attend) under every
arm, shape (n, n_arms):
- "t": one classifier per arm on that arm's rows; uplift = difference of two models.
- "s": one classifier on x plus the arm (one-hot); uplift = the same model with the arm switched.
- "dr": the control classifier plus, per treated arm, a regressor of the doubly robust
  pseudo-outcome of its uplift (nuisances cross-fitted by resident), so uplift is learned
  directly rather than as a small difference of two large predictions.
Rows are weighted by arm share / assignment probability so a campaign with unequal known
probabilities does not tilt the models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models import lgbm

LEARNERS = ("t", "s", "dr")
COMMON: dict[str, Any] = {"n_jobs": 1, "verbose": -1, "deterministic": True,
                          "force_row_wise": True}


@dataclass
class Experiment:
    """Randomised rows: features (n, d) float32, arm index, binary outcome, known probability.

    `groups` ties rows of the same person (several campaigns) for cross-fitting and splits.
    """

    X: np.ndarray
    arm: np.ndarray
    y: np.ndarray
    prop: np.ndarray
    groups: np.ndarray
    n_arms: int

    def subset(self, rows: np.ndarray) -> Experiment:
        """The rows selected by a boolean mask or index."""
        return Experiment(self.X[rows], self.arm[rows], self.y[rows], self.prop[rows],
                          self.groups[rows], self.n_arms)

    def weights(self) -> np.ndarray:
        """Stabilised inverse-probability weights: arm share / assignment probability."""
        share = np.bincount(self.arm, minlength=self.n_arms) / max(len(self.arm), 1)
        return share[self.arm] / self.prop


@dataclass
class UpliftModel:
    """Fitted boosters by graph name and how to turn their outputs into P (n, n_arms)."""

    learner: str
    arms: tuple[str, ...]
    boosters: dict[str, Any]
    n_features: int
    categorical: tuple[int, ...] = ()
    selection: dict[str, float] = field(default_factory=dict)

    def graph_input(self, X: np.ndarray) -> np.ndarray:
        """What the graphs take: X, or for the S-learner X with every arm appended (stacked)."""
        X = np.asarray(X, np.float32)
        return s_learner_input(X, len(self.arms)) if self.learner == "s" else X

    def native_outputs(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Each booster's output on graph_input(X): P(attend) or predicted uplift."""
        Z = self.graph_input(X)
        return {name: (b.predict_proba(Z)[:, 1] if hasattr(b, "predict_proba") else b.predict(Z))
                for name, b in self.boosters.items()}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(attend) under every arm, shape (n, n_arms)."""
        return combine_outputs(self.learner, self.arms, self.native_outputs(X), len(X))


def s_learner_input(X: np.ndarray, n_arms: int) -> np.ndarray:
    """X repeated once per arm with the arm one-hot appended (control = all zeros)."""
    n = len(X)
    onehot = np.repeat(np.eye(n_arms, dtype=np.float32)[:, 1:], n, axis=0)
    return np.hstack([np.tile(X, (n_arms, 1)), onehot])


def combine_outputs(learner: str, arms: Sequence[str], out: dict[str, np.ndarray], n: int,
                    ) -> np.ndarray:
    """P (n, n_arms) from graph outputs (shared by native and ONNX prediction)."""
    if learner == "t":
        return np.column_stack([out[a] for a in arms]).astype(float)
    if learner == "s":
        return np.asarray(out["s"], float).reshape(len(arms), n).T
    base = np.asarray(out[arms[0]], float)
    taus = [base + np.asarray(out[f"tau_{a}"], float).reshape(-1) for a in arms[1:]]
    return np.clip(np.column_stack([base, *taus]), 0.0, 1.0)


def _fit_clf(X: np.ndarray, y: np.ndarray, w: np.ndarray, params: dict, seed: int,
             categorical: Sequence[int]) -> Any:
    import lightgbm as lgb

    if len(np.unique(y)) < 2:
        raise ValueError(f"an arm has {len(y)} rows, all with the same outcome; need both "
                         "attended and not attended in every arm")
    clf = lgb.LGBMClassifier(**params, random_state=seed, **COMMON)
    return lgbm.fit(clf, X, y, sample_weight=w, categorical_feature=list(categorical) or "auto")


def fit_t(data: Experiment, arms: Sequence[str], params: dict, seed: int,
          categorical: Sequence[int] = ()) -> dict[str, Any]:
    """One classifier per arm."""
    w = data.weights()
    return {a: _fit_clf(data.X[data.arm == k], data.y[data.arm == k], w[data.arm == k], params,
                        seed, categorical) for k, a in enumerate(arms)}


def fit_s(data: Experiment, arms: Sequence[str], params: dict, seed: int,
          categorical: Sequence[int] = ()) -> dict[str, Any]:
    """One classifier with the arm as one-hot features."""
    onehot = np.eye(len(arms), dtype=np.float32)[data.arm][:, 1:]
    Z = np.hstack([data.X, onehot])
    return {"s": _fit_clf(Z, data.y, data.weights(), params, seed, categorical)}


def _crossfit_mu(data: Experiment, arms: Sequence[str], params: dict, seed: int,
                 categorical: Sequence[int]) -> np.ndarray:
    """Out-of-fold P(attend | x, arm) for every row and arm, 2 folds split by group."""
    fold = _group_fold(data.groups, seed)
    mu = np.zeros((len(data.y), len(arms)))
    for f in (0, 1):
        models = fit_t(data.subset(fold != f), arms, params, seed, categorical)
        out = {a: m.predict_proba(data.X[fold == f])[:, 1] for a, m in models.items()}
        mu[fold == f] = combine_outputs("t", arms, out, int((fold == f).sum()))
    return mu


def _group_fold(groups: np.ndarray, seed: int) -> np.ndarray:
    uniq, inverse = np.unique(groups, return_inverse=True)
    return np.random.default_rng(seed).integers(0, 2, len(uniq))[inverse]


def dr_pseudo_outcomes(mu: np.ndarray, arm: np.ndarray, y: np.ndarray, prop: np.ndarray,
                       ) -> np.ndarray:
    """Doubly robust score of P(attend) under each arm per row, shape (n, n_arms)."""
    gamma = mu.copy()
    rows = np.arange(len(y))
    gamma[rows, arm] += (y - mu[rows, arm]) / prop
    return gamma


def fit_dr(data: Experiment, arms: Sequence[str], params: dict, seed: int,
           categorical: Sequence[int] = ()) -> dict[str, Any]:
    """Control classifier + one uplift regressor per treated arm on DR pseudo-outcomes."""
    import lightgbm as lgb

    gamma = dr_pseudo_outcomes(_crossfit_mu(data, arms, params, seed, categorical), data.arm,
                               data.y, data.prop)
    # a person's campaigns share x: average their pseudo-outcomes (fewer, less noisy rows)
    uniq, first, inverse, counts = np.unique(data.groups, return_index=True,
                                             return_inverse=True, return_counts=True)
    tau = np.zeros((len(uniq), len(arms) - 1))
    np.add.at(tau, inverse, gamma[:, 1:] - gamma[:, [0]])
    tau /= counts[:, None]
    X = data.X[first]
    reg_params = {k: v for k, v in params.items() if k != "objective"}
    out = {arms[0]: fit_t(data, arms[:1], params, seed, categorical)[arms[0]]}
    for j, a in enumerate(arms[1:]):
        reg = lgb.LGBMRegressor(**reg_params, random_state=seed, **COMMON)
        out[f"tau_{a}"] = lgbm.fit(reg, X, tau[:, j], sample_weight=counts.astype(float),
                                   categorical_feature=list(categorical) or "auto")
    return out


FITTERS: dict[str, Callable[..., dict[str, Any]]] = {"t": fit_t, "s": fit_s, "dr": fit_dr}


def fit_uplift(data: Experiment, arms: Sequence[str], learner: str, params: dict, seed: int,
               categorical: Sequence[int] = ()) -> UpliftModel:
    """Fit one learner; ValueError if an arm has too few rows or a single outcome."""
    counts = np.bincount(data.arm, minlength=len(arms))
    if counts.min() < 2:
        raise ValueError(f"arm {arms[int(counts.argmin())]!r} has {counts.min()} rows; "
                         "every arm needs randomised rows to learn from")
    boosters = FITTERS[learner](data, arms, params, seed, categorical)
    return UpliftModel(learner, tuple(arms), boosters, data.X.shape[1], tuple(categorical))


def split_groups(groups: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Boolean mask of rows whose group falls in a random `share` of groups."""
    uniq, inverse = np.unique(groups, return_inverse=True)
    return (np.random.default_rng(seed).random(len(uniq)) < share)[inverse]


# (predicted P of one candidate, shared nuisance P, validation rows) -> policy value
PolicyValue = Callable[[np.ndarray, np.ndarray, Experiment], float]


def holdout_predictions(data: Experiment, arms: Sequence[str], candidates: Sequence[str],
                        params: dict, seed: int, share: float = 0.2,
                        categorical: Sequence[int] = ()) -> tuple[Experiment,
                                                                  dict[str, np.ndarray]]:
    """Validation rows (a `share` of groups) and each candidate's P on them, fitted on the rest."""
    held = split_groups(data.groups, share, seed + 1)
    fit_part, val = data.subset(~held), data.subset(held)
    return val, {c: fit_uplift(fit_part, arms, c, params, seed, categorical).predict(val.X)
                 for c in candidates}


def choose_learner(val: Experiment, preds: dict[str, np.ndarray], value: PolicyValue,
                   ) -> tuple[str, dict[str, float]]:
    """The candidate with the best `value` on the validation rows, and every candidate's value.

    Every candidate is scored with the same nuisance (the candidates' mean prediction), so
    doubly robust values differ only where the policies differ: a paired, low-noise comparison.
    """
    candidates = list(preds)
    mu = np.mean(list(preds.values()), axis=0)
    scores = {c: value(P, mu, val) for c, P in preds.items()}
    return max(scores, key=lambda c: (scores[c], -candidates.index(c))), scores
