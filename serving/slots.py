"""Per-tenant slots for heavy requests, shared by every worker process on the host.

A tenant may have `limit` heavy requests (uploads: a month's claims, a roster, a care batch,
road photos) in flight at once, all workers together; one more is refused with a 429 and
Retry-After before its body is read, so one municipality's uploads cannot occupy every
worker while the others wait. Each slot is a lock file, `<directory>/<tenant>.<n>.lock`,
held with flock(LOCK_EX | LOCK_NB) for the request's duration: the kernel releases it when the
holder closes it or its process dies, so a killed worker never leaks a slot. The lock files
live under the service state directory, which all workers of one host share (several hosts:
each host counts its own).
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class TenantSlots:
    """At most `limit` concurrent holders per tenant across processes (Linux/macOS flock)."""

    def __init__(self, directory: Path, limit: int):
        self.directory = directory
        self.limit = limit
        directory.mkdir(parents=True, exist_ok=True)

    def acquire(self, tenant: str) -> int | None:
        """A held slot (an open file descriptor) for `tenant`, or None when all are taken."""
        name = _SAFE.sub("_", tenant)
        for n in range(self.limit):
            fd = os.open(self.directory / f"{name}.{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    @staticmethod
    def release(fd: int) -> None:
        """Give a slot back (closing the descriptor drops its lock)."""
        os.close(fd)
