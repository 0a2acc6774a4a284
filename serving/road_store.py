"""Store tables of road_damage: analysed batches (results, overlays, images) and corrections.

Mixed into serving.store.Store; the tables are created on first use, so databases written
before road_damage existed gain them without a migration step.
"""

from __future__ import annotations

import json
import time
from typing import Any

ROAD_SCHEMA = """
CREATE TABLE IF NOT EXISTS road_batch (
    batch_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, created REAL NOT NULL,
    photos INTEGER NOT NULL, model_version TEXT
);
CREATE TABLE IF NOT EXISTS road_photo (
    batch_id TEXT NOT NULL REFERENCES road_batch(batch_id), idx INTEGER NOT NULL,
    tenant TEXT NOT NULL, name TEXT NOT NULL, result TEXT NOT NULL, overlay BLOB NOT NULL,
    image BLOB, PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS road_correction (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, ts REAL NOT NULL,
    batch_id TEXT NOT NULL, idx INTEGER NOT NULL, tile_row INTEGER, tile_col INTEGER,
    correct INTEGER NOT NULL, labels TEXT NOT NULL, note TEXT NOT NULL, model_version TEXT
);
CREATE INDEX IF NOT EXISTS road_batch_tenant ON road_batch(tenant, created);
CREATE INDEX IF NOT EXISTS road_correction_tenant ON road_correction(tenant, ts);
"""
CORRECTION_COLUMNS = ("batch_id", "idx", "tile_row", "tile_col", "correct", "labels", "note",
                      "ts", "model_version")


class RoadStore:
    """road_damage batches and corrections (needs the host's `_conn()` transaction helper)."""

    _road_ready = False

    def _road(self) -> Any:
        if not self._road_ready:
            with self._conn() as conn:
                for stmt in filter(str.strip, ROAD_SCHEMA.split(";")):
                    conn.execute(stmt)
            self._road_ready = True
        return self._conn()

    def save_road_batch(self, batch_id: str, tenant: str, model_version: str,
                        results: list[dict[str, Any]]) -> None:
        """A batch's per-photo results, overlays and analysed images, in one transaction."""
        with self._road() as conn:
            conn.execute("INSERT INTO road_batch VALUES (?,?,?,?,?)",
                         (batch_id, tenant, time.time(), len(results), model_version))
            conn.executemany("INSERT INTO road_photo VALUES (?,?,?,?,?,?,?)", [
                (batch_id, r["index"], tenant, r["name"],
                 json.dumps({k: v for k, v in r.items() if k not in ("overlay", "image")},
                            ensure_ascii=False), r["overlay"], r.get("image"))
                for r in results])

    def road_batches(self, tenant: str) -> list[dict[str, Any]]:
        """A tenant's batches, newest first."""
        with self._road() as conn:
            cur = conn.execute("SELECT batch_id, created, photos, model_version FROM road_batch "
                               "WHERE tenant=? ORDER BY created DESC", (tenant,))
            return [dict(zip(("batch_id", "created", "photos", "model_version"), r, strict=True))
                    for r in cur.fetchall()]

    def road_photos(self, tenant: str, batch_id: str) -> list[dict[str, Any]] | None:
        """Results of one of the tenant's batches; None when it is not the tenant's."""
        with self._road() as conn:
            own = conn.execute("SELECT 1 FROM road_batch WHERE batch_id=? AND tenant=?",
                               (batch_id, tenant)).fetchone()
            if own is None:
                return None
            cur = conn.execute("SELECT result FROM road_photo WHERE batch_id=? AND tenant=? "
                               "ORDER BY idx", (batch_id, tenant))
            return [json.loads(r) for (r,) in cur.fetchall()]

    def road_overlay(self, tenant: str, batch_id: str, index: int) -> bytes | None:
        """The overlay PNG of one of the tenant's photos."""
        with self._road() as conn:
            row = conn.execute("SELECT overlay FROM road_photo WHERE batch_id=? AND idx=? AND "
                               "tenant=?", (batch_id, index, tenant)).fetchone()
        return None if row is None else bytes(row[0])

    def save_road_corrections(self, tenant: str, items: list[dict[str, Any]]) -> int:
        """Append staff verdicts (the latest per photo or tile wins on export)."""
        with self._road() as conn:
            versions = dict(conn.execute("SELECT batch_id, model_version FROM road_batch "
                                         "WHERE tenant=?", (tenant,)).fetchall())
            conn.executemany(
                "INSERT INTO road_correction (tenant, ts, batch_id, idx, tile_row, tile_col, "
                "correct, labels, note, model_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(tenant, time.time(), it["batch_id"], it["index"], it.get("row"),
                  it.get("col"), int(it["correct"]), json.dumps(it.get("labels") or []),
                  it.get("note") or "", versions.get(it["batch_id"])) for it in items])
        return len(items)

    def road_corrections(self, tenant: str) -> list[dict[str, Any]]:
        """A tenant's corrections, newest first."""
        with self._road() as conn:
            cur = conn.execute(f"SELECT {', '.join(CORRECTION_COLUMNS)} FROM road_correction "
                               "WHERE tenant=? ORDER BY ts DESC, id DESC", (tenant,))
            rows = [dict(zip(CORRECTION_COLUMNS, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["labels"], r["correct"] = json.loads(r["labels"]), bool(r["correct"])
        return rows

    def road_training_photos(self) -> list[dict[str, Any]]:
        """Every corrected photo with its analysed image, result and corrections in the order
        they were made (all tenants: the training export, run by the operator)."""
        with self._road() as conn:
            fixes = conn.execute("SELECT tenant, batch_id, idx, tile_row, tile_col, correct, "
                                 "labels FROM road_correction ORDER BY ts, id").fetchall()
            by_photo: dict[tuple, list[tuple]] = {}
            for tenant, batch, idx, row, col, ok, labels in fixes:
                by_photo.setdefault((tenant, batch, idx), []).append(
                    (row, col, bool(ok), json.loads(labels)))
            out = []
            for (tenant, batch, idx), corrections in sorted(by_photo.items()):
                found = conn.execute("SELECT name, result, image FROM road_photo WHERE "
                                     "batch_id=? AND idx=? AND tenant=?",
                                     (batch, idx, tenant)).fetchone()
                if found is not None and found[2] is not None:  # older rows kept no image
                    name, result, image = found
                    out.append({"tenant": tenant, "batch_id": batch, "index": idx, "name": name,
                                "result": json.loads(result), "image": bytes(image),
                                "corrections": corrections})
        return out
