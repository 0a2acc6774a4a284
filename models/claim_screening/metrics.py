"""Review-capacity metrics: what a team recovers when it reviews the top share of claims."""

from __future__ import annotations

import numpy as np


def top_k(priority: np.ndarray, capacity: float) -> np.ndarray:
    """Indices of the highest-priority claims within capacity (a share of all claims)."""
    k = max(1, round(len(priority) * capacity))
    order = np.lexsort((np.arange(len(priority)), -priority))  # stable: ties keep input order
    return order[:k]


def capacity_metrics(priority: np.ndarray, recoverable: np.ndarray, capacity: float,
                     ) -> dict[str, float]:
    """Recovered points, their share of all recoverable points, and precision at capacity."""
    chosen = top_k(priority, capacity)
    total = float(recoverable.sum())
    got = float(recoverable[chosen].sum())
    return {
        "recovered_points": got,
        "recovered_share": got / total if total else 0.0,
        "precision": float((recoverable[chosen] > 0).mean()),
        "reviewed": float(len(chosen)),
    }


def recovery_curve(priority: np.ndarray, recoverable: np.ndarray,
                   capacities: np.ndarray) -> np.ndarray:
    """Recovered points at each capacity (for plots)."""
    return np.array([capacity_metrics(priority, recoverable, c)["recovered_points"]
                     for c in capacities])
