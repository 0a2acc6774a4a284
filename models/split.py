"""Held-out parts and tenant selection shared by the tasks' `split` and `select`.

A task's frames share a unit column (person, resident, photo) and a `tenant_code` column; its
first frame holds one row per unit. Holding a unit out takes every row of every frame that
names it, so no unit's rows straddle the train and held-out parts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from models.task import Frames


def tenant_share(units: pd.DataFrame, unit: str, share: float) -> pd.Series:
    """Ids of the `share` (0..1) of each tenant's units with the lowest rank of a stable hash
    of the id: the same ids for the same rows on every run, whatever the row order.

    units: one row per unit with columns `unit` and `tenant_code`.
    """
    h = pd.util.hash_pandas_object(units[unit].astype(str), index=False)
    pct = pd.Series(h.to_numpy()).groupby(units["tenant_code"].to_numpy()).rank(pct=True)
    return units[unit][(pct <= share).to_numpy()]


def hold_out(data: Frames, frames: Sequence[str], unit: str,
             test_ids: pd.Series | np.ndarray) -> tuple[Frames, Frames]:
    """(train, held-out): every frame's rows whose `unit` is in `test_ids` are held out, the
    others trained on; each part's index is reset. ValueError when the first frame is empty."""
    if data[frames[0]].empty:
        raise ValueError(f"no {frames[0]} to split")
    masks = {f: data[f][unit].isin(test_ids) for f in frames}
    return ({f: data[f][~m].reset_index(drop=True) for f, m in masks.items()},
            {f: data[f][m].reset_index(drop=True) for f, m in masks.items()})


def select_tenants(data: Frames, frames: Sequence[str], tenant_codes: Collection[str],
                   link: str | None = None) -> Frames:
    """Only the given tenants' rows of each frame (index reset). A frame without a
    `tenant_code` column keeps the rows whose `link` id (e.g. claim_id) the first frame's kept
    rows hold."""
    first = data[frames[0]]
    kept = first[first["tenant_code"].isin(tenant_codes)]
    out = {frames[0]: kept.reset_index(drop=True)}
    for f in frames[1:]:
        df = data[f]
        if link is None or "tenant_code" in df.columns:
            keep = df["tenant_code"].isin(tenant_codes)
        else:
            keep = df[link].isin(kept[link].unique())
        out[f] = df[keep].reset_index(drop=True)
    return out
