"""Off-policy evaluation on held-out randomised rows: DR/IPW policy value, bootstrap CIs, Qini.

A row is (person, campaign, arm, known assignment probability, outcome). Values are estimated
per person (averaging their campaigns) and bootstrapped over persons, so the CIs respect that
one person's campaigns are correlated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

QINI_POINTS = 100


def row_scores(mu: np.ndarray, arm: np.ndarray, y: np.ndarray, prop: np.ndarray,
               target: np.ndarray, doubly_robust: bool = True) -> np.ndarray:
    """Per row: estimated outcome had the person received `target` (IPW or DR score)."""
    rows = np.arange(len(y))
    hit = (arm == target) / prop
    if not doubly_robust:
        return hit * y
    m = mu[rows, target]
    return m + hit * (y - m)


def per_person(values: np.ndarray, person: np.ndarray, n_persons: int) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """Mean of row values per person, shape (n_persons, ...), and which persons have rows."""
    counts = np.bincount(person, minlength=n_persons)
    sums = np.zeros((n_persons, *values.shape[1:]))
    np.add.at(sums, person, values)
    seen = counts > 0
    sums[seen] /= counts[seen].reshape(-1, *([1] * (values.ndim - 1)))
    return sums, seen


def gains_per_person(mu: np.ndarray, arm: np.ndarray, y: np.ndarray, prop: np.ndarray,
                     person: np.ndarray, assigns: Mapping[str, np.ndarray],
                     doubly_robust: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per person and policy: estimated additional attendance vs no postcard, (n_persons, k).

    `assigns` maps a policy name to the arm index per person; mu is P (rows, n_arms).
    """
    n_persons = len(next(iter(assigns.values())))
    none = row_scores(mu, arm, y, prop, np.zeros(len(y), int), doubly_robust)
    cols = [row_scores(mu, arm, y, prop, a[person], doubly_robust) - none
            for a in assigns.values()]
    return per_person(np.column_stack(cols), person, n_persons)


def bootstrap(values: np.ndarray, scale: float, n_boot: int, seed: int,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Point estimates (scale x column means) and percentile bootstrap draws over persons."""
    rng = np.random.default_rng(seed)
    n = len(values)
    point = values.mean(axis=0) * scale if n else np.zeros(values.shape[1])
    if n == 0:
        return point, np.zeros((n_boot, values.shape[1]))
    draws = np.stack([values[rng.integers(0, n, n)].mean(axis=0) for _ in range(n_boot)])
    return point, draws * scale


def cluster_bootstrap(values: np.ndarray, groups: np.ndarray, scale: float, n_boot: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row means (scale x column means of values (n, k)) and bootstrap draws that resample
    whole clusters (households, or a person's campaigns): each draw is the resampled clusters'
    sum over their row count, so the estimand stays the mean per row (person) while rows of a
    cluster move together (cluster-robust). With every row its own cluster it is `bootstrap`
    (the same draws for the same seed)."""
    values = np.asarray(values, float)
    _, g = np.unique(groups, return_inverse=True)
    n_groups = int(g.max()) + 1 if len(g) else 0
    if n_groups == len(values):  # one row per cluster: rows in cluster order
        order = np.argsort(g, kind="stable")
        return bootstrap(values[order], scale, n_boot, seed)
    sums = np.zeros((n_groups, values.shape[1]))
    np.add.at(sums, g, values)
    counts = np.bincount(g, minlength=n_groups).astype(float)
    rng = np.random.default_rng(seed)
    point = values.mean(axis=0) * scale
    draws = np.empty((n_boot, values.shape[1]))
    for b in range(n_boot):
        idx = rng.integers(0, n_groups, n_groups)
        draws[b] = sums[idx].sum(axis=0) / counts[idx].sum()
    return point, draws * scale


def interval(point: float, draws: np.ndarray) -> dict[str, float]:
    """Estimate with its 95% percentile interval."""
    lo, hi = np.percentile(draws, [2.5, 97.5]) if len(draws) else (point, point)
    return {"estimate": round(float(point), 5), "ci_low": round(float(lo), 5),
            "ci_high": round(float(hi), 5)}


def policy_values(values: np.ndarray, names: Sequence[str], scale: float, n_boot: int,
                  seed: int, compare: str | None = None, groups: np.ndarray | None = None,
                  ) -> dict[str, dict[str, float]]:
    """Each policy's value with a CI, and (if `compare`) its difference to every other.

    `groups` (n,): resample whole clusters (cluster_bootstrap) instead of rows.
    """
    point, draws = (bootstrap(values, scale, n_boot, seed) if groups is None
                    else cluster_bootstrap(values, groups, scale, n_boot, seed))
    out = {name: interval(point[j], draws[:, j]) for j, name in enumerate(names)}
    if compare is not None:
        c = list(names).index(compare)
        for j, name in enumerate(names):
            if j != c:
                out[f"{compare}_minus_{name}"] = interval(point[c] - point[j],
                                                          draws[:, c] - draws[:, j])
    return out


def qini(score: np.ndarray, treated: np.ndarray, y: np.ndarray, weight: np.ndarray,
         points: int = QINI_POINTS) -> dict[str, np.ndarray | float]:
    """Uplift-gain curve of targeting by `score` (treated vs control rows, IPW-weighted).

    gain(φ) = (treated rate - control rate among the top φ) x φ: additional attendees per
    person when the top φ are treated. AUUC = mean gain over φ; qini = AUUC minus the random
    targeting's AUUC (gain(1) / 2).
    """
    order = np.lexsort((np.arange(len(score)), -score))
    t, w, yy = treated[order], weight[order], y[order]
    cw_t, cw_c = np.cumsum(w * t), np.cumsum(w * ~t)
    cy_t, cy_c = np.cumsum(w * t * yy), np.cumsum(w * ~t * yy)
    total = cw_t + cw_c
    frac = np.linspace(0, 1, points + 1)[1:]
    idx = np.minimum(np.searchsorted(total / max(total[-1], 1e-12), frac - 1e-12), len(t) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where((cw_t[idx] > 0) & (cw_c[idx] > 0),
                        cy_t[idx] / cw_t[idx] - cy_c[idx] / cw_c[idx], 0.0)
    g = rate * total[idx] / total[-1]
    auuc = float(g.mean())
    return {"fraction": frac, "gain": g, "auuc": auuc, "qini": auuc - float(g[-1]) / 2,
            "uplift_all": float(g[-1])}


def qini_by_arm(P: np.ndarray, arm: np.ndarray, y: np.ndarray, prop: np.ndarray,
                arms: Sequence[str]) -> dict[str, dict[str, np.ndarray | float]]:
    """Qini curve of each treated arm against control, ranking by the predicted uplift."""
    out = {}
    for k, name in enumerate(arms[1:], start=1):
        rows = (arm == k) | (arm == 0)
        if (arm == k).sum() == 0 or (arm == 0).sum() == 0:
            continue
        out[name] = qini(P[rows, k] - P[rows, 0], arm[rows] == k, y[rows].astype(float),
                         1.0 / prop[rows])
    return out


def qini_summary(curves: Mapping[str, Mapping[str, np.ndarray | float]],
                 ) -> dict[str, dict[str, float]]:
    """AUUC, Qini coefficient and overall uplift per arm (JSON-friendly)."""
    return {a: {k: round(float(c[k]), 5) for k in ("auuc", "qini", "uplift_all")}
            for a, c in curves.items()}
