"""Diagnostic service target: kyodo's service with an event-loop watchdog and a per-request log,
for finding where a slow request's time went (server or client, busy or waiting).

Serve it with `bentoml serve bench.stallwatch:Kyodo` (bench/tail.py does) and $KYODO_STALL_LOG
set to a file; every worker appends JSON lines to it:
- {"kind": "lag"}: the worker's event loop did not run a callback for >= 100 ms: when (wall
  clock), how long, what the worker's main thread did meanwhile (from /proc/self/task/<tid>/
  schedstat: ms on a CPU, ms runnable but waiting for one, the rest asleep or blocked), the
  process's major page faults meanwhile and the main thread's Python stacks sampled every
  20 ms during the stall (most frequent first);
- {"kind": "request"}: a request that took >= 200 ms inside the app, or was answered 413:
  its arrival (wall clock), ms until the app's first `receive`, body bytes received in how
  many messages, ms spent waiting in `receive` (all, longest), status, ms until the answer
  started and until it ended.
Not for production: the sampling thread costs CPU, and the log is unbounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api import app

LOG = Path(os.environ.get("KYODO_STALL_LOG", "/tmp/kyodo-stalls.jsonl"))
LAG_S = 0.1  # event-loop stalls logged from this long
SLOW_S = 0.2  # requests logged from this long inside the app


def _write(record: dict[str, Any]) -> None:
    with LOG.open("a", encoding="utf-8") as f:  # one short line per write: O_APPEND keeps lines
        f.write(json.dumps(record) + "\n")


def _schedstat(tid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of thread tid so far."""
    run, wait, _ = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
    return int(run) / 1e9, int(wait) / 1e9


def _majflt() -> int:
    """Major page faults of this process so far (a page read back from disk)."""
    return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[9])


def _stack(frame: Any) -> str:
    return " < ".join(f"{f.name}@{Path(f.filename).name}:{f.lineno}"
                      for f in reversed(traceback.extract_stack(frame)[-10:]))


def _watch(loop: asyncio.AbstractEventLoop, ident: int, tid: int) -> None:
    """Post a callback to the loop every 20 ms; while one is late, sample the main thread."""
    while not loop.is_closed():
        done = threading.Event()
        t0, wall, (run0, wait0), faults = (time.monotonic(), time.time(), _schedstat(tid),
                                           _majflt())
        try:
            loop.call_soon_threadsafe(done.set)
        except RuntimeError:  # the loop closed
            return
        stacks: Counter[str] = Counter()
        while not done.wait(0.02):
            if time.monotonic() - t0 >= LAG_S:
                frame = sys._current_frames().get(ident)
                if frame is not None:
                    stacks[_stack(frame)] += 1
        lag = time.monotonic() - t0
        if lag >= LAG_S:
            run1, wait1 = _schedstat(tid)
            _write({"kind": "lag", "pid": os.getpid(), "t": wall, "lag_ms": lag * 1000,
                    "on_cpu_ms": (run1 - run0) * 1000, "runnable_ms": (wait1 - wait0) * 1000,
                    "major_faults": _majflt() - faults,
                    "stacks": stacks.most_common(3)})
        time.sleep(0.02)


def _trace_memory(every_s: float = 10.0) -> None:
    """With KYODO_TRACEMALLOC=1: every `every_s`, the 8 allocation sites (5 frames) whose
    live Python memory grew most since the previous look, as a {"kind": "memory"} line."""
    import tracemalloc

    tracemalloc.start(5)
    before = tracemalloc.take_snapshot()
    while True:
        time.sleep(every_s)
        now = tracemalloc.take_snapshot()
        top = now.compare_to(before, "traceback")[:8]
        _write({"kind": "memory", "pid": os.getpid(), "t": time.time(),
                "traced_mb": tracemalloc.get_traced_memory()[0] / 1e6,
                "grew": [{"kb": d.size_diff / 1000, "count": d.count_diff,
                          "where": " < ".join(f"{Path(f.filename).name}:{f.lineno}"
                                              for f in reversed(d.traceback))}
                         for d in top]})
        before = now
        _write({"kind": "spans", "pid": os.getpid(), "t": time.time(), **_spans()})


