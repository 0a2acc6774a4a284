"""BentoML's request timeout (`traffic.timeout`, a 504 when the app has not begun to answer in
time) with its timer cancelled when the request ends.

BentoML's TimeoutMiddleware (bentoml/_internal/server/http/traffic.py, 1.4) starts a
`loop.call_later(timeout, ...)` for every request and never cancels it, so each request's
timer stays in the worker's event loop for the whole timeout (600 s here), holding the
request's context: its OpenTelemetry spans (BentoML records them even with tracing off), the
waiter future and what they reference, 5-10 kB per request. The workers' RSS grew with every
request and never levelled off within the timeout: +123 MB over 24,150 requests of GET
/v1/models at concurrency 32 in 60 s (`python -m bench.serving memory`; bench/tail.py's
`memory` phase found the spans held by those timers). A cancelled timer is dropped from the
loop's heap (asyncio purges them once they are half of it), so the memory follows the
requests in flight instead of the requests of the last 10 minutes.

`install()` puts `RequestTimeout` where BentoML looks for its middleware when a worker builds
its app (after importing the service module, which calls it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTimeout:
    """ASGI middleware: a 504 `{"error": ...}` if the app has not started its answer within
    `timeout` seconds (BentoML's behaviour), the timer cancelled as soon as the request ends."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    @staticmethod
    def _time_out(waiter: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._time_out, waiter)

        async def sending(message: Message) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        answer = asyncio.ensure_future(self.app(scope, receive, sending))
        def ended(_: asyncio.Future[None]) -> None:
            if not waiter.done():  # it ended (or failed) without answering: awaited below
                waiter.set_result(None)

        answer.add_done_callback(ended)
        try:
            try:
                await waiter
            except TimeoutError:
                if answer.cancel():
                    await JSONResponse({"error": f"Not able to process the request in "
                                                 f"{self.timeout} seconds"},
                                       status_code=504)(scope, receive, send)
            else:
                await answer
        finally:
            timer.cancel()


def install() -> None:
    """Make BentoML build its timeout middleware from RequestTimeout in this process."""
    from bentoml._internal.server.http import traffic

    traffic.TimeoutMiddleware = RequestTimeout  # type: ignore[misc, assignment]
