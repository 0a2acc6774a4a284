"""Exact metering: one record per request, written once, kept and retried when the store fails.

A prediction never fails because its meter could not be written: the record waits in an
in-process queue and is written by the next request or a timer. Each record carries a
request_id the store writes at most once, so a retry of a write that did land is not counted
twice.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("kyodo.metering")
# a record the store rejects for what it is (not for the store's state): retrying cannot help,
# and at the head of the queue it would hold back every record behind it
PERMANENT = (TypeError, ValueError, KeyError)


def request_record(tenant: str, task: str, endpoint: str, box: dict[str, Any],
                   seconds: float, model_version: str | None) -> dict[str, Any]:
    """The usage + audit record of one finished request (box: what the handler filled in)."""
    return {"request_id": uuid.uuid4().hex, "ts": time.time(), "tenant": tenant, "task": task,
            "endpoint": endpoint, "rows": int(box.get("rows") or 0),
            "images": int(box.get("images") or 0), "compute_ms": seconds * 1000,
            "model_version": model_version, "status": int(box.get("status") or 200),
            "subjects": list(box.get("subjects") or []),
            "summary": json.loads(json.dumps(box.get("summary") or {}, default=_plain)),
            "drift": box.get("drift")}


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers; anything else JSON cannot hold as its text."""
    return value.item() if hasattr(value, "item") else str(value)


class Meter:
    """Writes request records through `write`; failed ones are queued and retried in order."""

    def __init__(self, write: Callable[[dict[str, Any]], None], limit: int = 100_000,
                 retry_s: float = 1.0):
        self._write = write
        self.limit = limit
        self.retry_s = retry_s
        self.pending: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        atexit.register(self.flush)  # a clean shutdown writes what is still queued

    def record(self, rec: dict[str, Any]) -> None:
        """Write a record now, or keep it for retry; never raises."""
        if self.pending:
            self.flush()
        try:
            self._write(rec)
        except PERMANENT:
            log.exception("meter record %s cannot be written; dropped", rec["request_id"])
            self.dropped += 1
        except Exception:  # the prediction matters more than its meter: keep and retry
            log.exception("meter write failed for request %s (tenant %s, task %s); will retry",
                          rec["request_id"], rec["tenant"], rec["task"])
            self._keep(rec)

    def _keep(self, rec: dict[str, Any]) -> None:
        with self._lock:
            if len(self.pending) >= self.limit:
                self.pending.popleft()
                self.dropped += 1
                log.error("meter retry queue full (%d): dropped the oldest record", self.limit)
            self.pending.append(rec)
            self._arm()

    def _arm(self) -> None:
        """Schedule a retry unless one is already scheduled (called under the lock)."""
        if self._timer is None or not self._timer.is_alive():
            self._timer = threading.Timer(self.retry_s, self._retry)
            self._timer.daemon = True
            self._timer.start()

    def _retry(self) -> None:
        self.flush()
        with self._lock:
            if self.pending:
                self._timer = None
                self._arm()

    def flush(self) -> int:
        """Write queued records oldest first until one fails; returns how many were written."""
        if not self._lock.acquire(blocking=False):
            return 0  # another thread is flushing
        written = 0
        try:
            while self.pending:
                try:
                    self._write(self.pending[0])
                    written += 1
                except PERMANENT:
                    log.exception("meter record cannot be written; dropped")
                    self.dropped += 1
                except Exception as exc:
                    log.warning("meter retry failed (%s); %d records pending", exc,
                                len(self.pending))
                    break
                self.pending.popleft()
        finally:
            self._lock.release()
        if written:
            log.info("meter retry wrote %d queued records", written)
        return written
