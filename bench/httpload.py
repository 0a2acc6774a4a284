"""A small threaded HTTP load generator (the server comes from serving.launcher)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

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