def _spans() -> dict[str, Any]:
    """How many OpenTelemetry SDK spans are alive, and what refers to the oldest few."""
    import gc

    from opentelemetry.sdk.trace import Span

    spans = [o for o in gc.get_objects() if isinstance(o, Span)]
    holders: Counter[str] = Counter()
    for span in spans[:20]:
        for ref in gc.get_referrers(span):
            if ref is spans:
                continue
            kind = type(ref).__name__
            if isinstance(ref, dict):
                owners = [type(o).__name__ for o in gc.get_referrers(ref)
                          if o is not spans and not isinstance(o, list)][:2]
                kind = f"dict of {owners}"
            holders[kind] += 1
    chains = []
    for span in spans[:: max(1, len(spans) // 5)][:5]:  # what holds it, 8 levels up
        chain, obj, seen = [], span, {id(spans)}
        for _ in range(8):
            refs = [r for r in gc.get_referrers(obj) if id(r) not in seen
                    and type(r).__name__ not in ("list", "frame")]
            if not refs:
                break
            obj = refs[0]
            seen.add(id(obj))
            name = type(obj).__name__
            if hasattr(obj, "_callback") or name in ("TimerHandle", "Handle"):
                name += f"({getattr(obj, '_callback', None)!r:.80})"
            chain.append(name)
        chains.append(" <- ".join(chain))
    ended = sum(1 for s in spans if s.end_time is not None)
    return {"spans": len(spans), "ended": ended, "holders": holders.most_common(6),
            "chains": chains,
            "gc_counts": gc.get_count(), "gc_stats": gc.get_stats()[2]}


class Watch:
    """Starts the watchdog on the first request; logs slow and 413 requests."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started:
            self.started = True
            threading.Thread(target=_watch, daemon=True, name="stallwatch", args=(
                asyncio.get_running_loop(), threading.get_ident(), threading.get_native_id(),
            )).start()
            if os.environ.get("KYODO_TRACEMALLOC") == "1":
                threading.Thread(target=_trace_memory, daemon=True, name="memwatch").start()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, wall = time.monotonic(), time.time()
        seen: dict[str, Any] = {"bytes": 0, "first_receive_ms": None, "status": None,
                                "start_ms": None, "messages": 0, "waiting_ms": 0.0,
                                "longest_wait_ms": 0.0}

        async def receiving() -> Message:
            a = time.monotonic()
            message = await receive()
            waited = (time.monotonic() - a) * 1000  # for the body's next piece to be read
            seen["waiting_ms"] += waited
            seen["longest_wait_ms"] = max(seen["longest_wait_ms"], waited)
            seen["messages"] += 1
            if seen["first_receive_ms"] is None:
                seen["first_receive_ms"] = (time.monotonic() - t0) * 1000
            seen["bytes"] += len(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["start_ms"] = (time.monotonic() - t0) * 1000
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            took = time.monotonic() - t0
            if took >= SLOW_S or seen["status"] == 413:
                _write({"kind": "request", "pid": os.getpid(), "t": wall,
                        "path": scope["path"], "client_port": (scope.get("client") or
                                                               (None, None))[1],
                        "ms": took * 1000, **seen})


def _gc_pauses() -> None:
    """Log every full (generation 2) collection of this worker: how long, how many objects."""
    import gc

    started: dict[str, float] = {}

    def callback(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started["t"] = time.perf_counter()
        elif "t" in started:
            _write({"kind": "gc", "pid": os.getpid(), "t": time.time(),
                    "ms": (time.perf_counter() - started.pop("t")) * 1000,
                    "tracked": len(gc.get_objects(2)), "collected": info.get("collected")})

    gc.callbacks.append(callback)


app.add_middleware(Watch)
_gc_pauses()
from bentoml._internal.server.http import traffic as _bentoml_traffic  # noqa: E402

_ORIGINAL_TIMEOUT = _bentoml_traffic.TimeoutMiddleware
from serving.service import Kyodo  # noqa: E402  (after the middleware: the app is built lazily)

if os.environ.get("KYODO_BENTOML_TIMEOUT") == "original":  # BentoML's own: timers never cancelled
    _bentoml_traffic.TimeoutMiddleware = _ORIGINAL_TIMEOUT  # type: ignore[misc]

__all__ = ["Kyodo"]
