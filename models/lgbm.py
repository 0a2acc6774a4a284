"""Fitting LightGBM here or on a Dask cluster (lightgbm.dask) behind one call, so every task's
estimator code is the same either way and always ends with an ordinary local estimator (which
the ONNX export and the parity gate expect)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from pydantic import Field

from models.configs import Strict

# Before lightgbm loads OpenMP (every estimator imports lightgbm inside its functions, after
# this module): idle threads sleep instead of spinning. `kyodo` and `make` set it already; this
# covers direct use (bench scripts, notebooks). On the claims demo data at a load average of
# ~12 on 2 cores the pooled claim_screening fit took 303 s without it and ~30 s with it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_CLIENT: ContextVar[Any] = ContextVar("kyodo_dask_client", default=None)


class Bagging(Strict):
    """The row and column sampling every task's LightGBM uses; a task's `model` config
    subclasses it with its own trees, learning rate and leaves (their defaults differ)."""

    subsample: float = Field(default=0.8, gt=0, le=1)
    subsample_freq: int = Field(default=1, ge=0)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)


@contextmanager
def on_cluster(client: Any) -> Iterator[None]:
    """Within the block, fit() trains on this dask.distributed Client's workers."""
    token = _CLIENT.set(client)
    try:
        yield
    finally:
        _CLIENT.reset(token)


def fit(estimator: Any, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
        **kwargs: Any) -> Any:
    """estimator.fit(X, y, ...) locally, or its lightgbm.dask twin on the active cluster with
    the same parameters, returned as a local estimator (DaskLGBM*.to_local())."""
    client = _CLIENT.get()
    if client is None:
        return estimator.fit(X, y, sample_weight=sample_weight, **kwargs)
    import dask.array as da
    import lightgbm as lgb

    twin = getattr(lgb, f"Dask{type(estimator).__name__}")
    workers = max(1, len(client.scheduler_info()["workers"]))
    X = np.asarray(X)
    rows = max(1, -(-len(X) // workers))  # one partition per worker: each holds a data shard
    def part(a: np.ndarray) -> Any:
        return da.from_array(a, chunks=(rows, *a.shape[1:]))

    weight = None if sample_weight is None else part(np.asarray(sample_weight, np.float64))
    model = twin(client=client, **estimator.get_params()).fit(
        part(X), part(np.asarray(y)), sample_weight=weight, **kwargs)
    return model.to_local()
