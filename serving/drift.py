"""Input drift from live requests: every scoring call's inputs and scores are counted into the
champion's reference bins (drift.json, written at export) and stored with the request's usage
record; reports compare the last N days of a tenant's requests with the reference (PSI)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from models import drift
from models.drift import REFERENCE

log = logging.getLogger("kyodo.drift")
_BOX: ContextVar[dict[str, Any] | None] = ContextVar("kyodo_drift_box", default=None)


@contextmanager
def collecting(box: dict[str, Any]) -> Iterator[None]:
    """Scoring calls inside the block add their bin counts to box["drift"]."""
    token = _BOX.set(box)
    try:
        yield
    finally:
        _BOX.reset(token)


@contextmanager
def paused() -> Iterator[None]:
    """Scoring calls inside the block are not counted (perturbed inputs for explanations)."""
    token = _BOX.set(None)
    try:
        yield
    finally:
        _BOX.reset(token)


def add_counts(box: dict[str, Any], counts: dict[str, list[int]]) -> None:
    """Add one call's counts to the request's (a request may score several times)."""
    drift.merge_counts(box.setdefault("drift", {}), counts)


class ObservedSession:
    """An onnxruntime session that also counts inputs and scores for drift; counting never
    fails or changes a prediction."""

    def __init__(self, session: Any, reference: dict[str, Any] | None):
        self._session = session
        self._reference = reference
        self._table = drift.reference_table(reference) if reference is not None else None
        self._outputs = [o.name for o in session.get_outputs()]

    def run(self, output_names: list[str] | None, feeds: dict[str, Any], *args: Any,
            **kwargs: Any) -> list[Any]:
        """InferenceSession.run, then counting when a request is collecting."""
        out = self._session.run(output_names, feeds, *args, **kwargs)
        box = _BOX.get()
        if box is not None and self._reference is not None:
            try:
                outputs = dict(zip(output_names or self._outputs, out, strict=True))
                X = np.asarray(next(iter(feeds.values())))
                add_counts(box, drift.observe(self._reference, X, drift.score_of(outputs),
                                                self._table))
            except Exception:  # drift is a report; the prediction matters more
                log.exception("drift counting failed")
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def drift_report(rt: Any, days: float, tenants: list[str] | None = None,
                 ) -> list[dict[str, Any]]:
    """Every (task, tenant) pair with requests to a loaded champion in the window (the store's
    AuditTrail.drift_report with the champions' reference bins and the configured threshold)."""
    ops = rt.platform.operations
    references = {task: (model.version, model.assets[REFERENCE])
                  for task, model in rt.models.items()
                  if model.assets.get(REFERENCE) is not None}
    return rt.store.audit_trail.drift_report(references, days, ops.drift_psi_threshold,
                                             ops.drift_min_rows, tenants)
