"""ASGI middleware in front of every route: the request body limit, enforced while the body
streams in (chunked bodies too) and before anything parses it, deadlines for each piece of a
body and for the whole body (a stalled or trickling body is a 408), the per-tenant limit on
heavy requests across workers (429), and /readyz with the state of every task. Header
deadlines (slowloris) sit below ASGI, in serving/connections.py.

Why not Content-Length alone: a chunked body has none, and it was read whole into memory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.configs import ServingLimits

MB = 1_000_000
# endpoints that take a month's CSV or a roster: bounded by serving.max_upload_mb
UPLOADS = ("/v1/claim_screening/queue", "/v1/checkup_nudge/outreach", "/v1/care_plan/batch")
ROAD = "/v1/road_damage/analyze"
HEAVY = (*UPLOADS, ROAD)  # counted against serving.heavy_per_tenant
# JSON endpoints with far smaller bodies than max_json_mb: refusing a hostile body after its
# first few hundred kB or MB instead of 16 MB frees the worker's event loop that much sooner
# (20 MB to /score took up to 1.23 s to refuse while another tenant scored on the worker)
SCORE = ("/v1/claim_screening/score", "/v1/checkup_nudge/score")  # serving.max_score_mb
ROW = ("/v1/claim_screening/score_claim", "/v1/checkup_nudge/score_resident",
       "/v1/care_plan/suggest", "/v1/care_plan/predict")  # one row: serving.max_row_kb


def body_limit(path: str, limits: ServingLimits) -> tuple[int, str]:
    """(bytes, what it is) allowed for a request body to this path: max_upload_mb for the
    uploads, the photos' own limit for road photos, and for JSON the smallest of max_json_mb
    and the path's own (max_score_mb for /score, max_row_kb for one-row bodies)."""
    if path in UPLOADS:
        return limits.max_upload_mb * MB, f"{limits.max_upload_mb} MB (serving.max_upload_mb)"
    if path == ROAD:
        from serving.road_damage import MAX_FILE_MB, MAX_FILES

        mb = MAX_FILES * MAX_FILE_MB + 1
        return mb * MB, f"{mb} MB ({MAX_FILES} photos of at most {MAX_FILE_MB} MB)"
    json_mb = limits.max_json_mb * MB, f"{limits.max_json_mb} MB (serving.max_json_mb)"
    if path in SCORE:
        return min(json_mb, (limits.max_score_mb * MB,
                             f"{limits.max_score_mb} MB (serving.max_score_mb)"))
    if path in ROW:
        return min(json_mb, (limits.max_row_kb * 1000,
                             f"{limits.max_row_kb} kB (serving.max_row_kb)"))
    return json_mb


class BodyTooLarge(HTTPException):
    """413 raised from `receive` once a body passes its limit (FastAPI re-raises it as is).

    The answer closes the connection (kept alive, the server would read the whole rest of the
    body, however large); the close lingers, reading the rest away for at most
    serving.linger_s and serving.linger_mb (serving/connections.py), so a client that sends
    its whole body before reading gets the 413 rather than a reset."""

    def __init__(self, what: str):
        super().__init__(413, f"送信データが上限 {what} を超えています。ファイルを分けるか小さく"
                              f"してください / request body larger than {what}; send a "
                              "smaller file or split it", headers={"Connection": "close"})


class BodyLimit:
    """Refuses a body over its path's limit: at once when Content-Length says so, else as soon
    as the streamed bytes pass it; the handler sees a BodyTooLarge (413) and nothing more."""

    def __init__(self, app: ASGIApp, limits: Callable[[], ServingLimits]):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits()
        limit, what = body_limit(scope["path"], limits)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await json_response(send, 413, {"error": BodyTooLarge(what).detail})
            return
        seen, done = 0, False
        deadline = time.monotonic() + limits.body_deadline_s

        async def limited() -> Message:
            nonlocal seen, done
            if done:  # after the body, receive waits for a disconnect: no deadline then
                return await receive()
            left = deadline - time.monotonic()
            try:  # asyncio.timeout, not wait_for: no task per piece of the body, so a large
                # body takes half the event-loop turns while other requests share the loop
                async with asyncio.timeout(max(0.0, min(limits.body_timeout_s, left))):
                    message = await receive()
            except TimeoutError:
                if left <= limits.body_timeout_s:
                    raise HTTPException(408, f"request body not complete after "
                                             f"{limits.body_deadline_s:g} s "
                                             "(serving.body_deadline_s)") from None
                raise HTTPException(408, f"request body stalled for {limits.body_timeout_s:g} s "
                                         "(serving.body_timeout_s)") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(what)
            done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, limited, send)


