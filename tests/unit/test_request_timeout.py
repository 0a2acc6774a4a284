"""serving/traffic.py: BentoML's request timeout with its timer cancelled when the request
ends (BentoML's own kept every request's timer, and the request's context with it, in the
event loop for the whole timeout: the workers' memory grew with every request)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from serving.traffic import RequestTimeout


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _requests(middleware: Any, n: int) -> tuple[int, list[dict[str, Any]]]:
    """n requests through the middleware; (timers still pending, messages sent)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for _ in range(n):
        await middleware({"type": "http"}, receive, send)
    loop = asyncio.get_running_loop()
    return sum(not h.cancelled() for h in loop._scheduled), sent  # type: ignore[attr-defined]


def test_no_timer_outlives_its_request() -> None:
    kept, sent = asyncio.run(_requests(RequestTimeout(_ok, timeout=600), 200))
    assert kept == 0 and [m["status"] for m in sent[::2]] == [200] * 200
    # BentoML's own keeps one per request for 600 s (what this module replaces)
    kept, _ = asyncio.run(_requests(TimeoutMiddleware(_ok, timeout=600), 200))
    assert kept == 200


def test_a_slow_answer_is_still_a_504_in_the_product_shape() -> None:
    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(5)

    _, sent = asyncio.run(_requests(RequestTimeout(slow, timeout=0.05), 1))
    assert sent[0]["status"] == 504
    assert "0.05 seconds" in json.loads(sent[1]["body"])["error"]


def test_an_app_that_ends_without_answering_is_not_awaited_for_the_timeout() -> None:
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await _requests(RequestTimeout(silent, timeout=30), 1)
        return loop.time() - t0

    assert asyncio.run(timed()) < 5
