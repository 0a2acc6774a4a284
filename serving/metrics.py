"""Prometheus metrics of every metered request, labelled by tenant, task and model version.

Under `bentoml serve` BentoML's own /metrics serves them (prometheus_client in multiprocess
mode, all workers together); elsewhere (tests, a plain ASGI server) GET /metrics below does.
prometheus_client is imported on first use, after BentoML has set PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

log = logging.getLogger("kyodo.metrics")
router = APIRouter(tags=["platform"])
LABELS = ("tenant", "task", "endpoint", "model_version")
# seconds; predictions take milliseconds, month-sized CSV queues tens of seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def _families() -> dict[str, Any]:
    """The metric objects, created once per process on first use."""
    if _metrics:
        return _metrics
    from prometheus_client import Counter, Histogram

    with _lock:
        if not _metrics:
            _metrics.update(
                requests=Counter("kyodo_requests", "Metered requests", (*LABELS, "status")),
                errors=Counter("kyodo_request_errors", "Metered requests answered with 4xx/5xx",
                               (*LABELS, "status")),
                latency=Histogram("kyodo_request_seconds", "Request time in seconds", LABELS,
                                  buckets=BUCKETS),
                rows=Counter("kyodo_rows", "Rows (claims, residents, ...) processed", LABELS),
                images=Counter("kyodo_images", "Images processed", LABELS),
            )
    return _metrics


def observe(rec: dict[str, Any]) -> None:
    """Count one finished request (a request_record); never raises."""
    try:
        m = _families()
        labels = (rec["tenant"], rec["task"], rec["endpoint"], rec["model_version"] or "none")
        status = str(rec["status"])
        m["requests"].labels(*labels, status).inc()
        if rec["status"] >= 400:
            m["errors"].labels(*labels, status).inc()
        m["latency"].labels(*labels).observe(rec["compute_ms"] / 1000)
        m["rows"].labels(*labels).inc(rec["rows"])
        m["images"].labels(*labels).inc(rec["images"])
    except Exception:  # metrics must never fail a prediction
        log.exception("could not record metrics for request %s", rec.get("request_id"))


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus text format (BentoML answers this path itself under `bentoml serve`)."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _families()
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
