"""The store's road_damage part: analysed batches (results), file metadata and corrections.

A member of serving.store.Store (`store.road`); the tables are created on first use, so
databases written before road_damage existed gain them without a migration step. The photos
and overlays themselves live in the store's file store (serving/store/files.py); the database
keeps their key, size, sha256 and content type (road_file). Databases written before the file
store kept them as blobs in road_photo (overlay, image): those are still read, and deleted
with their rows.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from typing import Any

from serving.store.files import FileStore, FileStoreError, StoredFile, describe
from serving.store.sqldb import Database

ROAD_SCHEMA = """
CREATE TABLE IF NOT EXISTS road_batch (
    batch_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, created REAL NOT NULL,
    photos INTEGER NOT NULL, model_version TEXT
);
CREATE TABLE IF NOT EXISTS road_photo (
    batch_id TEXT NOT NULL REFERENCES road_batch(batch_id), idx INTEGER NOT NULL,
    tenant TEXT NOT NULL, name TEXT NOT NULL, result TEXT NOT NULL, PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS road_file (
    key TEXT PRIMARY KEY, tenant TEXT NOT NULL, batch_id TEXT NOT NULL, idx INTEGER NOT NULL,
    role TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS road_correction (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, ts REAL NOT NULL,
    batch_id TEXT NOT NULL, idx INTEGER NOT NULL, tile_row INTEGER, tile_col INTEGER,
    correct INTEGER NOT NULL, labels TEXT NOT NULL, note TEXT NOT NULL, model_version TEXT
);
CREATE INDEX IF NOT EXISTS road_batch_tenant ON road_batch(tenant, created);
CREATE INDEX IF NOT EXISTS road_batch_created ON road_batch(created);
CREATE INDEX IF NOT EXISTS road_file_photo ON road_file(batch_id, idx, role);
CREATE INDEX IF NOT EXISTS road_correction_tenant ON road_correction(tenant, ts);
"""
CORRECTION_COLUMNS = ("batch_id", "idx", "tile_row", "tile_col", "correct", "labels", "note",
                      "ts", "model_version")
# role -> (file name suffix, content type) of the files kept per analysed photo
FILE_ROLES = {"overlay": ("overlay.png", "image/png"), "image": ("image.jpg", "image/jpeg")}


def photo_key(tenant: str, batch_id: str, index: int, role: str) -> str:
    """Where a photo's file lives in the file store: road_damage/<tenant>/<batch>/<i>-<role>."""
    return f"road_damage/{tenant}/{batch_id}/{index}-{FILE_ROLES[role][0]}"


class RoadRecords:
    """road_damage batches and corrections of one database (`db`: serving/store/sqldb.py),
    their photos and overlays in `files` (serving/store/files.py)."""

    def __init__(self, db: Database, files: FileStore):
        self.db = db
        self.files = files
        self._ready = False
        # True for a road_photo table from before the file store (overlay/image blob columns)
        self._blobs = False

    def _tables(self) -> Any:
        """A transaction (db.transaction), the tables created first when this is the first."""
        if not self._ready:
            with self.db.transaction() as conn:
                for stmt in filter(str.strip, ROAD_SCHEMA.split(";")):
                    conn.execute(stmt)
            self._blobs = "overlay" in self.db.columns("road_photo")
            self._ready = True
        return self.db.transaction()

    def save_batch(self, batch_id: str, tenant: str, model_version: str,
                        results: list[dict[str, Any]]) -> None:
        """A batch's per-photo results in one transaction; its overlays and analysed images
        (`overlay`, `image`: bytes or None) go to the file store first, so a row never names a
        missing file (a failed transaction removes the files it wrote)."""
        stored: list[tuple[int, str, StoredFile]] = []
        try:
            for r in results:
                for role, (_, ctype) in FILE_ROLES.items():
                    if r.get(role) is not None:
                        meta = describe(photo_key(tenant, batch_id, r["index"], role), r[role],
                                        ctype)
                        self.files.put(meta.key, r[role], ctype)
                        stored.append((r["index"], role, meta))
            self._insert_batch(batch_id, tenant, model_version, results, stored)
        except BaseException:
            with suppress(FileStoreError):  # the store is down: the first error says so
                self.files.delete([m.key for _, _, m in stored])
            raise

    def _insert_batch(self, batch_id: str, tenant: str, model_version: str,
                      results: list[dict[str, Any]], stored: list[tuple[int, str, StoredFile]],
                      ) -> None:
        now = time.time()
        with self._tables() as conn:
            conn.execute("INSERT INTO road_batch VALUES (?,?,?,?,?)",
                         (batch_id, tenant, now, len(results), model_version))
            # a database from before the file store: its NOT NULL blob column gets b"" (the
            # bytes are in the file store; an empty overlay means "see road_file")
            legacy = ", overlay" if self._blobs else ""
            conn.executemany(
                f"INSERT INTO road_photo (batch_id, idx, tenant, name, result{legacy}) "
                f"VALUES (?,?,?,?,?{',?' if legacy else ''})",
                [(batch_id, r["index"], tenant, r["name"],
                  json.dumps({k: v for k, v in r.items() if k not in FILE_ROLES},
                             ensure_ascii=False), *((b"",) if legacy else ()))
                 for r in results])
            conn.executemany("INSERT INTO road_file VALUES (?,?,?,?,?,?,?,?,?)", [
                (m.key, tenant, batch_id, idx, role, m.size, m.sha256, m.content_type, now)
                for idx, role, m in stored])

    def _photo_ref(self, conn: Any, tenant: str, batch_id: str, index: int, role: str,
                   ) -> str | bytes | None:
        """Where one photo's file is: its key (str) in the file store, the blob of a row from
        before the file store (bytes), or None. Read inside a transaction; the file itself is
        read after it (a slow object store must not hold the SQLite write lock)."""
        row = conn.execute("SELECT key FROM road_file WHERE batch_id=? AND idx=? AND role=? "
                           "AND tenant=?", (batch_id, index, role, tenant)).fetchone()
        if row is not None:
            return str(row[0])
        if not self._blobs:
            return None
        blob = conn.execute(f"SELECT {role} FROM road_photo WHERE batch_id=? AND idx=? AND "
                            "tenant=?", (batch_id, index, tenant)).fetchone()
        return bytes(blob[0]) if blob is not None and blob[0] else None

    def _load(self, ref: str | bytes | None) -> bytes | None:
        return self.files.get(ref) if isinstance(ref, str) else ref

    def batches(self, tenant: str) -> list[dict[str, Any]]:
        """A tenant's batches, newest first."""
        with self._tables() as conn:
            cur = conn.execute("SELECT batch_id, created, photos, model_version FROM road_batch "
                               "WHERE tenant=? ORDER BY created DESC", (tenant,))
            return [dict(zip(("batch_id", "created", "photos", "model_version"), r, strict=True))
                    for r in cur.fetchall()]

    def photos(self, tenant: str, batch_id: str) -> list[dict[str, Any]] | None:
        """Results of one of the tenant's batches; None when it is not the tenant's."""
        with self._tables() as conn:
            own = conn.execute("SELECT 1 FROM road_batch WHERE batch_id=? AND tenant=?",
                               (batch_id, tenant)).fetchone()
            if own is None:
                return None
            cur = conn.execute("SELECT result FROM road_photo WHERE batch_id=? AND tenant=? "
                               "ORDER BY idx", (batch_id, tenant))
            return [json.loads(r) for (r,) in cur.fetchall()]

    def overlay(self, tenant: str, batch_id: str, index: int) -> bytes | None:
        """The overlay PNG of one of the tenant's photos."""
        with self._tables() as conn:
            ref = self._photo_ref(conn, tenant, batch_id, index, "overlay")
        return self._load(ref)

    def save_corrections(self, tenant: str, items: list[dict[str, Any]]) -> int:
        """Append staff verdicts (the latest per photo or tile wins on export)."""
        with self._tables() as conn:
            versions = dict(conn.execute("SELECT batch_id, model_version FROM road_batch "
                                         "WHERE tenant=?", (tenant,)).fetchall())
            conn.executemany(
                "INSERT INTO road_correction (tenant, ts, batch_id, idx, tile_row, tile_col, "
                "correct, labels, note, model_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(tenant, time.time(), it["batch_id"], it["index"], it.get("row"),
                  it.get("col"), int(it["correct"]), json.dumps(it.get("labels") or []),
                  it.get("note") or "", versions.get(it["batch_id"])) for it in items])
        return len(items)

    def corrections(self, tenant: str) -> list[dict[str, Any]]:
        """A tenant's corrections, newest first."""
        with self._tables() as conn:
            cur = conn.execute(f"SELECT {', '.join(CORRECTION_COLUMNS)} FROM road_correction "
                               "WHERE tenant=? ORDER BY ts DESC, id DESC", (tenant,))
            rows = [dict(zip(CORRECTION_COLUMNS, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["labels"], r["correct"] = json.loads(r["labels"]), bool(r["correct"])
        return rows

    def training_photos(self) -> list[dict[str, Any]]:
        """Every corrected photo with its analysed image, result and corrections in the order
        they were made (all tenants: the training export, run by the operator)."""
        with self._tables() as conn:
            fixes = conn.execute("SELECT tenant, batch_id, idx, tile_row, tile_col, correct, "
                                 "labels FROM road_correction ORDER BY ts, id").fetchall()
            by_photo: dict[tuple, list[tuple]] = {}
            for tenant, batch, idx, row, col, ok, labels in fixes:
                by_photo.setdefault((tenant, batch, idx), []).append(
                    (row, col, bool(ok), json.loads(labels)))
            found = []
            for (tenant, batch, idx), corrections in sorted(by_photo.items()):
                row = conn.execute("SELECT name, result FROM road_photo WHERE "
                                   "batch_id=? AND idx=? AND tenant=?",
                                   (batch, idx, tenant)).fetchone()
                if row is not None:  # a purged or deleted batch has no row
                    found.append((tenant, batch, idx, row, corrections,
                                  self._photo_ref(conn, tenant, batch, idx, "image")))
        out = []
        for tenant, batch, idx, (name, result), corrections, ref in found:
            image = self._load(ref)
            if image is not None:  # older rows kept no image
                out.append({"tenant": tenant, "batch_id": batch, "index": idx, "name": name,
                            "result": json.loads(result), "image": image,
                            "corrections": corrections})
        return out

    def delete(self, tenant: str | None = None, before: float | None = None,
                    dry_run: bool = False) -> dict[str, int]:
        """Delete batches (of `tenant`, created before `before`, Unix seconds; None: any) with
        their photos' rows, files and corrections. Returns counts: batches, photos, files,
        corrections, and `bytes`: the photos' and overlays' size (file store plus blobs of rows
        from before it). `dry_run` counts and deletes nothing.

        Rows go in one transaction, then the files; a file whose deletion fails is an orphan
        that no row names (and, for a tenant's deletion, its folder is removed as a whole).
        """
        where, args = ["1=1"], []
        for clause, value in (("tenant = ?", tenant), ("created < ?", before)):
            if value is not None:
                where.append(clause)
                args.append(value)
        batches = f"SELECT batch_id FROM road_batch WHERE {' AND '.join(where)}"
        with self._tables() as conn:
            files = conn.execute(f"SELECT key, size FROM road_file WHERE batch_id IN ({batches})",
                                 args).fetchall()
            counts = {name: conn.execute(f"SELECT COUNT(*) FROM {table} WHERE batch_id IN "
                                         f"({batches})", args).fetchone()[0]
                      for name, table in (("batches", "road_batch"), ("photos", "road_photo"),
                                          ("corrections", "road_correction"))}
            blobs = 0
            if self._blobs:
                blobs = conn.execute("SELECT COALESCE(SUM(length(overlay) + "
                                     "COALESCE(length(image), 0)), 0) FROM road_photo WHERE "
                                     f"batch_id IN ({batches})", args).fetchone()[0]
            if not dry_run:  # children first: road_photo references road_batch
                for table in ("road_correction", "road_file", "road_photo", "road_batch"):
                    conn.execute(f"DELETE FROM {table} WHERE batch_id IN ({batches})", args)
        if not dry_run:
            self.files.delete([k for k, _ in files])
            if tenant is not None and before is None:
                self.files.delete_prefix(f"road_damage/{tenant}")
        return {**counts, "files": len(files), "bytes": int(blobs) + sum(s for _, s in files)}

    def migrate_blobs(self, limit: int = 200) -> dict[str, int]:
        """Move photos and overlays kept as blobs in road_photo (stores from before the file
        store) to the file store, `limit` photos per transaction; returns photos, files and
        bytes moved. Safe to rerun or interrupt: each row's blobs are emptied in the
        transaction that records its files, after the files are written."""
        moved = {"photos": 0, "files": 0, "bytes": 0}
        with self._tables():
            pass  # tables and the blob-column check
        if not self._blobs:
            return moved
        while True:
            with self.db.transaction() as conn:
                rows = conn.execute(
                    "SELECT p.batch_id, p.idx, p.tenant, p.overlay, p.image, b.created FROM "
                    "road_photo p JOIN road_batch b ON b.batch_id = p.batch_id WHERE "
                    "length(p.overlay) > 0 OR p.image IS NOT NULL LIMIT ?", (limit,)).fetchall()
            if not rows:
                return moved
            stored = []
            for batch, idx, tenant, overlay, image, created in rows:
                for role, blob in (("overlay", overlay), ("image", image)):
                    if blob:
                        data = bytes(blob)
                        meta = describe(photo_key(tenant, batch, idx, role), data,
                                        FILE_ROLES[role][1])
                        self.files.put(meta.key, data, meta.content_type)
                        stored.append((meta, tenant, batch, idx, role, created))
            with self.db.transaction() as conn:
                conn.executemany("INSERT OR IGNORE INTO road_file VALUES (?,?,?,?,?,?,?,?,?)", [
                    (m.key, tenant, batch, idx, role, m.size, m.sha256, m.content_type, created)
                    for m, tenant, batch, idx, role, created in stored])
                conn.executemany("UPDATE road_photo SET overlay = ?, image = NULL WHERE "
                                 "batch_id = ? AND idx = ?",
                                 [(b"", batch, idx) for batch, idx, *_ in rows])
            moved["photos"] += len(rows)
            moved["files"] += len(stored)
            moved["bytes"] += sum(m.size for m, *_ in stored)
