"""Durable service records in SQLite (WAL), or PostgreSQL when KYODO_DATABASE_URL is set
(serving/store/sqldb.py): usage metering, review queues, reviewer feedback, audit trail. Files
(road photos and overlays) go to the file store (serving/store/files.py), the database keeps
their metadata.

Only pseudonyms are stored, never raw patient identifiers. Every write is one transaction.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from models.drift import merge_counts
from serving.store.files import FileStore, open_files
from serving.store.road import RoadStore
from serving.store.sqldb import open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL, tenant TEXT NOT NULL, task TEXT NOT NULL, endpoint TEXT NOT NULL,
    rows INTEGER NOT NULL, images INTEGER NOT NULL DEFAULT 0, compute_ms REAL NOT NULL,
    model_version TEXT, status INTEGER NOT NULL
);
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
CREATE INDEX IF NOT EXISTS usage_tenant ON usage(tenant, task, ts);
CREATE INDEX IF NOT EXISTS queue_tenant ON queue(tenant, task, created);
"""

QUEUE_COLUMNS = ("queue_id", "created", "month", "claims", "capacity", "model_version")
OPS_SCHEMA = """
CREATE UNIQUE INDEX IF NOT EXISTS usage_request ON usage(request_id);
CREATE INDEX IF NOT EXISTS usage_ts ON usage(ts);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT UNIQUE, ts REAL NOT NULL,
    tenant TEXT NOT NULL, task TEXT NOT NULL, endpoint TEXT NOT NULL, model_version TEXT,
    status INTEGER NOT NULL, rows INTEGER NOT NULL, subjects TEXT NOT NULL, summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit(tenant, ts);
CREATE TABLE IF NOT EXISTS drift (
    request_id TEXT PRIMARY KEY, ts REAL NOT NULL, tenant TEXT NOT NULL, task TEXT NOT NULL,
    model_version TEXT, counts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drift_tenant ON drift(task, model_version, tenant, ts);
"""
AUDIT_COLUMNS = ("request_id", "ts", "task", "endpoint", "model_version", "status", "rows",
                 "subjects", "summary")
FEEDBACK_COLUMNS = ("claim_id", "ts", "error_confirmed", "error_type", "recovered_points", "note",
                    "queue_id", "model_version")


