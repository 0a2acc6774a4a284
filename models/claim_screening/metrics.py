"""Review-capacity metrics: what offices recover when each reviews its month's queue, cut by
the served policy (models/claim_screening/policy.py `review_queue`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.claim_screening.policy import OFFICE_MONTH, review_queue


def capacity_metrics(table: pd.DataFrame, capacity: float, priority: str = "priority",
                     per: Sequence[str] = OFFICE_MONTH) -> dict[str, float]:
    """Recovered points, their share of all recoverable points, precision and claims reviewed
    when every tenant's every month is cut at `capacity` by `priority`.

    table: one row per claim with `claim_id`, `recoverable` (points), the `priority` column
    and the `per` columns (models/claim_screening/task.py `evaluation_table`).
    """
    queued = review_queue(table, capacity, priority, per)["recoverable"].to_numpy(float)
    total = float(table["recoverable"].sum())
    got = float(queued.sum())
    return {
        "recovered_points": got,
        "recovered_share": got / total if total else 0.0,
        "precision": float((queued > 0).mean()) if len(queued) else 0.0,
        "reviewed": float(len(queued)),
    }


def recovery_curve(table: pd.DataFrame, priority: str, capacities: np.ndarray,
                   per: Sequence[str] = OFFICE_MONTH) -> np.ndarray:
    """Recovered points at each capacity under the served cut (for plots and pooling)."""
    return np.array([capacity_metrics(table, c, priority, per)["recovered_points"]
                     for c in capacities])
