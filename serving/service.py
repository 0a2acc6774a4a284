"""The BentoML service: worker processes serving every task's champion ONNX model and the pages.

Run with `bentoml serve serving.service:Kyodo` (or `kyodo serve`, `make serve`). The number of
worker processes is $KYODO_WORKERS (`kyodo serve --workers N`), else serving.workers in
configs/platform.yaml, else one per CPU core. Every worker loads its own runtime; what they
share is on disk: the store (SQLite WAL or PostgreSQL), the file store, champions.json, the
heavy-request slots (serving/slots.py) and the Prometheus multiprocess directory.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml

from models.configs import PlatformConfig, ServingLimits, load_config
from serving import connections
from serving.api import app, installed_runtime
from serving.deps import install
from serving.guard import ProductErrors, ReadyProbe
from serving.runtime import Runtime, workspace_root

WORKERS = "KYODO_WORKERS"


def serving_limits() -> ServingLimits:
    """serving: of the workspace's configs/platform.yaml (the defaults when it has none)."""
    path = workspace_root() / "configs" / "platform.yaml"
    return load_config(path, PlatformConfig).serving if path.is_file() else ServingLimits()


def worker_count(limits: ServingLimits) -> int | str:
    """$KYODO_WORKERS, else serving.workers, else BentoML's "cpu_count" (one per core)."""
    value = os.environ.get(WORKERS, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{WORKERS}={value!r}: expected a whole number of workers >= 1")
        return int(value)
    return limits.workers or "cpu_count"


_LIMITS = serving_limits()
# uvicorn builds its protocol after this module is imported, in every worker
connections.install(_LIMITS.header_timeout_s, _LIMITS.keep_alive_s)


# BentoML's own HTTP metrics label series by the raw path (ids of other tenants' batches, one
# series per unknown URL); kyodo's route-template metrics replace them (serving/metrics.py),
# and /metrics is then the FastAPI route, behind the operator key or KYODO_METRICS_TOKEN.
@bentoml.service(name="kyodo", traffic={"timeout": 600}, http={"port": 3000},
                 metrics={"enabled": False}, workers=worker_count(_LIMITS))
@bentoml.asgi_app(app, path="/")
class Kyodo:
    """Loads tenants, the store and the champion models once per worker process."""

    def __init__(self) -> None:
        self.runtime = Runtime.load()
        install(app, self.runtime)


def _readiness() -> dict[str, Any] | None:
    rt = installed_runtime()
    return rt.readiness() if rt is not None else None


Kyodo.add_asgi_middleware(ProductErrors)
Kyodo.add_asgi_middleware(ReadyProbe, readiness=_readiness)
