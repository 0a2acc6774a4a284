"""Concurrency over real HTTP (`bentoml serve`, two workers): the workers setting, the per-tenant
limit on heavy requests across workers (429 + Retry-After in the product's shape), and the
header and body deadlines that close slow connections (slowloris)."""

from __future__ import annotations

import multiprocessing
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from serving.launcher import served, worker_pids
from serving.slots import TenantSlots
from tests.serving.conftest import IYO

ITOSHIMA_KEY = b"Authorization: Bearer kyodo-demo-402303\r\n"
QUEUE = "/v1/claim_screening/queue"


@pytest.fixture(scope="module")
def small_root(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained workspace with two workers in platform.yaml, one heavy request per tenant
    and deadlines of a second or two."""
    root = tmp_path_factory.mktemp("conc")
    shutil.copytree(trained_root / "configs", root / "configs")
    # the champion pointer only: copying the live kyodo.db (and its -shm) would drop this
    # process's SQLite locks on it (POSIX locks go with any close of the file)
    (root / "state").mkdir()
    shutil.copy(trained_root / "state" / "champions.json", root / "state")
    platform = root / "configs" / "platform.yaml"
    cfg = yaml.safe_load(platform.read_text(encoding="utf-8"))
    cfg["serving"].update(workers=2, heavy_per_tenant=1, heavy_retry_after_s=7,
                          header_timeout_s=2, body_timeout_s=2, body_deadline_s=3)
    platform.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server(small_root: Path, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[tuple[str, list]]:
    """`bentoml serve` with the workspace's own workers setting (no KYODO_WORKERS)."""
    monkeypatch_module.delenv("KYODO_WORKERS", raising=False)
    with served({"KYODO_ROOT": str(small_root)}, small_root / "bentoml.log",
                workers=None) as (url, proc):
        yield url, worker_pids(proc)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def _read_all(s: socket.socket, limit_s: float = 20) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and the seconds it took."""
    t0, answer = time.monotonic(), b""
    s.settimeout(limit_s)
    while part := s.recv(65536):
        answer += part
    return answer, time.monotonic() - t0


def test_the_workers_setting_is_honoured(server: tuple[str, list]) -> None:
    url, pids = server
    assert len(pids) == 2, pids  # serving.workers: 2 in this workspace's platform.yaml
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_worker_count_env_wins_over_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.configs import ServingLimits
    from serving.service import worker_count

    monkeypatch.delenv("KYODO_WORKERS", raising=False)
    assert worker_count(ServingLimits()) == "cpu_count"
    assert worker_count(ServingLimits(workers=3)) == 3
    monkeypatch.setenv("KYODO_WORKERS", "5")
    assert worker_count(ServingLimits(workers=3)) == 5
    monkeypatch.setenv("KYODO_WORKERS", "0")
    with pytest.raises(ValueError, match="KYODO_WORKERS"):
        worker_count(ServingLimits())


@contextmanager
def _held_upload(url: str) -> Iterator[None]:
    """An upload whose body is still trickling in: it holds one of the tenant's heavy slots
    until the body deadline (3 s here) ends it or the block closes it."""
    stop = threading.Event()
    with _connect(url) as s:
        s.sendall(b"POST " + QUEUE.encode() + b" HTTP/1.1\r\nHost: x\r\n" + ITOSHIMA_KEY +
                  b"Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\nclaim_id,")

        def trickle() -> None:
            while not stop.wait(0.2):
                with suppress(OSError):
                    s.sendall(b"x")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def test_a_tenants_second_upload_is_a_429_on_every_worker(server: tuple[str, list]) -> None:
    url, _ = server
    with _held_upload(url):
        time.sleep(0.3)  # the first upload has its slot
        # several tries: the kernel hands connections to both workers
        answers = [httpx.post(f"{url}{QUEUE}", content=b"claim_id\n", timeout=30, headers={
            "Authorization": "Bearer kyodo-demo-402303", "Content-Type": "text/csv"})
            for _ in range(6)]
        other = httpx.post(f"{url}{QUEUE}", content=b"claim_id\n", timeout=30,
                           headers={**IYO, "Content-Type": "text/csv"})
    for r in answers:
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "7"
        assert "heavy_per_tenant" in r.json()["error"] and "件まで" in r.json()["error"]
    assert other.status_code != 429, other.text  # another municipality is not held back
    # the held upload's slot is free once the worker sees its connection close (not at once
    # on a busy machine): ask until it is, for up to 20 s
    deadline = time.monotonic() + 20
    while True:
        again = httpx.post(f"{url}{QUEUE}", content=b"claim_id\n", timeout=30, headers={
            "Authorization": "Bearer kyodo-demo-402303", "Content-Type": "text/csv"})
        if again.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert again.status_code not in (429, 500), again.text


def test_429_is_documented_on_upload_routes_only() -> None:
    from serving.api import app

    paths = app.openapi()["paths"]
    assert "429" in paths[QUEUE]["post"]["responses"]
    assert "429" not in paths["/v1/claim_screening/score"]["post"]["responses"]


def _hold_slot(directory: str, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    slots = TenantSlots(Path(directory), 1)
    assert slots.acquire("402303") is not None
    ready.set()
    time.sleep(60)


def test_slots_are_shared_by_processes_and_freed_when_one_dies(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_slot, args=(str(tmp_path), ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(60)
        slots = TenantSlots(tmp_path, 1)
        assert slots.acquire("402303") is None  # held by the other process
        other = slots.acquire("382108")
        assert other is not None  # per tenant
        slots.release(other)
    finally:
        holder.kill()  # killed, not finished: the kernel drops its lock
        holder.join(10)
    fd = slots.acquire("402303")
    assert fd is not None
    slots.release(fd)


def test_silent_and_slow_header_connections_are_closed(server: tuple[str, list]) -> None:
    url, _ = server
    silent = _connect(url)  # sends nothing at all
    slow = _connect(url)  # slowloris: headers that never finish
    slow.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
    for s in (silent, slow):
        with s:
            answer, took = _read_all(s)
            assert answer.split()[1] == b"408", answer
            assert b"header_timeout_s" in answer and took < 5


def _one_response(s: socket.socket) -> bytes:
    """One whole HTTP response (head + Content-Length body): a response may arrive in several
    TCP reads, and a leftover byte must not be taken for the next response."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += s.recv(65536)
    return data


def test_a_kept_alive_connection_serves_requests_then_closes_when_idle(
        server: tuple[str, list]) -> None:
    url, _ = server
    with _connect(url) as s:
        for _ in range(2):  # the deadline restarts after each response
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _one_response(s).startswith(b"HTTP/1.1 200")
            time.sleep(0.3)  # well inside the 2 s header deadline, also on a loaded CI machine
        _, took = _read_all(s)  # then idle: closed by the keep-alive or header deadline
        assert took < 5


def test_a_trickling_body_hits_the_body_deadline(server: tuple[str, list]) -> None:
    url, _ = server
    with _connect(url) as s:
        s.sendall(b"POST /v1/claim_screening/score HTTP/1.1\r\nHost: x\r\n" + ITOSHIMA_KEY +
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        t0, answer = time.monotonic(), b""
        s.settimeout(0.3)
        while b"body_deadline_s" not in answer and time.monotonic() - t0 < 10:
            s.sendall(b" ")  # one byte every 0.3 s: never stalls for body_timeout_s (2 s)
            try:
                answer += s.recv(65536)
            except TimeoutError:
                continue
    assert answer.split()[1] == b"408" and b"body_deadline_s" in answer
    assert time.monotonic() - t0 < 5


def test_kyodo_serve_workers_option_reaches_the_service(monkeypatch: pytest.MonkeyPatch,
                                                        trained_root: Path) -> None:
    from typer.testing import CliRunner

    from training import cli

    calls: list[dict] = []
    monkeypatch.setenv("KYODO_ROOT", str(trained_root))
    monkeypatch.delenv("KYODO_WORKERS", raising=False)
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, env: calls.append(env) or 0)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["serve", "--workers", "3"]).exit_code == 0
    assert runner.invoke(cli.app, ["serve"]).exit_code == 0
    assert calls[0]["KYODO_WORKERS"] == "3" and "KYODO_WORKERS" not in calls[1]
    assert runner.invoke(cli.app, ["serve", "--workers", "0"]).exit_code == 2  # min 1
