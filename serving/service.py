"""The BentoML service: worker processes serving every task's champion ONNX model and the pages.

Run with `bentoml serve serving.service:Kyodo` (or `kyodo serve`, `make serve`). The number of
worker processes is $KYODO_WORKERS (`kyodo serve --workers N`), else serving.workers in
configs/platform.yaml, else one per CPU core. Every worker loads its own runtime; what they
share is on disk: the store (SQLite WAL or PostgreSQL), the file store, champions.json, the
heavy-request slots (serving/slots.py) and the Prometheus multiprocess directory.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import bentoml
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from models.configs import PlatformConfig, ServingLimits, Tenant, load_config
from serving import checkup_nudge as nudge
from serving import claim_screening as claims
from serving import connections, traffic
from serving.api import app, installed_runtime
from serving.batching import TENANT, Batcher, SingleRowGate
from serving.deps import champion, install
from serving.guard import ProductErrors, ReadyProbe
from serving.runtime import LoadedModel, Runtime, workspace_root

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
# the tasks with a single-row API: their router modules' score_one (serving/batching.py)
SINGLE_ROW = {claims.TASK: claims, nudge.TASK: nudge} if _LIMITS.batching else {}
# uvicorn builds its protocol after this module is imported, in every worker
connections.install(_LIMITS.header_timeout_s, _LIMITS.keep_alive_s, _LIMITS.linger_s,
                    _LIMITS.linger_mb)
# BentoML's request-timeout timers, cancelled when a request ends (each held ~5-10 kB for 600 s)
traffic.install()


# BentoML's own HTTP metrics label series by the raw path (ids of other tenants' batches, one
# series per unknown URL); kyodo's route-template metrics replace them (serving/metrics.py),
# and /metrics is then the FastAPI route, behind the operator key or KYODO_METRICS_TOKEN.
@bentoml.service(name="kyodo", traffic={"timeout": 600}, http={"port": 3000},
                 metrics={"enabled": False}, workers=worker_count(_LIMITS))
@bentoml.asgi_app(app, path="/")
class Kyodo:
    """Loads tenants, the store and the champion models once per worker process.

    With serving.batching on, the two single-row paths are typed BentoML APIs whose requests
    are scored in adaptive batches (serving/batching.py); they are matched before the mounted
    FastAPI app, whose routes of the same paths, types and answers serve them otherwise."""

    def __init__(self) -> None:
        self.runtime = Runtime.load()
        install(app, self.runtime)
        freeze_heap()
        size, latency = _LIMITS.batch_max_size, _LIMITS.batch_max_latency_ms
        self.batchers = {task: Batcher(partial(_one, module.score_one, self.runtime), size,
                                       latency) for task, module in SINGLE_ROW.items()}

    if _LIMITS.batching:
        @bentoml.api(route=claims.SCORE_CLAIM)
        async def score_claim(self, claim: claims.ClaimIn, /,
                              ctx: bentoml.Context) -> claims.ClaimScore:
            """Score one claim (the body is the claim): /score's figures without
            contributions, scored in an adaptive batch."""
            return await self._batched(claims.TASK, claim, ctx, claims.ClaimScore)

        @bentoml.api(route=nudge.SCORE_RESIDENT)
        async def score_resident(self, body: nudge.ResidentScoreRequest, /,
                                 ctx: bentoml.Context) -> nudge.ResidentScore:
            """Score one resident: /score's figures, scored in an adaptive batch."""
            return await self._batched(nudge.TASK, body, ctx, nudge.ResidentScore)

    async def _batched(self, task: str, row: Any, ctx: bentoml.Context,
                       answer: type[BaseModel]) -> Any:
        """The row's `answer` from its task's batcher, or an error in the product's shape."""
        tenant = ctx.request.scope["state"][TENANT]  # set by SingleRowGate
        try:
            job = (tenant, champion(self.runtime, task), row)
            return answer.model_validate(await self.batchers[task](job))
        except HTTPException as exc:
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))


def freeze_heap() -> None:
    """Move every object alive now (the loaded runtime, models, tenants, libraries: ~170,000
    objects) out of the garbage collector's reach, unless KYODO_GC_FREEZE=0.

    They live as long as the worker, yet each full collection walked them all: ~130 ms with
    the event loop stopped, every few seconds under load, which put every request queued on
    the worker into one slow cluster (the c=32 p99, the GET /v1/models floor's too; README:
    One tenant cannot stall the others). Objects made later are collected as before."""
    if os.environ.get("KYODO_GC_FREEZE", "1").strip() != "0":
        gc.collect()
        gc.freeze()


def _one(score: Callable[..., dict[str, Any]], rt: Runtime,
         job: tuple[Tenant, LoadedModel, Any]) -> dict[str, Any]:
    """A batch job: the task's own single-row scoring (metered per request)."""
    return score(rt, *job)


def _readiness() -> dict[str, Any] | None:
    rt = installed_runtime()
    return rt.readiness() if rt is not None else None


if _LIMITS.batching:
    Kyodo.add_asgi_middleware(SingleRowGate, runtime=installed_runtime, limits=lambda: _LIMITS,
                              paths={claims.SCORE_CLAIM: claims.TASK,
                                     nudge.SCORE_RESIDENT: nudge.TASK})
Kyodo.add_asgi_middleware(ProductErrors)
Kyodo.add_asgi_middleware(ReadyProbe, readiness=_readiness)