class HeavyLimit:
    """At most serving.heavy_per_tenant heavy requests (HEAVY paths) per tenant in flight,
    all worker processes together (serving/slots.py); one more is a 429 with Retry-After,
    answered before its body is read. Requests without a known key pass on to their route,
    which answers 401. `runtime` gives the service runtime (None while loading: no limit)."""

    def __init__(self, app: ASGIApp, runtime: Callable[[], Any]):
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.runtime() if scope["type"] == "http" and scope["path"] in HEAVY else None
        slots = getattr(rt, "slots", None)
        tenant = rt.tenant_for(_bearer(scope)) if slots is not None else None
        if tenant is None:
            await self.app(scope, receive, send)
            return
        slot = slots.acquire(tenant.code)
        if slot is None:
            limits = rt.platform.serving
            await json_response(send, 429, {"error": (
                f"{tenant.name} ({tenant.code}) already has {slots.limit} uploads in progress "
                f"(serving.heavy_per_tenant); retry in {limits.heavy_retry_after_s} s "
                f"(同時に処理できるアップロードは{slots.limit}件までです)")},
                headers=[(b"retry-after", str(limits.heavy_retry_after_s).encode())])
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release(slot)


class ReadyProbe:
    """Answers GET /readyz from the runtime's readiness (503 until ready, with the reason per
    task); BentoML's own /readyz would say 200 with no model loaded."""

    def __init__(self, app: ASGIApp, readiness: Callable[[], dict[str, Any] | None]):
        self.app = app
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/readyz":
            await self.app(scope, receive, send)
            return
        state = self.readiness() or {"ready": False, "tasks": {}, "degraded": [],
                                     "reason": "the service is still loading"}
        await json_response(send, 200 if state["ready"] else 503, state)


class ProductErrors:
    """Rewrites an error the server framework answers itself in plain text (BentoML's 404 for a
    path none of kyodo's routes can match, e.g. one with a line break) as `{"error": ...}`."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        def plain_error(start: Message) -> bool:
            return start["status"] >= 400 and not any(
                k == b"content-type" and b"json" in v for k, v in start.get("headers", ()))

        def as_json(status: int, body: bytes) -> tuple[int, dict[str, Any]]:
            return status, {"error": body.decode("utf-8", "replace").strip() or "error"}

        await self.app(scope, receive, rewrite_response(send, plain_error, as_json))


def rewrite_response(send: Send, held_when: Callable[[Message], bool],
                     rewrite: Callable[[int, bytes], tuple[int, dict[str, Any]]]) -> Send:
    """`send` that holds back a response whose start message satisfies `held_when`, collects
    its body and sends `rewrite(status, body)` as JSON instead; other responses pass through."""
    held: dict[str, Any] = {}

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and held_when(message):
            held["start"], held["body"] = message, b""
            return
        if "start" not in held:
            await send(message)
            return
        held["body"] += message.get("body", b"")
        if not message.get("more_body"):
            await json_response(send, *rewrite(held["start"]["status"], held["body"]))

    return sending


def bearer_token(header: str) -> str:
    """The key of an `Authorization: Bearer <key>` header's value ("" if it is not one)."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _bearer(scope: Scope) -> str:
    """The request's bearer key ("" without one)."""
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            return bearer_token(value.decode("latin-1"))
    return ""


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def json_response(send: Send, status: int, body: dict[str, Any],
                headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer `body` as JSON; a 413 or 429 also closes the connection (its body is unread:
    a lingering close, serving/connections.py)."""
    data = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"connection", b"close") if status in (413, 429) else (b"cache-control", b"no-store"),
        *headers]})
    await send({"type": "http.response.body", "body": data})
