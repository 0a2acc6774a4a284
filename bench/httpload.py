"""Small HTTP load generators (the server comes from serving.launcher).

`run_load`: threads, each on its own kept-alive httpx client. Simple, but on a small host the
client is part of what it measures: httpx spends ~1.5-2 ms of CPU per request and the 32
threads of one process queue for its GIL, so at concurrency 32 a request's measured latency
includes its thread's wait for the GIL (bench/serving.py measures both clients side by side).
`run_lean`: one asyncio thread, `concurrency` kept-alive connections speaking HTTP/1.1
directly (a fixed request, Content-Length answers): a few tenths of a millisecond of CPU per
request, and every connection is served in turn, so the latency is the server's and the
host's, not the client's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import numpy as np

from bench import percentile_ms

# One request on a kept-alive client; must return the response.
Send = Callable[[httpx.Client], httpx.Response]


@dataclass(frozen=True)
class Load:
    """Per-request latencies (seconds) and the wall time of one load run."""

    latencies: np.ndarray
    wall_s: float
    errors: int
    connects: int = -1  # TCP connections opened while timing (-1: not counted)
    done_at: np.ndarray = field(default_factory=lambda: np.empty(0))  # s after start

    def p(self, q: float) -> float:
        """q-th latency percentile in milliseconds."""
        return percentile_ms(self.latencies, q)

    @property
    def rps(self) -> float:
        """Completed requests per second over the run's wall time."""
        return len(self.latencies) / self.wall_s


def run_load(url: str, send: Send, requests: int, concurrency: int, headers: dict[str, str],
             max_seconds: float = float("inf"), warmup: int = 3) -> Load:
    """`requests` calls of `send` spread over `concurrency` threads, each on its own client;
    threads start no new request after max_seconds."""
    per = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    timings: list[list[float]] = [[] for _ in per]
    errors = [0] * concurrency
    failures: list[BaseException] = []
    start = threading.Barrier(concurrency + 1, timeout=120)

    def worker(i: int) -> None:
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                for _ in range(warmup):
                    send(client)
                start.wait()
                # the wait for the other threads may outlast the server's keep-alive
                # (serving.keep_alive_s): a request sent as it closes the idle connection is
                # reset, so one untimed request (retried once on a fresh connection) first
                try:
                    send(client)
                except httpx.TransportError:
                    send(client)
                deadline = time.perf_counter() + max_seconds
                for _ in range(per[i]):
                    if time.perf_counter() > deadline:
                        break
                    t0 = time.perf_counter()
                    ok = send(client).status_code == 200
                    timings[i].append(time.perf_counter() - t0)
                    errors[i] += not ok
        except BaseException as exc:  # surfaced in the caller's thread below
            failures.append(exc)
            start.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    with suppress(threading.BrokenBarrierError):  # a worker failed: reported below
        start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"load run failed: {failures[0]!r}") from failures[0]
    return Load(np.concatenate([np.asarray(t) for t in timings]), wall, sum(errors))


def check_server(url: str, plan: dict[str, Send], headers: dict[str, str]) -> None:
    """Every planned request answers 200 (and scoring returns one result) before timing."""
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for name, send in plan.items():
            response = send(client)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text[:500]}")
            if "score" in name and len(response.json()["results"]) != 1:
                raise RuntimeError(f"{name}: expected one result, got {response.text[:500]}")


@dataclass(frozen=True)
class Request:
    """One fixed HTTP/1.1 request for run_lean: method, path, body, extra headers."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self, host: str, headers: dict[str, str]) -> bytes:
        """The request's bytes on the wire (Content-Length always set; keep-alive)."""
        head = {"Host": host, **headers, **self.headers, "Content-Length": str(len(self.body))}
        return (f"{self.method} {self.path} HTTP/1.1\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in head.items())
                + "\r\n").encode("latin-1") + self.body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    raw: bytes) -> tuple[int, bool]:
    """Send `raw`, read one Content-Length response; (status, whether the server closes)."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, close = None, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    if length is None:
        raise RuntimeError(f"response without Content-Length: {head[:300]!r}")
    await reader.readexactly(length)
    return status, close


def run_lean(url: str, request: Request, concurrency: int, headers: dict[str, str],
             seconds: float, warmup: int = 3) -> Load:
    """`concurrency` kept-alive connections, each sending `request` again as soon as its
    answer is read, for `seconds` after `warmup` requests each; connections the server closes
    are reopened (counted in Load.connects)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = request.raw(f"{host}:{port}", headers)

    async def main() -> Load:
        latencies: list[float] = []
        done_at: list[float] = []
        errors, connects = 0, 0
        conns = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
        for reader, writer in conns:
            for _ in range(warmup):
                status, close = await _exchange(reader, writer, raw)
                if status != 200 or close:
                    raise RuntimeError(f"{request.method} {request.path}: HTTP {status}")
        t0 = time.perf_counter()
        end = t0 + seconds

        async def worker(i: int) -> None:
            nonlocal errors, connects
            reader, writer = conns[i]
            while time.perf_counter() < end:
                a = time.perf_counter()
                status, close = await _exchange(reader, writer, raw)
                b = time.perf_counter()
                latencies.append(b - a)
                done_at.append(b - t0)
                errors += status != 200
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    connects += 1
            conns[i] = (reader, writer)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        wall = time.perf_counter() - t0
        for _, writer in conns:
            writer.close()
        return Load(np.asarray(latencies), wall, errors, connects, np.asarray(done_at))

    return asyncio.run(main())
