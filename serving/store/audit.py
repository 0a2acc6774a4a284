"""The store's audit part: the prediction audit trail (one record per request: who, which
model version, which subjects, a summary) and the drift counts of each request's inputs and
scores, with the PSI report that compares them with a champion's reference bins."""

from __future__ import annotations

import json
import time
from typing import Any

from models import drift
from serving.store.sqldb import Database

SCHEMA = """
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
# task -> (champion model version, its reference bins: drift.json written at export)
References = dict[str, tuple[str, dict[str, Any]]]


class AuditTrail:
    """The audit and drift tables of one database (`db`: serving/store/sqldb.py)."""

    def __init__(self, db: Database):
        self.db = db

    def create(self) -> None:
        """Create the tables when missing."""
        self.db.script(SCHEMA)

    @staticmethod
    def insert(conn: Any, rec: dict[str, Any]) -> None:
        """Write a request's audit record (and its drift counts, rec["drift"], if any) inside
        the caller's transaction; a request_id already stored is ignored."""
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

    def records(self, tenant: str, start: float | None = None, end: float | None = None,
                subject: str | None = None, model_version: str | None = None,
                task: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """A tenant's audit trail, newest first, filtered by time (Unix seconds, start <= ts <
        end), subject (a pseudonym in the record's subjects), model version and task."""
        sql = [f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit WHERE tenant=?"]
        args: list[Any] = [tenant]
        for clause, value in (("ts >= ?", start), ("ts < ?", end),
                              ("model_version = ?", model_version), ("task = ?", task),
                              ("EXISTS (SELECT 1 FROM json_each(audit.subjects) "
                               "WHERE json_each.value = ?)", subject)):
            if value is not None:
                sql.append(clause)
                args.append(value)
        with self.db.transaction() as conn:
            cur = conn.execute(" AND ".join(sql) + " ORDER BY ts DESC, id DESC LIMIT ?",
                               (*args, limit))
            rows = [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["subjects"], r["summary"] = json.loads(r["subjects"]), json.loads(r["summary"])
        return rows

    def purge(self, before: float) -> int:
        """Delete audit (and drift) records older than `before` (Unix seconds); returns how
        many audit records."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM drift WHERE ts < ?", (before,))
            return int(conn.execute("DELETE FROM audit WHERE ts < ?", (before,)).rowcount)

    def drift_tenants(self, task: str, model_version: str, since: float) -> list[str]:
        """Tenants with drift counts for this model version since `since` (Unix seconds)."""
        with self.db.transaction() as conn:
            cur = conn.execute("SELECT DISTINCT tenant FROM drift WHERE task=? AND "
                               "model_version=? AND ts >= ? ORDER BY tenant",
                               (task, model_version, since))
            return [t for (t,) in cur.fetchall()]

    def drift_counts(self, tenant: str, task: str, model_version: str, since: float,
                     ) -> dict[str, list[int]]:
        """Bin counts per feature summed over a tenant's requests to one model version."""
        with self.db.transaction() as conn:
            cur = conn.execute("SELECT counts FROM drift WHERE tenant=? AND task=? AND "
                               "model_version=? AND ts >= ?", (tenant, task, model_version, since))
            rows = [json.loads(c) for (c,) in cur.fetchall()]
        total: dict[str, list[int]] = {}
        for counts in rows:
            drift.merge_counts(total, counts)
        return total

    def tenant_drift(self, reference: dict[str, Any], tenant: str, task: str, version: str,
                     days: float, threshold: float, min_rows: int = 0) -> dict[str, Any]:
        """PSI per feature and score for one tenant's last `days` of requests to one version
        (models/drift.py report; features at or over `threshold` are flagged)."""
        counts = self.drift_counts(tenant, task, version, time.time() - days * 86400)
        rows = drift.report(reference, counts, threshold, min_rows)
        scored = max((r["rows"] for r in rows), default=0)
        return {"task": task, "tenant": tenant, "model_version": version, "days": days,
                "rows_counted": scored, "flagged": [r["feature"] for r in rows if r["flag"]],
                "features": rows}

    def drift_report(self, references: References, days: float, threshold: float,
                     min_rows: int = 0, tenants: list[str] | None = None,
                     ) -> list[dict[str, Any]]:
        """tenant_drift of every (task, tenant) pair with requests to the task's champion
        (`references`) in the last `days`, tasks in name order; `tenants`: only these."""
        since = time.time() - days * 86400
        out = []
        for task, (version, reference) in sorted(references.items()):
            for tenant in self.drift_tenants(task, version, since):
                if tenants is None or tenant in tenants:
                    out.append(self.tenant_drift(reference, tenant, task, version, days,
                                                 threshold, min_rows))
        return out

    @staticmethod
    def delete_tenant(conn: Any, tenant: str, dry_run: bool) -> dict[str, int]:
        """Inside the caller's transaction: count (and unless `dry_run` delete) a tenant's
        audit and drift records."""
        counts = {table: int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE tenant = ?",
                                          (tenant,)).fetchone()[0])
                  for table in ("audit", "drift")}
        if not dry_run:
            for table in ("audit", "drift"):
                conn.execute(f"DELETE FROM {table} WHERE tenant = ?", (tenant,))
        return counts
