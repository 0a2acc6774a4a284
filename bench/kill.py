"""Kill tests: reviewer feedback written in a steady stream while one worker, then the whole
service, is killed with SIGKILL; every acknowledged record must be in the store afterwards.

Used by bench/serving.py (the figures in reports/bench/serving.json) and by
tests/serving/test_kill_http.py (make test-slow).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serving.launcher import kill_all, served, worker_pids

FEEDBACK = "/v1/claim_screening/feedback"
INITIALISED = b"Service kyodo initialized"  # BentoML's log line when a worker has loaded


@dataclass
class Writers:
    """`streams` threads posting one feedback record each, in turn, to whatever URL `url`
    holds; `acked` maps every claim_id answered 200 to when (monotonic seconds) and by which
    URL; `failed` holds when each refused or failed write was given up, `errors` its error."""

    key: str
    streams: int = 4
    url: dict[str, str] = field(default_factory=dict)
    acked: dict[str, tuple[float, str]] = field(default_factory=dict)
    failed: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the streams."""
        for i in range(self.streams):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop and join the streams."""
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, stream: int) -> None:
        n = 0
        headers = {"Authorization": f"Bearer {self.key}"}
        while not self._stop.is_set():
            claim = f"KILL-{os.getpid()}-{stream}-{n}"
            n += 1
            body = {"items": [{"claim_id": claim, "error_confirmed": n % 2 == 0,
                               "recovered_points": n % 500, "note": "kill test"}]}
            base = self.url["base"]
            try:
                r = httpx.post(base + FEEDBACK, json=body, headers=headers, timeout=10)
                if r.status_code == 200 and r.json().get("recorded") == 1:
                    self.acked[claim] = (time.monotonic(), base)
                    continue
                error = f"HTTP {r.status_code}"
            except Exception as exc:  # a refused or reset connection while killed
                error = type(exc).__name__
            self.errors[error] = self.errors.get(error, 0) + 1
            self.failed.append(time.monotonic())
            time.sleep(0.05)

    def acked_by(self, base: str, timeout_s: float) -> float | None:
        """When the service at `base` first acknowledged a record (None: not in time)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            later = [a for a, url in list(self.acked.values()) if url == base]
            if later:
                return min(later)
            time.sleep(0.05)
        return None


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def kill_run(env: dict[str, str], log: Path, key: str, workers: int = 2,
             write_s: float = 3.0, timeout_s: float = 120) -> dict[str, Any]:
    """Write feedback for write_s, SIGKILL one worker, write on, SIGKILL the whole service
    (process group), start it again and write on; returns what was acknowledged, what the
    store holds afterwards and how long each recovery took (seconds).

    worker_recovery_s: from the kill until BentoML's arbiter has a replacement worker loaded;
    service_recovery_s: from the kill of the whole service until the first write acknowledged
    by the restarted one (restart issued at once, as a supervisor such as systemd would).
    """
    out: dict[str, Any] = {"workers": workers}
    writers = Writers(key)
    with served(env, log, workers=workers) as (url, proc):
        writers.url["base"] = url
        writers.start()
        time.sleep(write_s)
        pids = worker_pids(proc)
        loaded = log.read_bytes().count(INITIALISED)
        fails_before = len(writers.failed)
        t_kill = time.monotonic()
        os.kill(pids[0], signal.SIGKILL)
        replaced = _wait(lambda: log.read_bytes().count(INITIALISED) > loaded
                         and len(worker_pids(proc)) == workers, timeout_s)
        out["worker_recovery_s"] = time.monotonic() - t_kill if replaced else None
        out["writes_failed_during_worker_kill"] = len(writers.failed) - fails_before
        time.sleep(write_s)
        t_kill = time.monotonic()  # everything at once, as a power cut or the OOM killer would
        pids = worker_pids(proc)
        os.killpg(proc.pid, signal.SIGKILL)
        kill_all(pids)  # circus starts each worker in its own session
        proc.wait(30)
    with served(env, log, workers=workers, timeout_s=timeout_s) as (url, proc):
        writers.url["base"] = url
        first = writers.acked_by(url, timeout_s)
        out["service_recovery_s"] = first - t_kill if first is not None else None
        time.sleep(write_s)
        writers.stop()
        stored = httpx.get(url + FEEDBACK, headers={"Authorization": f"Bearer {key}"},
                           timeout=60).json()["items"]
    have = {item["claim_id"] for item in stored}
    out["acknowledged"] = len(writers.acked)
    out["lost"] = sorted(set(writers.acked) - have)
    out["writes_failed"] = len(writers.failed)
    out["write_errors"] = writers.errors
    return out
