"""Scoring shared by training, the parity gate and serving: rules -> features -> model -> queue.

No lightgbm or mlflow here: serving runs this with onnxruntime sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.claim_screening.features import (
    FEATURE_LABELS,
    FEATURE_NAMES,
    Reference,
    feature_matrix,
)
from models.claim_screening.rules import (
    RULE_BY_CODE,
    RULE_CODES,
    ClaimLines,
    columns,
    rule_columns,
)

# X (n, d) float32 -> (P(error), expected recoverable points if in error), both shape (n,)
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


SCORED_HEADER = ("claim_id", "patient_id", "provider_id", "service_month", "claim_type",
                 "total_points")


def _prepared(lines: pd.DataFrame, reference: Reference) -> tuple[dict[str, Any], np.ndarray]:
    """apply_rules' columns (as arrays) and the feature matrix, reading the lines once."""
    view = ClaimLines.read(lines)
    hits = rule_columns(view)
    return hits, feature_matrix(view, hits, reference)


def prepare(lines: pd.DataFrame, reference: Reference) -> tuple[pd.DataFrame, np.ndarray]:
    """Rule hits (one row per claim) and the feature matrix."""
    hits, X = _prepared(lines, reference)
    return pd.DataFrame(hits), X


@dataclass
class Scored:
    """Scored claims: the table, and the feature and rule matrices aligned with its rows.

    The matrices live beside the frame, not in its attrs: pandas deep-copies attrs on every
    filter or sort, which costs seconds on a million claims.
    """

    frame: pd.DataFrame
    X: np.ndarray
    rules: np.ndarray  # (claims, rules) bool, RULE_CODES order


def score_claims(lines: pd.DataFrame, reference: Reference, predict: Predictor) -> Scored:
    """Per claim: score = P(error), expected points at stake, priority = score x stake, rules."""
    hits, X = _prepared(lines, reference)
    p, stake = predict(X)
    score = p.astype(float)
    expected = np.minimum(stake.astype(float), np.asarray(hits["total_points"], dtype=float))
    out = pd.DataFrame({**{c: hits[c] for c in SCORED_HEADER}, "score": score,
                        "expected_points": expected, "priority": score * expected})
    return Scored(out, X, columns(hits, RULE_CODES, bool))


def reasons_at(scored: Scored, rows: np.ndarray) -> list[list[str]]:
    """Reason codes that fired for the given row positions (only rows that are shown)."""
    names = np.array(RULE_CODES)
    return [list(names[mask]) for mask in scored.rules[rows]]


def reason_details(codes: list[str]) -> list[dict[str, str]]:
    """Reason codes with their Japanese label and explanation."""
    return [{"code": c, "label": RULE_BY_CODE[c].label, "explanation": RULE_BY_CODE[c].explanation}
            for c in codes]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def contributions(X: np.ndarray, medians: np.ndarray, predict: Predictor, top: int = 5,
                  ) -> list[list[dict[str, float | str]]]:
    """Occlusion contributions in log-odds: how much each feature moves the score away from
    the value it would have with that feature at its training median. One batched call."""
    n, d = X.shape
    if n == 0:
        return []
    base, _ = predict(X)
    rep = np.repeat(X, d, axis=0)
    cols = np.tile(np.arange(d), n)
    rep[np.arange(n * d), cols] = medians[cols]
    occluded, _ = predict(rep)
    delta = _logit(base)[:, None] - _logit(occluded).reshape(n, d)
    out = []
    for i in range(n):
        order = np.argsort(-np.abs(delta[i]))[:top]
        out.append([{"feature": FEATURE_NAMES[j], "label": FEATURE_LABELS[FEATURE_NAMES[j]],
                     "value": float(X[i, j]), "contribution": round(float(delta[i, j]), 4)}
                    for j in order if abs(delta[i, j]) > 1e-6])
    return out


@dataclass
class OnnxPredictor:
    """Predictor backed by the combined ONNX model (classifier and stake regressor graphs)."""

    session: object  # onnxruntime.InferenceSession
    outputs: tuple[str, str] = ("classifier_probabilities", "stake_variable")

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.ascontiguousarray(X, dtype=np.float32)
        probs, log_stake = self.session.run(list(self.outputs), {"input": X})
        return np.asarray(probs)[:, 1], np.expm1(np.asarray(log_stake).reshape(-1))
