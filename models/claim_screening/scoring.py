"""Scoring shared by training, the parity gate and serving: rules -> features -> model -> queue.

No lightgbm or mlflow here: serving runs this with onnxruntime sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.claim_screening.features import (
    FEATURE_LABELS,
    FEATURE_NAMES,
    Reference,
    feature_matrix,
    known_providers,
)
from models.claim_screening.rules import (
    RULE_BY_CODE,
    RULE_CODES,
    UNKNOWN,
    ClaimLines,
    code_id,
    columns,
    rule_columns,
)

# X (n, d) float32 -> (P(error), expected recoverable points if in error), both shape (n,)
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


SCORED_HEADER = ("claim_id", "patient_id", "provider_id", "service_month", "claim_type",
                 "total_points")


def _prepared(lines: pd.DataFrame | Mapping[str, np.ndarray], reference: Reference,
              ) -> tuple[ClaimLines, dict[str, Any], np.ndarray]:
    """The lines read once, apply_rules' columns (as arrays) and the feature matrix."""
    view = ClaimLines.read(lines)
    hits = rule_columns(view)
    return view, hits, feature_matrix(view, hits, reference)


def prepare(lines: pd.DataFrame, reference: Reference) -> tuple[pd.DataFrame, np.ndarray]:
    """Rule hits (one row per claim) and the feature matrix."""
    _, hits, X = _prepared(lines, reference)
    return pd.DataFrame(hits), X


def unknown_codes(view: ClaimLines, reference: Reference) -> dict[int, list[str]]:
    """Claim position -> its distinct codes (first-seen order) that neither the code table
    (the masters and the curated set: no rule can check their limits) nor the training data
    holds; claims without such codes are absent."""
    seen = set(reference.codes)
    unknown = np.array([code_id(str(c)) == UNKNOWN and str(c) not in seen
                        for c in view.code_names], bool)
    rows = np.flatnonzero(unknown[view.raw_code])
    out: dict[int, list[str]] = {}
    for claim, code in zip(view.claim[rows].tolist(), view.raw_code[rows].tolist(), strict=True):
        codes = out.setdefault(claim, [])
        name = str(view.code_names[code])
        if name not in codes:
            codes.append(name)
    return out


@dataclass
class Scored:
    """Scored claims: the table, and the feature and rule matrices aligned with its rows.

    The matrices live beside the frame, not in its attrs: pandas deep-copies attrs on every
    filter or sort, which costs seconds on a million claims.
    """

    # SCORED_COLUMNS: a DataFrame, or a dict of column arrays (score_claims(as_frame=False))
    frame: pd.DataFrame | dict[str, np.ndarray]
    X: np.ndarray
    rules: np.ndarray  # (claims, rules) bool, RULE_CODES order
    unknown: dict[int, list[str]]  # row position -> codes unknown to table and training

    def __len__(self) -> int:
        """Number of claims."""
        return len(self.X)

    def column(self, name: str) -> np.ndarray:
        """One column of the table as an array, whichever form the table has."""
        return np.asarray(self.frame[name])


SCORED_COLUMNS = (*SCORED_HEADER, "score", "expected_points", "priority", "n_unknown_codes",
                  "new_provider")


def score_claims(lines: pd.DataFrame | Mapping[str, np.ndarray], reference: Reference,
                 predict: Predictor, as_frame: bool = True) -> Scored:
    """Per claim: score = P(error), expected points at stake, priority = score x stake, rules,
    and what the model has no history for: the count of unknown codes and a new provider.

    `lines`: the line table as a DataFrame or a mapping of column arrays (the same scores);
    as_frame=False keeps the table as a dict of arrays (SCORED_COLUMNS), which saves building
    a DataFrame for a request of a few claims."""
    view, hits, X = _prepared(lines, reference)
    p, stake = predict(X)
    score = p.astype(float)
    expected = np.minimum(stake.astype(float), np.asarray(hits["total_points"], dtype=float))
    unknown = unknown_codes(view, reference)
    n_unknown = np.zeros(len(score), np.int64)
    n_unknown[list(unknown)] = [len(v) for v in unknown.values()]
    out = {**{c: hits[c] for c in SCORED_HEADER}, "score": score,
           "expected_points": expected, "priority": score * expected,
           "n_unknown_codes": n_unknown,
           "new_provider": ~known_providers(hits["provider_id"], reference)}
    return Scored(pd.DataFrame(out) if as_frame else out, X, columns(hits, RULE_CODES, bool),
                  unknown)


