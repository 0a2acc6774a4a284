"""The BentoML service: one process serving every task's champion ONNX model and the pages.

Run with `bentoml serve serving.service:Kyodo` (or `kyodo serve`, `make serve`).
"""

from __future__ import annotations

import bentoml

from serving.api import app
from serving.deps import get_runtime
from serving.runtime import Runtime


@bentoml.service(name="kyodo", traffic={"timeout": 600}, http={"port": 3000})
@bentoml.asgi_app(app, path="/")
class Kyodo:
    """Loads tenants, the store and the champion models once per worker."""

    def __init__(self) -> None:
        self.runtime = Runtime.load()
        app.dependency_overrides[get_runtime] = lambda: self.runtime
