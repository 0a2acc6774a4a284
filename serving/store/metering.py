"""The store's metering part: one `usage` row per request (tenant, task, endpoint, rows, images,
compute time in ms, model version, HTTP status), written at most once per request_id, so a
retried write is never counted twice; billing months read it back (models/costs.py)."""

from __future__ import annotations

import time
from typing import Any

from serving.store.sqldb import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL, tenant TEXT NOT NULL, task TEXT NOT NULL, endpoint TEXT NOT NULL,
    rows INTEGER NOT NULL, images INTEGER NOT NULL DEFAULT 0, compute_ms REAL NOT NULL,
    model_version TEXT, status INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_tenant ON usage(tenant, task, ts);
"""
# after the additive migration that gave usage its request_id (exactly-once retries)
REQUEST_SCHEMA = """
CREATE UNIQUE INDEX IF NOT EXISTS usage_request ON usage(request_id);
CREATE INDEX IF NOT EXISTS usage_ts ON usage(ts);
"""
RECORD_FIELDS = ("ts", "tenant", "task", "endpoint", "rows", "images", "compute_ms",
                 "model_version", "status", "request_id")


class UsageLog:
    """The usage table of one database (`db`: serving/store/sqldb.py)."""

    def __init__(self, db: Database):
        self.db = db

    def create(self) -> None:
        """Create the table, or migrate one from before request_id (additive: a column)."""
        self.db.script(SCHEMA)
        if "request_id" not in self.db.columns("usage"):
            self.db.add_column("usage", "request_id TEXT")
        self.db.script(REQUEST_SCHEMA)

    @staticmethod
    def insert(conn: Any, rec: dict[str, Any]) -> None:
        """Write one request record (RECORD_FIELDS) inside the caller's transaction; a record
        whose request_id is already stored is ignored."""
        conn.execute(
            f"INSERT OR IGNORE INTO usage ({', '.join(RECORD_FIELDS)}) "
            f"VALUES ({','.join('?' * len(RECORD_FIELDS))})",
            tuple(rec[k] for k in RECORD_FIELDS))

    def record(self, tenant: str, task: str, endpoint: str, rows: int, compute_ms: float,
               model_version: str | None, status: int, images: int = 0) -> None:
        """Meter one request (no request_id: not protected against a retried write)."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO usage (ts, tenant, task, endpoint, rows, images, compute_ms, "
                "model_version, status) VALUES (?,?,?,?,?,?,?,?,?)",
                (time.time(), tenant, task, endpoint, rows, images, compute_ms, model_version,
                 status))

    def usage(self, tenant: str) -> list[dict[str, Any]]:
        """Totals per task and endpoint for one tenant: requests, rows, images, compute_ms."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "SELECT task, endpoint, COUNT(*), SUM(rows), SUM(images), SUM(compute_ms) "
                "FROM usage WHERE tenant=? GROUP BY task, endpoint ORDER BY task, endpoint",
                (tenant,))
            return [{"task": t, "endpoint": e, "requests": n, "rows": r, "images": i,
                     "compute_ms": round(c, 1)} for t, e, n, r, i, c in cur.fetchall()]

    def usage_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Billable usage (successful requests) per tenant and task with start <= ts < end
        (Unix seconds): requests, rows, images, compute_seconds."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "SELECT tenant, task, COUNT(*), SUM(rows), SUM(images), SUM(compute_ms) "
                "FROM usage WHERE ts >= ? AND ts < ? AND status < 400 GROUP BY tenant, task "
                "ORDER BY tenant, task", (start, end))
            return [{"tenant": t, "task": k, "requests": n, "rows": r, "images": i,
                     "compute_seconds": c / 1000} for t, k, n, r, i, c in cur.fetchall()]

    @staticmethod
    def count_tenant(conn: Any, tenant: str) -> int:
        """A tenant's usage rows (kept when its data is deleted: billing records)."""
        return int(conn.execute("SELECT COUNT(*) FROM usage WHERE tenant = ?",
                                (tenant,)).fetchone()[0])