class Store(RoadStore):
    """Thread-safe access to the service database (SQLite: one connection per thread;
    PostgreSQL at url, default $KYODO_DATABASE_URL: a pool) and its file store (default:
    $KYODO_FILE_ROOT, else the folder `files` next to the SQLite file)."""

    def __init__(self, path: str | Path, url: str | None = None,
                 files: FileStore | None = None):
        self.path = Path(path)
        self.db = open_database(self.path, url)
        self.files = files if files is not None else open_files(self.path.parent / "files")
        self.db.script(SCHEMA)
        self._migrate_operations()

    def _conn(self, durable: bool = False) -> Any:
        """A transaction (context manager) yielding a connection with execute/executemany;
        `durable`: fsynced before it returns (see SQLiteDB.transaction)."""
        return self.db.transaction(durable)

    def record_usage(self, tenant: str, task: str, endpoint: str, rows: int, compute_ms: float,
                     model_version: str | None, status: int, images: int = 0) -> None:
        """Meter one request."""
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO usage (ts, tenant, task, endpoint, rows, images, compute_ms, "
                "model_version, status) VALUES (?,?,?,?,?,?,?,?,?)",
                (time.time(), tenant, task, endpoint, rows, images, compute_ms, model_version,
                 status))

    def usage(self, tenant: str) -> list[dict[str, Any]]:
        """Totals per task and endpoint for one tenant."""
        with self._conn() as conn:
            cur = conn.execute(
                "SELECT task, endpoint, COUNT(*), SUM(rows), SUM(images), SUM(compute_ms) "
                "FROM usage WHERE tenant=? GROUP BY task, endpoint ORDER BY task, endpoint",
                (tenant,))
            return [{"task": t, "endpoint": e, "requests": n, "rows": r, "images": i,
                     "compute_ms": round(c, 1)} for t, e, n, r, i, c in cur.fetchall()]

    def save_queue(self, queue_id: str, tenant: str, task: str, month: str, claims: int,
                   capacity: float, model_version: str, items: Iterable[dict[str, Any]]) -> None:
        """Store a review queue and its ranked items in one transaction."""
        with self._conn() as conn:
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
        with self._conn() as conn:
            cur = conn.execute(f"{sql} ORDER BY {order} DESC", args)
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]

    def queues(self, tenant: str, task: str, queue_id: str | None = None,
               ) -> list[dict[str, Any]]:
        """A tenant's queues (or the one with queue_id), newest first."""
        return self._rows("queue", QUEUE_COLUMNS, "created", tenant, task, queue_id)

    def queue_items(self, tenant: str, queue_id: str) -> list[dict[str, Any]] | None:
        """Items of one of the tenant's queues; None when it is not the tenant's."""
        with self._conn() as conn:
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
        with self._conn(durable=True) as conn:
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
        """Write <tenant>.csv label files (claim_id, error_type, recoverable_points)."""
        with self._conn() as conn:
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

    # ---- platform operations: exactly-once metering, billing months, audit trail ----

    def _migrate_operations(self) -> None:
        """Additive migration: usage.request_id (exactly-once retries) and the audit table."""
        if "request_id" not in self.db.columns("usage"):
            self.db.add_column("usage", "request_id TEXT")
        self.db.script(OPS_SCHEMA)

    def record_request(self, rec: dict[str, Any]) -> None:
        """Meter one request and write its audit record in one transaction; a retried record
        (same request_id) is ignored, so a request is never counted twice."""
        with self._conn() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO usage (ts, tenant, task, endpoint, rows, images, "
                "compute_ms, model_version, status, request_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                tuple(rec[k] for k in ("ts", "tenant", "task", "endpoint", "rows", "images",
                                       "compute_ms", "model_version", "status", "request_id")))
            conn.execute(
                "INSERT OR IGNORE INTO audit (request_id, ts, tenant, task, endpoint, "
                "model_version, status, rows, subjects, summary) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (rec["request_id"], rec["ts"], rec["tenant"], rec["task"], rec["endpoint"],
                 rec["model_version"], rec["status"], rec["rows"],
                 json.dumps(rec.get("subjects") or [], ensure_ascii=False),
                 json.dumps(rec.get("summary") or {}, ensure_ascii=False)))
            if rec.get("drift"):
                conn.execute(
                    "INSERT OR IGNORE INTO drift (request_id, ts, tenant, task, model_version, "
                    "counts) VALUES (?,?,?,?,?,?)",
                    (rec["request_id"], rec["ts"], rec["tenant"], rec["task"],
                     rec["model_version"], json.dumps(rec["drift"])))

    def usage_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Billable usage (successful requests) per tenant and task with start <= ts < end."""
        with self._conn() as conn:
            cur = conn.execute(
                "SELECT tenant, task, COUNT(*), SUM(rows), SUM(images), SUM(compute_ms) "
                "FROM usage WHERE ts >= ? AND ts < ? AND status < 400 GROUP BY tenant, task "
                "ORDER BY tenant, task", (start, end))
            return [{"tenant": t, "task": k, "requests": n, "rows": r, "images": i,
                     "compute_seconds": c / 1000} for t, k, n, r, i, c in cur.fetchall()]

    def audit(self, tenant: str, start: float | None = None, end: float | None = None,
              subject: str | None = None, model_version: str | None = None,
              task: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """A tenant's audit trail, newest first, filtered by time, subject, version, task."""
        sql, args = [f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit WHERE tenant=?"], [tenant]
        for clause, value in (("ts >= ?", start), ("ts < ?", end),
                              ("model_version = ?", model_version), ("task = ?", task),
                              ("EXISTS (SELECT 1 FROM json_each(audit.subjects) "
                               "WHERE json_each.value = ?)", subject)):
            if value is not None:
                sql.append(clause)
                args.append(value)
        with self._conn() as conn:
            cur = conn.execute(" AND ".join(sql) + " ORDER BY ts DESC, id DESC LIMIT ?",
                               (*args, limit))
            rows = [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["subjects"], r["summary"] = json.loads(r["subjects"]), json.loads(r["summary"])
        return rows

    def purge_audit(self, before: float) -> int:
        """Delete audit (and drift) records older than `before` (Unix seconds); returns how
        many audit records."""
        with self._conn() as conn:
            conn.execute("DELETE FROM drift WHERE ts < ?", (before,))
            return conn.execute("DELETE FROM audit WHERE ts < ?", (before,)).rowcount

    def drift_tenants(self, task: str, model_version: str, since: float) -> list[str]:
        """Tenants with drift counts for this model version since `since`."""
        with self._conn() as conn:
            cur = conn.execute("SELECT DISTINCT tenant FROM drift WHERE task=? AND "
                               "model_version=? AND ts >= ? ORDER BY tenant",
                               (task, model_version, since))
            return [t for (t,) in cur.fetchall()]

    def drift_counts(self, tenant: str, task: str, model_version: str, since: float,
                     ) -> dict[str, list[int]]:
        """Bin counts per feature summed over a tenant's requests to one model version."""
        with self._conn() as conn:
            cur = conn.execute("SELECT counts FROM drift WHERE tenant=? AND task=? AND "
                               "model_version=? AND ts >= ?", (tenant, task, model_version, since))
            rows = [json.loads(c) for (c,) in cur.fetchall()]
        total: dict[str, list[int]] = {}
        for counts in rows:
            merge_counts(total, counts)
        return total


    # ---- deleting one municipality's records on request ----

    def delete_tenant(self, tenant: str, dry_run: bool = False) -> dict[str, int]:
        """Delete everything the service holds about one tenant except its usage (metering)
        records: review queues and their items, feedback, audit trail, drift counts, road
        batches with their photos, overlays and corrections. Returns counts per kind (with
        `bytes` of photos and overlays, and `usage_kept`); `dry_run` deletes nothing.

        Usage rows are billing records (requests, rows, images, compute time per task and
        endpoint; no resident, patient or photo data): the shared costs already billed from them
        must stay reproducible for the accounts (地方自治法: records kept for the audit of
        accounts), so they are kept and `kyodo audit purge` does not touch them either.
        """
        road = self.delete_road(tenant, dry_run=dry_run)
        queues = "SELECT queue_id FROM queue WHERE tenant = ?"
        with self._conn() as conn:
            counts = {name: conn.execute(sql, (tenant,)).fetchone()[0] for name, sql in (
                ("queues", "SELECT COUNT(*) FROM queue WHERE tenant = ?"),
                ("queue_items", f"SELECT COUNT(*) FROM queue_item WHERE queue_id IN ({queues})"),
                ("feedback", "SELECT COUNT(*) FROM feedback WHERE tenant = ?"),
                ("audit", "SELECT COUNT(*) FROM audit WHERE tenant = ?"),
                ("drift", "SELECT COUNT(*) FROM drift WHERE tenant = ?"),
                ("usage_kept", "SELECT COUNT(*) FROM usage WHERE tenant = ?"))}
            if not dry_run:
                conn.execute(f"DELETE FROM queue_item WHERE queue_id IN ({queues})", (tenant,))
                for table in ("queue", "feedback", "audit", "drift"):
                    conn.execute(f"DELETE FROM {table} WHERE tenant = ?", (tenant,))
        return {**counts, **{f"road_{k}": v for k, v in road.items() if k != "bytes"},
                "bytes": road["bytes"]}
