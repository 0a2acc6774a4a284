"""The review queue policy: which claims an office reviews in a month. One function, called by
serving (serving/claim_screening.py `/queue`) and by the evaluation (metrics.py, the headline),
so that the recovered points reported are those of the queue a tenant is given.

The default review capacity is shipped with the model (`policy.json`, written at export from
the config the headline was measured with) and read once when serving loads the champion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from models.configs import Strict, validate_shipped

log = logging.getLogger(__name__)

POLICY_ASSET = "policy.json"
# The unit one review queue covers: serving cuts an upload's chosen month of one tenant's
# claims; the evaluation cuts every tenant's every held-out month the same way.
OFFICE_MONTH = ("tenant_code", "service_month")


class QueuePolicy(Strict):
    """policy.json: the queue defaults the model was evaluated with."""

    capacity: float = Field(gt=0, le=1, description="share of a month's claims reviewed")


def queue_size(n: int, capacity: float) -> int:
    """Claims queued out of `n` in one month: max(1, round(n * capacity)), half to even."""
    return max(1, round(n * capacity))


def review_queue(scored: pd.DataFrame, capacity: float, priority: str = "priority",
                 per: Sequence[str] = ("service_month",)) -> pd.DataFrame:
    """The queued rows of `scored`: within each group of `per` (default one service month),
    the `queue_size(n_group, capacity)` highest `priority` rows.

    scored: one row per claim with columns `priority` (any name, given by `priority`;
    higher first, NaN last), `claim_id` and the `per` columns. Ties in priority go to the
    smaller claim_id (string order), so the cut never depends on row order. Returns the
    selected rows (index and columns kept), sorted by group then rank. Raises ValueError for
    a capacity outside (0, 1].
    """
    if not 0 < capacity <= 1:
        raise ValueError(f"capacity: expected a share in (0, 1], got {capacity}")
    if scored.empty:
        return scored
    keys = [*per, priority, "claim_id"]
    ordered = scored.sort_values(keys, ascending=[True] * len(per) + [False, True],
                                 kind="mergesort", na_position="last")
    if per:
        groups = ordered.groupby(list(per), sort=False, dropna=False)
        rank, size = groups.cumcount().to_numpy(), groups[priority].transform("size").to_numpy()
    else:
        rank, size = np.arange(len(ordered)), np.full(len(ordered), len(ordered))
    k = np.maximum(1, np.round(size * capacity))  # np.round halves to even, as round() does
    return ordered[rank < k]


def shipped_policy(assets: dict[str, Any], config: Path | None = None) -> QueuePolicy:
    """The queue policy a champion package ships (its policy.json, as loaded by serving).

    A package exported before policy.json existed falls back, with a logged warning, to
    `config` (configs/claim_screening.yaml), read once here. Raises ValueError naming the file
    and field when policy.json is malformed, or when it is absent and the config cannot give a
    capacity: serving then disables this task's new champion rather than guess a capacity.
    """
    raw = assets.get(POLICY_ASSET)
    if raw is not None:
        return validate_shipped(POLICY_ASSET, raw, QueuePolicy)
    from models.claim_screening.task import ClaimScreeningConfig
    from models.configs import ConfigError, load_task_config

    if config is None:
        raise ValueError(f"the package has no {POLICY_ASSET} (exported before it was shipped) "
                         "and no config to fall back to; re-export the model")
    try:
        capacity = load_task_config(config, ClaimScreeningConfig).capacity
    except ConfigError as exc:
        raise ValueError(f"the package has no {POLICY_ASSET} and {config} is unusable: {exc}"
                         ) from exc
    log.warning("claim_screening package has no %s (exported before it was shipped): using "
                "capacity %s from %s; re-export the model to ship it", POLICY_ASSET, capacity,
                config)
    return QueuePolicy(capacity=capacity)