def unknown_codes_at(scored: Scored, rows: np.ndarray) -> list[list[str]]:
    """Unknown codes of the claims at the given row positions."""
    return [scored.unknown.get(int(r), []) for r in rows]


def flag_summary(scored: Scored, rows: np.ndarray | None = None, examples: int = 10,
                 ) -> dict[str, Any]:
    """How many of the claims (all, or those at the given row positions) carry a code unknown
    to the model or come from a provider without history, with a Japanese note for reviewers."""
    positions = np.arange(len(scored)) if rows is None else np.asarray(rows, dtype=np.intp)
    with_unknown = scored.column("n_unknown_codes")[positions] > 0
    new = scored.column("new_provider").astype(bool)[positions]
    codes = list(dict.fromkeys(c for r in positions[with_unknown]
                               for c in scored.unknown.get(int(r), [])))
    providers = len({p for p in np.asarray(scored.frame["provider_id"], dtype=object)[
        positions[new]] if not pd.isna(p)})
    claims = len(positions)
    return {"claims": claims, "claims_with_unknown_codes": int(with_unknown.sum()),
            "distinct_unknown_codes": len(codes), "unknown_code_examples": codes[:examples],
            "claims_new_provider": int(new.sum()), "new_providers": int(providers),
            "note_ja": flag_note(claims, int(with_unknown.sum()), codes[:examples],
                                 len(codes), int(new.sum()), int(providers))}


def flag_note(claims: int, with_unknown: int, examples: list[str], distinct: int, new: int,
              providers: int) -> str:
    """The Japanese sentence the reviewer page and downloads show about flagged claims."""
    if not with_unknown and not new:
        return f"{claims}件すべて、コード表と過去の請求履歴にあるコード・医療機関です。"
    parts = []
    if with_unknown:
        shown = "、".join(examples) + ("ほか" if distinct > len(examples) else "")
        parts.append(f"コード表・学習データにないコードを含むレセプトが{with_unknown}件あります"
                     f"（{distinct}種類: {shown}）。これらのコードには算定回数・適応などの"
                     "ルールを確認できないため、目視で確認してください")
    if new:
        parts.append(f"請求履歴のない医療機関（{providers}か所）のレセプトが{new}件あります。"
                     "医療機関の過去の傾向は使わず、全体の平均と当月の請求内容で評価しています")
    return f"{claims}件中、" + "。".join(parts) + "。"


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


def for_features(predict: Predictor, names: Sequence[str]) -> Predictor:
    """A predictor over FEATURE_NAMES-wide rows for a model trained on the columns `names`:
    a champion exported before a feature was added keeps serving (it reads its own columns)
    until it is retrained. ValueError when it needs a feature this code no longer builds."""
    if tuple(names) == FEATURE_NAMES:
        return predict
    gone = [n for n in names if n not in FEATURE_NAMES]
    if gone:
        raise ValueError(f"the model needs features this code does not build: {gone}")
    cols = np.array([FEATURE_NAMES.index(n) for n in names], np.intp)
    return lambda X: predict(X[:, cols])


def widen_medians(medians: Sequence[float], names: Sequence[str]) -> np.ndarray:
    """The model's feature medians laid out over FEATURE_NAMES (0 for columns it does not
    read: occluding them changes nothing, so they never show as contributions)."""
    by_name = dict(zip(names, medians, strict=True))
    return np.array([by_name.get(n, 0.0) for n in FEATURE_NAMES], np.float32)


@dataclass
class OnnxPredictor:
    """Predictor backed by the combined ONNX model (classifier and stake regressor graphs)."""

    session: Any  # onnxruntime.InferenceSession (untyped)
    outputs: tuple[str, str] = ("classifier_probabilities", "stake_variable")

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.ascontiguousarray(X, dtype=np.float32)
        probs, log_stake = self.session.run(list(self.outputs), {"input": X})
        return np.asarray(probs)[:, 1], np.expm1(np.asarray(log_stake).reshape(-1))
