"""The BentoML service: one process serving every task's champion ONNX model and the pages.

Run with `bentoml serve serving.service:Kyodo` (or `kyodo serve`, `make serve`).
"""

from __future__ import annotations

from typing import Any

import bentoml

from serving.api import app, installed_runtime
from serving.deps import get_runtime
from serving.guard import ProductErrors, ReadyProbe
from serving.runtime import Runtime


# BentoML's own HTTP metrics label series by the raw path (ids of other tenants' batches, one
# series per unknown URL); kyodo's route-template metrics replace them (serving/metrics.py),
# and /metrics is then the FastAPI route, behind the operator key or KYODO_METRICS_TOKEN.
@bentoml.service(name="kyodo", traffic={"timeout": 600}, http={"port": 3000},
                 metrics={"enabled": False})
@bentoml.asgi_app(app, path="/")
class Kyodo:
    """Loads tenants, the store and the champion models once per worker."""

    def __init__(self) -> None:
        self.runtime = Runtime.load()
        app.dependency_overrides[get_runtime] = lambda: self.runtime


def _readiness() -> dict[str, Any] | None:
    rt = installed_runtime()
    return rt.readiness() if rt is not None else None


Kyodo.add_asgi_middleware(ProductErrors)
Kyodo.add_asgi_middleware(ReadyProbe, readiness=_readiness)
