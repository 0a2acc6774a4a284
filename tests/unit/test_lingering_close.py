"""How a refused body's connection ends (serving/connections.py): the 413 in the product's
shape, then a half-close while the rest of the body is read and thrown away (RFC 9112 9.6), so
a client that sends its whole body before reading gets the answer and a clean end (FIN), not
a reset; bounded by serving.linger_mb and serving.linger_s. uvicorn in this process on
serving.api's app (no models: the body limit answers before any route needs one)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from serving import connections
from serving.api import app
from serving.launcher import free_port

PATH = "/v1/claim_screening/score_claim"  # one row: serving.max_row_kb (256 kB) by default
PIECE = b" " * 65_536


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", http=connections.HeaderDeadlineProtocol)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    yield "127.0.0.1", port
    srv.should_exit = True
    thread.join(10)


def _post_chunked(addr: tuple[str, int], pieces: int, then_wait: bool = False,
                  ) -> tuple[int | None, str, bytes]:
    """Send a chunked body of `pieces` 64 kB pieces before reading, as httpx does (or, with
    then_wait, stop sending after them without ending the body); (how many pieces went out
    before an error or None, how the connection ended, the bytes read)."""
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        sent: int | None = None
        try:
            for i in range(pieces):
                sent = i
                s.sendall(b"10000\r\n" + PIECE + b"\r\n")
            if not then_wait:
                s.sendall(b"0\r\n\r\n")
            sent = None
        except OSError:
            pass
        data, end = b"", "FIN"
        try:
            while part := s.recv(65_536):
                data += part
        except OSError as exc:
            end = type(exc).__name__
    return sent, end, data


def _answer(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_refused_chunked_body_gets_its_413_and_a_clean_close(server: tuple[str, int]) -> None:
    # 1 MB against 256 kB: the server answers after 256 kB and reads the rest away
    failed_at, end, data = _post_chunked(server, 16)
    assert failed_at is None, "the client could not send its whole body"
    status, answer = _answer(data)
    assert status == 413 and "256 kB (serving.max_row_kb)" in answer["error"], answer
    assert b"connection: close" in data.lower()
    assert end == "FIN"  # not a reset


def test_lingering_stops_at_linger_mb(server: tuple[str, int],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connections._settings, "linger_mb", 1)
    # 26 MB, far past 256 kB + 1 MB; the client may get ahead of the server by its send buffer,
    # the server's receive buffer and one 4 MB linger read (~120 pieces when the server thread
    # stalls 50 ms or more on a busy machine: CI saw 108), and a server that lingered up to the
    # default 64 MB would take all 400
    failed_at, _, _ = _post_chunked(server, 400)
    assert failed_at is not None and failed_at < 250, "the server read on past linger_mb"


def test_lingering_stops_after_linger_s(server: tuple[str, int],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connections._settings, "linger_s", 0.5)
    t0 = time.monotonic()
    failed_at, end, data = _post_chunked(server, 8, then_wait=True)  # then silence
    assert failed_at is None and _answer(data)[0] == 413
    assert end == "FIN" and time.monotonic() - t0 < 5  # closed after linger_s, not kept open
