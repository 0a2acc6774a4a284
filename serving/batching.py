"""Adaptive batching of the single-row APIs with BentoML's own dispatcher.

`bentoml.api(batchable=True)` hands the method only the batch: which tenant sent which row is
gone by then, so neither the key's subscription nor the per-request meter could be kept. The
single-row APIs (serving/service.py) therefore authenticate each request first and then queue
(tenant, model, row) jobs on the dispatcher `batchable=True` uses (CorkDispatcher: it learns
how long a batch of n takes and holds requests only while waiting pays off). A batch runs in
one worker thread; each job in it is scored and metered on its own, since claim features are
computed over the request's own claims (duplicates, the provider's month) and must not see
another request's, let alone another tenant's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from bentoml._internal.marshal.dispatcher import CorkDispatcher
from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.configs import ServingLimits
from serving.deps import NOT_LOADED, authorized
from serving.guard import BodyLimit, json_response, rewrite_response

Job = TypeVar("Job")


def _overloaded() -> Any:
    """What a request gets when the dispatcher drops it (it would miss its max latency)."""
    raise HTTPException(503, "busy: the request would wait longer than "
                             "serving.batch_max_latency_ms for its batch; retry")


class Batcher(Generic[Job]):
    """`await batcher(job)`: the job's result from `run(job)`, run inside a batch of the jobs
    queued meanwhile (at most `max_batch_size`); `run`'s exceptions are the job's alone."""

    def __init__(self, run: Callable[[Job], Any], max_batch_size: int, max_latency_ms: int):
        self.sizes: list[int] = []  # batch sizes seen (the bench reports them)
        dispatcher = CorkDispatcher(max_latency_ms, max_batch_size, fallback=_overloaded,
                                    get_batch_size=lambda _: 1, batch_dim=(0, 0))
        self._call = dispatcher(self._batch)  # a plain function: run in a worker thread
        self._run = run

    def _batch(self, jobs: Sequence[Job]) -> list[Any]:
        if len(self.sizes) < 100_000:
            self.sizes.append(len(jobs))
        out: list[Any] = []
        for job in jobs:
            try:
                out.append(self._run(job))
            except Exception as exc:  # the dispatcher raises it for this job only
                out.append(exc)
        return out

    async def __call__(self, job: Job) -> Any:
        return await self._call(job)


TENANT = "kyodo_tenant"  # scope["state"] key: the tenant SingleRowGate authenticated


class SingleRowGate:
    """In front of the BentoML single-row APIs (`paths`: path -> task), which lie outside the
    FastAPI app and its middleware: the same body limit while the body streams (BodyLimit),
    the key and subscription (401, 403) before the body is read, and BentoML's validation
    answer (400 `{"error", "detail"}`) rewritten as the product's 422 naming the field.
    The tenant goes to the API in scope["state"][TENANT]. `runtime` gives the service runtime
    (None while loading: 503)."""

    def __init__(self, app: ASGIApp, paths: dict[str, str], runtime: Callable[[], Any],
                 limits: Callable[[], ServingLimits]):
        self.app = app
        self.paths = paths
        self.runtime = runtime
        self._limited = BodyLimit(self._gated, limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths and scope["method"] == "POST":
            await self._limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _gated(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.runtime()
        try:
            if rt is None:
                raise HTTPException(503, NOT_LOADED)
            tenant = await authorized(Request(scope), rt, self.paths[scope["path"]])
            body = bytearray()
            while True:  # BodyLimit's receive: 413 past the limit, 408 when it stalls
                message = await receive()
                if message["type"] != "http.request":
                    return
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        except HTTPException as exc:
            await json_response(send, exc.status_code, {"error": exc.detail})
            return
        scope.setdefault("state", {})[TENANT] = tenant
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, _product_errors(send))


def _product_errors(send: Send) -> Send:
    """`send` with BentoML's 400 for an invalid body rewritten as the product's 422."""
    return rewrite_response(send, lambda start: start["status"] == 400,
                            lambda _status, body: (422, validation_error(body)))


def validation_error(raw: bytes) -> dict[str, Any]:
    """BentoML's `{"error": "n validation errors for ...", "detail": [pydantic errors]}` as
    the product's `{"error": "<field>: <message>", "errors": [{"field", "message"}]}`."""
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, list) or not detail:
        return {"error": raw.decode("utf-8", "replace") or "invalid request body"}
    errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
              for e in detail[:20]]
    return {"error": f"{errors[0]['field']}: {errors[0]['message']}", "errors": errors}
