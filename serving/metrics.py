"""Prometheus metrics: every metered request by tenant, task, endpoint and model version, and
every HTTP request by route template (never the raw path: ids and unknown URLs would leak other
tenants' batch ids and grow the series without bound).

GET /metrics below serves them (prometheus_client in multiprocess mode under `bentoml serve`,
all workers together; BentoML's own raw-path metrics are switched off in serving/service.py).
It needs the operator's admin key or the scrape token in KYODO_METRICS_TOKEN.
prometheus_client is imported on first use, after BentoML has set PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
                http=Counter("kyodo_http_requests", "HTTP requests by route template",
                             ("route", "method", "status")),
                http_seconds=Histogram("kyodo_http_request_seconds",
                                       "HTTP request time in seconds by route template",
                                       ("route", "method"), buckets=BUCKETS),
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


METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # every path no route knows shares this one label


def route_label(scope: Scope) -> str:
    """The matched route's template (`/v1/road_damage/batches/{batch_id}`), else UNMATCHED."""
    route = scope.get("route")  # a Mount (the app under BentoML) is not a match
    if not isinstance(route, Route) or route.name == UNMATCHED:  # the catch-all (serving/api)
        return UNMATCHED
    return route.path_format


class RouteMetrics:
    """Counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _observe_http(route_label(scope), scope.get("method", ""), status,
                          time.perf_counter() - t0)


def _observe_http(route: str, method: str, status: int, seconds: float) -> None:
    try:
        m = _families()
        method = method if method in METHODS else "other"
        m["http"].labels(route, method, str(status)).inc()
        m["http_seconds"].labels(route, method).observe(seconds)
    except Exception:  # metrics must never fail a request
        log.exception("could not record HTTP metrics")


def check_scraper(request: Request) -> None:
    """/metrics is for the operator: the admin key or KYODO_METRICS_TOKEN (a scrape-only
    secret for Prometheus), else 401 (no or unknown key) or 403 (a municipality's key)."""
    from serving.deps import NOT_LOADED, bearer, runtime_of

    key = bearer(request)
    token = os.environ.get("KYODO_METRICS_TOKEN", "")
    if token and hmac.compare_digest(key.encode(), token.encode()):
        return
    rt = runtime_of(request.app)
    if rt is None:
        raise HTTPException(503, NOT_LOADED)
    if rt.is_admin(key):
        return
    if rt.tenant_for(key) is not None:
        raise HTTPException(403, "/metrics needs the operator's admin key or the scrape token "
                                 "(KYODO_METRICS_TOKEN), not a municipality's key")
    raise HTTPException(401, "unknown API key or scrape token",
                        headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format, for the admin key or the scrape token."""
    check_scraper(request)
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _families()
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
