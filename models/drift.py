"""Population stability (PSI) of model inputs and scores: reference bins from the data a model was
validated on, bin counts of what the service scores, and the PSI between the two.

Pure numpy so serving can count without pandas or the training stack. A feature's bins are the
reference deciles (or its distinct values when it has few), plus one bin for missing values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_BINS = 10
SAMPLE_ROWS = 5000  # rows counted per scoring call: PSI needs a sample, not every claim
EPS = 1e-4  # floor on bin shares so an empty bin gives a large but finite PSI
REFERENCE = "drift.json"  # a packaged model's reference bins (written at export)


def _edges(col: np.ndarray) -> list[float]:
    """Inner bin edges: midpoints between distinct values if few, else reference deciles."""
    values = np.unique(col[np.isfinite(col)])
    if len(values) <= MAX_BINS:
        return ((values[:-1] + values[1:]) / 2).tolist()
    return np.unique(np.quantile(col[np.isfinite(col)], np.linspace(0, 1, MAX_BINS + 1)[1:-1])
                     ).tolist()


class BinTable:
    """Bin edges of several columns as one padded array, so one call bins every column.

    A value's bin is the number of edges at or below it (np.searchsorted(side="right")), in
    0..len(edges); a missing (NaN) or infinite value counts in the extra bin len(edges) + 1.
    Built once per model (serving/drift.py): scoring one row then bins its ~50 inputs in one
    vectorised step instead of one numpy call per column.
    """

    def __init__(self, edges: list[list[float]]):
        self.sizes = np.array([len(e) for e in edges], np.intp)
        width = max(1, int(self.sizes.max(initial=0)))
        self.edges = np.full((len(edges), width), np.inf)  # +inf padding: never <= a value
        for j, e in enumerate(edges):
            self.edges[j, :len(e)] = e
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes + 2)])

    def counts(self, values: np.ndarray) -> list[list[int]]:
        """Per column j of values (n, columns): counts per bin of edges[j] (then NaN/inf)."""
        values = np.asarray(values, np.float64)
        k = values.shape[1]
        at = (values[:, :, None] >= self.edges[None, :k]).sum(axis=2)
        at = np.where(np.isfinite(values), at, self.sizes[:k] + 1) + self.offsets[:k]
        flat = np.bincount(at.ravel(), minlength=int(self.offsets[k])).tolist()
        return [flat[self.offsets[j]:self.offsets[j + 1]] for j in range(k)]


def bin_counts(col: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin (len(edges) + 1 value bins, then one for NaN)."""
    col = np.asarray(col, np.float64).reshape(-1, 1)
    return np.array(BinTable([list(edges)]).counts(col)[0], np.int64)


def reference(X: np.ndarray, score: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Bins and their shares for every input column and the score (written as drift.json)."""
    X = np.asarray(X, np.float64)
    columns = {name: X[:, j] for j, name in enumerate(names)} | {"score": np.ravel(score)}
    out: dict[str, Any] = {"rows": len(X), "features": {}}
    for name, col in columns.items():
        edges = _edges(col)
        counts = bin_counts(col, edges)
        out["features"][name] = {"edges": edges, "shares": (counts / counts.sum()).tolist()}
    return out


def sample(X: np.ndarray, limit: int = SAMPLE_ROWS) -> np.ndarray:
    """Evenly strided rows, at most `limit` (deterministic, so a repeat request counts alike)."""
    step = max(1, -(-len(X) // limit))
    return X[::step]


def observe(ref: dict[str, Any], X: np.ndarray, score: np.ndarray,
            table: BinTable | None = None) -> dict[str, list[int]]:
    """Bin counts of one scoring call's inputs and scores against the reference's bins.
    `table`: reference_table(ref), when the caller keeps it between calls."""
    table = table or reference_table(ref)
    # sample before converting: a million-claim call must not copy all of X as float64
    X = np.asarray(sample(X), np.float64).reshape(-1, int(np.prod(np.shape(X)[1:])))
    score = sample(np.ravel(score))
    names = list(ref["features"])
    k = min(X.shape[1], len(names) - 1)
    out = dict(zip(names[:k], table.counts(X[:, :k]), strict=True))
    out["score"] = bin_counts(score, ref["features"]["score"]["edges"]).tolist()
    return out


def reference_table(ref: dict[str, Any]) -> BinTable:
    """The reference's input bins (every feature but the score, in order) as one BinTable."""
    return BinTable([spec["edges"] for name, spec in ref["features"].items() if name != "score"])


def score_of(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The score whose drift is reported: P(positive) of the first `*_probabilities` output
    (the top class's probability when multiclass), else the first output's largest column."""
    probs = [v for k, v in outputs.items() if k.endswith("_probabilities")]
    arr = np.asarray(probs[0] if probs else next(iter(outputs.values())), np.float64)
    if arr.ndim == 1:
        return arr
    arr = arr.reshape(len(arr), -1)
    return arr[:, 1] if probs and arr.shape[1] == 2 else arr.max(axis=1)


def merge_counts(total: dict[str, list[int]], counts: dict[str, list[int]]) -> None:
    """Add one set of bin counts to a running total, feature by feature (in place)."""
    for name, c in counts.items():
        total[name] = [a + b for a, b in zip(total[name], c, strict=True)] if name in total else c


def psi(shares: list[float], counts: list[int]) -> float | None:
    """PSI = sum (actual - expected) * ln(actual / expected); None when nothing was counted."""
    total = float(sum(counts))
    if total == 0:
        return None
    expected = np.maximum(np.asarray(shares, np.float64), EPS)
    actual = np.maximum(np.asarray(counts, np.float64) / total, EPS)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def report(ref: dict[str, Any], counts: dict[str, list[int]], threshold: float,
           min_rows: int = 0) -> list[dict[str, Any]]:
    """PSI per feature, largest first, flagged at or over the threshold when at least
    `min_rows` were counted (ten-bin PSI of a few dozen rows is mostly sampling noise)."""
    rows = []
    for name, spec in ref["features"].items():
        got = counts.get(name)
        value = psi(spec["shares"], got) if got is not None else None
        rows.append({"feature": name, "psi": value, "rows": int(sum(got)) if got else 0,
                     "flag": value is not None and value >= threshold
                     and sum(got or []) >= min_rows})
    return sorted(rows, key=lambda r: -1 if r["psi"] is None else r["psi"], reverse=True)
