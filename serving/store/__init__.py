"""The durable store: service records in SQLite (WAL), or PostgreSQL when KYODO_DATABASE_URL is
set (serving/store/sqldb.py), and files (road photos and overlays) in the file store
(serving/store/files.py; the database keeps their metadata).

No HTTP here: this package imports no FastAPI, Starlette, BentoML or uvicorn (a test checks),
so `kyodo` commands in training/ use it without loading the service; serving/ wires it into
request handlers. One part per concern, each owning its tables:

- `store.metering`    usage: one row per request, exactly once (metering.py)
- `store.claims`      review queues and reviewer feedback of claim_screening (claims.py)
- `store.audit_trail` the prediction audit trail and drift counts (audit.py)
- `store.road`        road_damage batches, photo files and corrections (road.py)

Only pseudonyms are stored, never raw patient identifiers. Every write is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from serving.store.audit import AuditTrail
from serving.store.claims import ClaimRecords
from serving.store.files import FileStore, open_files
from serving.store.metering import UsageLog
from serving.store.road import RoadRecords
from serving.store.sqldb import open_database

P = ParamSpec("P")
R = TypeVar("R")


class _Part(Generic[P, R]):
    """A part's method under the store's flat name: `store.usage(t)` is `store.metering.usage(t)`
    (the names callers have always used; typed as the part's method)."""

    def __init__(self, part: str, method: Callable[Concatenate[Any, P], R]):
        self.part, self.method = part, method.__name__

    def __get__(self, store: Store, owner: type | None = None) -> Callable[P, R]:
        return getattr(getattr(store, self.part), self.method)


class Store:
    """Thread-safe access to the service database (SQLite: one connection per thread;
    PostgreSQL at url, default $KYODO_DATABASE_URL: a pool) and its file store (default:
    $KYODO_FILE_ROOT, else the folder `files` next to the SQLite file), composed of one part
    per concern (module docstring). Opening creates missing tables and applies the additive
    migration of usage.request_id; road tables are created on first road use."""

    def __init__(self, path: str | Path, url: str | None = None,
                 files: FileStore | None = None):
        self.path = Path(path)
        self.db = open_database(self.path, url)
        self.metering = UsageLog(self.db)
        self.claims = ClaimRecords(self.db)
        self.audit_trail = AuditTrail(self.db)
        self.road = RoadRecords(self.db, files if files is not None
                                else open_files(self.path.parent / "files"))
        for part in (self.metering, self.claims, self.audit_trail):
            part.create()

    @property
    def files(self) -> FileStore:
        """The file store of road photos and overlays (the road part's)."""
        return self.road.files

    @files.setter
    def files(self, files: FileStore) -> None:
        self.road.files = files

    record_usage = _Part("metering", UsageLog.record)
    usage = _Part("metering", UsageLog.usage)
    usage_between = _Part("metering", UsageLog.usage_between)
    save_queue = _Part("claims", ClaimRecords.save_queue)
    queues = _Part("claims", ClaimRecords.queues)
    queue_items = _Part("claims", ClaimRecords.queue_items)
    save_feedback = _Part("claims", ClaimRecords.save_feedback)
    feedback = _Part("claims", ClaimRecords.feedback)
    export_labels = _Part("claims", ClaimRecords.export_labels)
    audit = _Part("audit_trail", AuditTrail.records)
    purge_audit = _Part("audit_trail", AuditTrail.purge)
    drift_tenants = _Part("audit_trail", AuditTrail.drift_tenants)
    drift_counts = _Part("audit_trail", AuditTrail.drift_counts)
    save_road_batch = _Part("road", RoadRecords.save_batch)
    road_batches = _Part("road", RoadRecords.batches)
    road_photos = _Part("road", RoadRecords.photos)
    road_overlay = _Part("road", RoadRecords.overlay)
    save_road_corrections = _Part("road", RoadRecords.save_corrections)
    road_corrections = _Part("road", RoadRecords.corrections)
    road_training_photos = _Part("road", RoadRecords.training_photos)
    delete_road = _Part("road", RoadRecords.delete)
    migrate_road_blobs = _Part("road", RoadRecords.migrate_blobs)

    def record_request(self, rec: dict[str, Any]) -> None:
        """Meter one request and write its audit record (and drift counts) in one transaction;
        a retried record (same request_id) is ignored, so a request is never counted twice.
        rec: serving/metering.py request_record."""
        with self.db.transaction() as conn:
            self.metering.insert(conn, rec)
            self.audit_trail.insert(conn, rec)

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
        road = self.road.delete(tenant, dry_run=dry_run)
        with self.db.transaction() as conn:
            counts = {**self.claims.delete_tenant(conn, tenant, dry_run),
                      **self.audit_trail.delete_tenant(conn, tenant, dry_run),
                      "usage_kept": self.metering.count_tenant(conn, tenant)}
        return {**counts, **{f"road_{k}": v for k, v in road.items() if k != "bytes"},
                "bytes": road["bytes"]}
