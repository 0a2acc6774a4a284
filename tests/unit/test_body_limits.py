"""Per-endpoint body limits (serving/guard.py): one-row and /score JSON bodies are refused far
sooner than max_json_mb, while the body streams in, in the product's error shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import HTTPException

from models.configs import ServingLimits
from serving.guard import MB, ROW, SCORE, UPLOADS, BodyLimit, body_limit


def test_each_kind_of_endpoint_has_its_own_limit() -> None:
    limits = ServingLimits()  # max_json_mb 16, max_score_mb 8, max_row_kb 256
    assert body_limit("/v1/claim_screening/score", limits) == (
        8 * MB, "8 MB (serving.max_score_mb)")
    assert body_limit("/v1/checkup_nudge/score_resident", limits) == (
        256_000, "256 kB (serving.max_row_kb)")
    assert body_limit("/v1/claim_screening/feedback", limits)[1].endswith("(serving.max_json_mb)")
    assert body_limit(UPLOADS[0], limits)[0] == 200 * MB
    # the smaller of the path's own and max_json_mb: a workspace that lowers max_json_mb keeps it
    small = ServingLimits(max_json_mb=1)
    assert body_limit(SCORE[0], small) == (MB, "1 MB (serving.max_json_mb)")
    assert body_limit(ROW[0], small)[0] == 256_000


def test_the_limits_fit_the_largest_valid_bodies() -> None:
    """10,000 claims (bounds.MAX_SCORE) of the example's 5 lines, and one claim of
    bounds.MAX_LINES lines, fit their endpoints' limits."""
    from serving.bounds import MAX_LINES, MAX_SCORE
    from serving.claim_screening import EXAMPLE_CLAIM

    limits = ServingLimits()
    many = json.dumps({"claims": [EXAMPLE_CLAIM] * MAX_SCORE, "explain": False}).encode()
    assert len(many) < body_limit("/v1/claim_screening/score", limits)[0]
    line = {"line_kind": "drug", "code": "622421201", "count": 12, "days": 90, "points": 18200}
    long_claim = json.dumps({**EXAMPLE_CLAIM, "lines": [line] * MAX_LINES}).encode()
    assert len(long_claim) < body_limit("/v1/claim_screening/score_claim", limits)[0]


def _drive(path: str, chunks: list[bytes]) -> tuple[int, list[dict[str, Any]]]:
    """Bytes the app read before BodyLimit stopped it, and what was sent to the client."""
    pieces = iter(chunks)
    sent: list[dict[str, Any]] = []
    read = 0

    async def receive() -> dict[str, Any]:
        body = next(pieces, b"")
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, recv: Any, snd: Any) -> None:
        nonlocal read
        while True:
            message = await recv()
            read += len(message["body"])

    scope = {"type": "http", "path": path, "headers": []}
    guard = BodyLimit(app, ServingLimits)
    with pytest.raises(HTTPException) as caught:
        asyncio.run(guard(scope, receive, send))
    assert caught.value.status_code == 413
    assert "serving.max_row_kb" in caught.value.detail or "serving.max_score_mb" in (
        caught.value.detail)
    return read, sent


@pytest.mark.parametrize(("path", "limit"), [("/v1/claim_screening/score_claim", 256_000),
                                             ("/v1/claim_screening/score", 8 * MB)])
def test_a_chunked_body_stops_at_the_path_limit(path: str, limit: int) -> None:
    chunk = b"1," * 32_768  # 64 kB pieces of a 20 MB body without Content-Length
    read, _ = _drive(path, [chunk] * (20 * MB // len(chunk)))
    assert read <= limit  # the piece that crossed the limit is never handed to the app


def test_a_declared_length_over_the_path_limit_is_answered_at_once() -> None:
    sent: list[dict[str, Any]] = []

    async def app(*_: Any) -> None:
        raise AssertionError("the route must not run")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body must not be read")

    scope = {"type": "http", "path": "/v1/care_plan/suggest",
             "headers": [(b"content-length", b"300000")]}
    asyncio.run(BodyLimit(app, ServingLimits)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert "max_row_kb" in json.loads(sent[1]["body"])["error"]
