"""The store's claim_screening part: review queues (queue, queue_item) and reviewer feedback.

Only pseudonyms are stored, never raw patient identifiers (a queue item's patient_id is
dropped). Reviewer feedback is the training label source of `kyodo retrain` (export_labels).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from serving.store.sqldb import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    queue_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, task TEXT NOT NULL, created REAL NOT NULL,
    month TEXT, claims INTEGER NOT NULL, capacity REAL NOT NULL, model_version TEXT
);
CREATE TABLE IF NOT EXISTS queue_item (
    queue_id TEXT NOT NULL REFERENCES queue(queue_id), rank INTEGER NOT NULL,
    claim_id TEXT NOT NULL, patient_pseudonym TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (queue_id, rank)
);
CREATE TABLE IF NOT EXISTS feedback (
    tenant TEXT NOT NULL, task TEXT NOT NULL, claim_id TEXT NOT NULL, ts REAL NOT NULL,
    error_confirmed INTEGER NOT NULL, error_type TEXT NOT NULL, recovered_points INTEGER NOT NULL,
    note TEXT NOT NULL, queue_id TEXT, model_version TEXT,
    PRIMARY KEY (tenant, task, claim_id)
);
CREATE INDEX IF NOT EXISTS queue_tenant ON queue(tenant, task, created);
"""
QUEUE_COLUMNS = ("queue_id", "created", "month", "claims", "capacity", "model_version")
FEEDBACK_COLUMNS = ("claim_id", "ts", "error_confirmed", "error_type", "recovered_points", "note",
                    "queue_id", "model_version")
_QUEUES_OF = "SELECT queue_id FROM queue WHERE tenant = ?"


class ClaimRecords:
    """Review queues and reviewer outcomes of one database (`db`: serving/store/sqldb.py)."""

    def __init__(self, db: Database):
        self.db = db

    def create(self) -> None:
        """Create the tables when missing."""
        self.db.script(SCHEMA)

    def save_queue(self, queue_id: str, tenant: str, task: str, month: str, claims: int,
                   capacity: float, model_version: str, items: Iterable[dict[str, Any]]) -> None:
        """Store a review queue and its ranked items in one transaction."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO queue VALUES (?,?,?,?,?,?,?,?)",
                         (queue_id, tenant, task, time.time(), month, claims, capacity,
                          model_version))
            conn.executemany(
                "INSERT INTO queue_item VALUES (?,?,?,?,?)",
                [(queue_id, it["rank"], it["claim_id"], it["patient_pseudonym"],
                  json.dumps({k: v for k, v in it.items() if k != "patient_id"},
                             ensure_ascii=False)) for it in items])

    def _rows(self, table: str, columns: tuple[str, ...], order: str, tenant: str, task: str,
              queue_id: str | None) -> list[dict[str, Any]]:
        """One tenant's rows of a table for a task (optionally of one queue), as dicts."""
        sql = f"SELECT {', '.join(columns)} FROM {table} WHERE tenant=? AND task=?"
        args: tuple = (tenant, task)
        if queue_id is not None:
            sql, args = sql + " AND queue_id=?", (*args, queue_id)
        with self.db.transaction() as conn:
            cur = conn.execute(f"{sql} ORDER BY {order} DESC", args)
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]

    def queues(self, tenant: str, task: str, queue_id: str | None = None,
               ) -> list[dict[str, Any]]:
        """A tenant's queues (or the one with queue_id), newest first."""
        return self._rows("queue", QUEUE_COLUMNS, "created", tenant, task, queue_id)

    def queue_items(self, tenant: str, queue_id: str) -> list[dict[str, Any]] | None:
        """Items of one of the tenant's queues; None when it is not the tenant's."""
        with self.db.transaction() as conn:
            own = conn.execute("SELECT 1 FROM queue WHERE queue_id=? AND tenant=?",
                               (queue_id, tenant)).fetchone()
            if own is None:
                return None
            cur = conn.execute("SELECT detail FROM queue_item WHERE queue_id=? ORDER BY rank",
                               (queue_id,))
            return [json.loads(d) for (d,) in cur.fetchall()]

    def save_feedback(self, tenant: str, task: str, items: list[dict[str, Any]]) -> int:
        """Upsert reviewer outcomes (the latest outcome per claim wins), all or nothing; on disk
        (fsynced) when this returns, since a reviewer's verdict cannot be recomputed."""
        with self.db.transaction(durable=True) as conn:
            conn.executemany(
                "INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(tenant, task, "
                "claim_id) DO UPDATE SET ts=excluded.ts, error_confirmed=excluded.error_confirmed,"
                " error_type=excluded.error_type, recovered_points=excluded.recovered_points, "
                "note=excluded.note, queue_id=excluded.queue_id, "
                "model_version=excluded.model_version",
                [(tenant, task, it["claim_id"], time.time(), int(it["error_confirmed"]),
                  it.get("error_type") or "", int(it.get("recovered_points") or 0),
                  it.get("note") or "", it.get("queue_id"), it.get("model_version"))
                 for it in items])
        return len(items)

    def feedback(self, tenant: str, task: str, queue_id: str | None = None,
                 ) -> list[dict[str, Any]]:
        """A tenant's recorded outcomes (optionally of one queue), newest first."""
        return self._rows("feedback", FEEDBACK_COLUMNS, "ts", tenant, task, queue_id)

    def export_labels(self, task: str, out: Path) -> dict[str, int]:
        """Write <tenant>.csv label files (claim_id, error_type, recoverable_points) into
        `out`; returns the number of labels per tenant."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT tenant, claim_id, error_confirmed, error_type, recovered_points "
                "FROM feedback WHERE task=? ORDER BY tenant, claim_id", (task,)).fetchall()
        by_tenant: dict[str, list[tuple]] = {}
        for tenant, claim, confirmed, etype, points in rows:
            label = (etype or "confirmed") if confirmed else ""
            by_tenant.setdefault(tenant, []).append((claim, label, points if confirmed else 0))
        out.mkdir(parents=True, exist_ok=True)
        for tenant, items in by_tenant.items():
            with (out / f"{tenant}.csv").open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["claim_id", "error_type", "recoverable_points"])
                writer.writerows(items)
        return {t: len(v) for t, v in by_tenant.items()}

    @staticmethod
    def delete_tenant(conn: Any, tenant: str, dry_run: bool) -> dict[str, int]:
        """Inside the caller's transaction: count (and unless `dry_run` delete) a tenant's
        queues, queue_items and feedback."""
        counts = {name: int(conn.execute(sql, (tenant,)).fetchone()[0]) for name, sql in (
            ("queues", "SELECT COUNT(*) FROM queue WHERE tenant = ?"),
            ("queue_items", f"SELECT COUNT(*) FROM queue_item WHERE queue_id IN ({_QUEUES_OF})"),
            ("feedback", "SELECT COUNT(*) FROM feedback WHERE tenant = ?"))}
        if not dry_run:
            conn.execute(f"DELETE FROM queue_item WHERE queue_id IN ({_QUEUES_OF})", (tenant,))
            for table in ("queue", "feedback"):
                conn.execute(f"DELETE FROM {table} WHERE tenant = ?", (tenant,))
        return counts
