"""The service store behaves the same on SQLite (default) and on a real PostgreSQL server
(KYODO_DATABASE_URL): exact metering, feedback, audit, costs, drift and road_damage records,
photos in the file store, retention purge and one municipality's deletion."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from models.configs import PlatformConfig, TenantsConfig, load_config
from models.costs import month_range, monthly_bills
from serving.metering import Meter, request_record
from serving.store import Store
from serving.store.sqldb import DATABASE_URL, open_database, to_postgres
from tests.conftest import REPO

ITO, IYO, TASK = "402303", "382108", "claim_screening"
OpenStore = Callable[[], Store]


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """One throw-away PostgreSQL server for this module's PostgreSQL cases."""
    from tests.pgserver import postgres_server

    with postgres_server() as url:
        yield url


def _fresh_database(request: pytest.FixtureRequest) -> str:
    from tests.pgserver import create_database

    return create_database(request.getfixturevalue("pg_server"), f"kyodo_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str | None]:
    """(SQLite path, PostgreSQL URL or None) of one empty service database."""
    path = tmp_path / "state" / "kyodo.db"
    return path, _fresh_database(request) if request.param == "postgresql" else None


@pytest.fixture
def open_store(backend: tuple[Path, str | None]) -> OpenStore:
    """Opens a handle on the test's database (each handle is one more service worker)."""
    path, url = backend
    return lambda: Store(path, url)


def _record(tenant: str = ITO, request_id: str | None = None, **fields: object) -> dict:
    rec = request_record(tenant, TASK, "score", {"rows": 2}, 0.004, "1")
    return rec | ({"request_id": request_id} if request_id else {}) | fields


def test_concurrent_writers_and_retries_are_counted_exactly_once(open_store: OpenStore) -> None:
    workers, threads, per_thread = [open_store(), open_store()], 8, 40
    ids = [[f"t{t}-{i}" for i in range(per_thread)] for t in range(threads)]
    start = threading.Barrier(threads)

    def write(t: int) -> None:
        store = workers[t % 2]
        start.wait()
        for rid in ids[t]:
            store.record_request(_record(request_id=rid))
        for rid in ids[(t + 1) % threads]:  # another thread's records, retried at once
            store.record_request(_record(request_id=rid))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(threads)))
    n = threads * per_thread
    assert open_store().usage(ITO) == [{"task": TASK, "endpoint": "score", "requests": n,
                                        "rows": 2 * n, "images": 0,
                                        "compute_ms": pytest.approx(4.0 * n)}]
    assert len(workers[0].audit(ITO, limit=10**6)) == n
    assert open_store().usage(IYO) == []


def test_the_same_request_racing_on_two_workers_is_written_once(open_store: OpenStore) -> None:
    stores, rounds = [open_store() for _ in range(4)], 30
    for r in range(rounds):
        rec = _record(request_id=f"race-{r}")
        gate = threading.Barrier(len(stores))

        def write(store: Store, rec: dict = rec, gate: threading.Barrier = gate) -> None:
            gate.wait()
            store.record_request(rec)

        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(write, stores))
    usage = stores[0].usage(ITO)
    assert usage[0]["requests"] == rounds and usage[0]["rows"] == 2 * rounds
    assert isinstance(usage[0]["requests"], int) and isinstance(usage[0]["rows"], int)


def test_feedback_upsert_and_label_export(open_store: OpenStore, tmp_path: Path) -> None:
    store = open_store()
    store.save_feedback(ITO, TASK, [
        {"claim_id": "c1", "error_confirmed": True, "error_type": "E1", "recovered_points": 120},
        {"claim_id": "c2", "error_confirmed": False, "note": "問題なし"}])
    store.save_feedback(IYO, TASK, [{"claim_id": "c9", "error_confirmed": True}])
    store.save_feedback(ITO, TASK, [  # the reviewer changes their mind: the latest wins
        {"claim_id": "c1", "error_confirmed": False, "queue_id": "q1", "model_version": "3"}])
    own = {f["claim_id"]: f for f in store.feedback(ITO, TASK)}
    assert set(own) == {"c1", "c2"} and own["c1"]["error_confirmed"] == 0
    assert own["c1"]["queue_id"] == "q1" and own["c2"]["note"] == "問題なし"
    assert [f["claim_id"] for f in store.feedback(ITO, TASK, "q1")] == ["c1"]
    assert store.export_labels(TASK, tmp_path / "labels") == {ITO: 2, IYO: 1}
    assert (tmp_path / "labels" / f"{ITO}.csv").read_text(encoding="utf-8") == (
        "claim_id,error_type,recoverable_points\nc1,,0\nc2,,0\n")
    assert (tmp_path / "labels" / f"{IYO}.csv").read_text(encoding="utf-8").endswith(
        "c9,confirmed,0\n")


def test_audit_filters_subject_and_purge(open_store: OpenStore) -> None:
    store, now = open_store(), time.time()
    store.record_request(_record(ts=now - 400 * 86400, subjects=["P-1"], drift={"age": [1, 0]}))
    store.record_request(_record(ts=now - 10, subjects=["P-12", "P-3"], model_version="2",
                                 summary={"top": "高"}))
    store.record_request(_record(ts=now - 5, subjects=["P-1"], task="care_plan"))
    store.record_request(_record(IYO, ts=now, subjects=["P-1"]))
    assert [a["ts"] for a in store.audit(ITO)] == [now - 5, now - 10, now - 400 * 86400]
    assert len(store.audit(ITO, subject="P-1")) == 2  # exact subject, not a prefix of P-12
    assert store.audit(ITO, subject="P-12")[0]["summary"] == {"top": "高"}
    assert store.audit(ITO, subject="P-12")[0]["subjects"] == ["P-12", "P-3"]
    assert [a["model_version"] for a in store.audit(ITO, model_version="2")] == ["2"]
    assert [a["task"] for a in store.audit(ITO, task="care_plan")] == ["care_plan"]
    assert len(store.audit(ITO, start=now - 10, end=now - 5)) == 1  # [start, end)
    assert len(store.audit(ITO, limit=1)) == 1 and len(store.audit(IYO)) == 1
    assert store.purge_audit(now - 365 * 86400) == 1
    assert len(store.audit(ITO)) == 2 and store.drift_counts(ITO, TASK, "1", 0) == {}
    assert sum(u["requests"] for u in store.usage(ITO)) == 3  # the bill keeps its usage


def test_usage_between_bills_a_month_to_the_sub_second(open_store: OpenStore) -> None:
    store = open_store()
    start, end = month_range("2026-10")
    for ts, status, images in ((start - 0.25, 200, 0), (start, 200, 3), (end - 0.25, 200, 1),
                               (end, 200, 0), (start + 60, 422, 0)):
        store.record_request(_record(ts=ts, status=status, images=images))
    store.record_request(_record(IYO, ts=start + 0.5, compute_ms=1500.0))
    usage = store.usage_between(start, end)
    assert usage == [
        {"tenant": IYO, "task": TASK, "requests": 1, "rows": 2, "images": 0,
         "compute_seconds": pytest.approx(1.5)},
        {"tenant": ITO, "task": TASK, "requests": 2, "rows": 4, "images": 4,
         "compute_seconds": pytest.approx(0.008)}]
    assert all(type(u[k]) is int for u in usage for k in ("requests", "rows", "images"))
    platform = load_config(REPO / "configs" / "platform.yaml", PlatformConfig)
    tenants = load_config(REPO / "configs" / "tenants.yaml", TenantsConfig).tenants
    bills = monthly_bills(store, platform.costs, tenants, "2026-10")["bills"]
    assert bills[ITO]["allocated_yen"] > 0 and bills[IYO]["allocated_yen"] > 0


def test_drift_counts_sum_one_versions_requests(open_store: OpenStore) -> None:
    store, now = open_store(), time.time()
    store.record_request(_record(drift={"age": [1, 2, 0], "points": [0, 1]}))
    store.record_request(_record(drift={"age": [0, 1, 5], "points": [2, 2]}))
    store.record_request(_record(drift={"age": [9, 9, 9]}, model_version="2"))
    store.record_request(_record(drift={"age": [7, 7, 7]}, ts=now - 86400))
    store.record_request(_record(IYO, drift={"age": [4, 4, 4]}))
    store.record_request(_record())  # no drift counts
    assert store.drift_counts(ITO, TASK, "1", now - 3600) == {"age": [1, 3, 5], "points": [2, 3]}
    assert store.drift_counts(ITO, TASK, "2", 0) == {"age": [9, 9, 9]}
    assert store.drift_tenants(TASK, "1", now - 3600) == [IYO, ITO]


def test_road_batches_and_corrections_round_trip_bytes(open_store: OpenStore) -> None:
    store = open_store()
    overlay, image = bytes(range(256)) * 3, b"\x00\xff\x00JPEG"
    store.save_road_batch("b1", ITO, "4", [
        {"index": 0, "name": "道路1.jpg", "overlay": overlay, "image": image, "damage": 0.8},
        {"index": 1, "name": "b.jpg", "overlay": b"\x89PNG", "image": None, "damage": 0.1}])
    assert store.road_batches(ITO)[0]["photos"] == 2 and store.road_batches(IYO) == []
    assert store.road_photos(ITO, "b1")[0] == {"index": 0, "name": "道路1.jpg", "damage": 0.8}
    assert store.road_photos(IYO, "b1") is None  # another municipality's batch
    got = store.road_overlay(ITO, "b1", 0)
    assert type(got) is bytes and got == overlay and store.road_overlay(IYO, "b1", 0) is None
    store.save_road_corrections(ITO, [
        {"batch_id": "b1", "index": 0, "row": 1, "col": 2, "correct": False,
         "labels": ["crack"], "note": "ひび割れ"},
        {"batch_id": "b1", "index": 0, "correct": True}])
    corrections = store.road_corrections(ITO)
    assert [c["correct"] for c in corrections] == [True, False]
    assert corrections[1]["labels"] == ["crack"] and corrections[1]["model_version"] == "4"
    [photo] = store.road_training_photos()
    assert photo["image"] == image and type(photo["image"]) is bytes
    assert sorted(photo["corrections"], key=str) == sorted(
        [(1, 2, False, ["crack"]), (None, None, True, [])], key=str)


def test_a_failed_write_leaves_nothing_and_the_store_goes_on(open_store: OpenStore) -> None:
    store = open_store()
    items = [{"rank": 1, "claim_id": "c1", "patient_pseudonym": "P-1"},
             {"rank": 1, "claim_id": "c2", "patient_pseudonym": "P-2"}]  # duplicate rank
    with pytest.raises(Exception, match=r"(?i)unique"):
        store.save_queue("q1", ITO, TASK, "2026-10", 2, 0.5, "1", items)
    assert store.queues(ITO, TASK) == [] and store.queue_items(ITO, "q1") is None
    store.save_queue("q1", ITO, TASK, "2026-10", 2, 0.5, "1", items[:1])
    assert [q["queue_id"] for q in store.queues(ITO, TASK)] == ["q1"]
    assert store.queue_items(ITO, "q1") == items[:1] and store.queue_items(IYO, "q1") is None


def test_a_database_from_before_request_ids_is_migrated(backend: tuple[Path, str | None]
                                                        ) -> None:
    path, url = backend
    with open_database(path, url).transaction() as conn:  # usage as released before request ids
        conn.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT "
                     "NULL, tenant TEXT NOT NULL, task TEXT NOT NULL, endpoint TEXT NOT NULL, "
                     "rows INTEGER NOT NULL, images INTEGER NOT NULL DEFAULT 0, compute_ms REAL"
                     " NOT NULL, model_version TEXT, status INTEGER NOT NULL)")
        conn.execute("INSERT INTO usage (ts, tenant, task, endpoint, rows, compute_ms, status) "
                     "VALUES (1, ?, ?, 'score', 3, 5, 200)", (ITO, TASK))
    store, rec = Store(path, url), _record()
    store.record_request(rec)
    Store(path, url).record_request(rec)  # a second worker migrates nothing; the retry is ignored
    assert store.usage(ITO)[0]["requests"] == 2 and store.usage(ITO)[0]["rows"] == 5


def test_statements_in_postgresql_dialect() -> None:
    assert to_postgres("INSERT OR IGNORE INTO t (a, b) VALUES (?,?)") == (
        "INSERT INTO t (a, b) VALUES (%s,%s) ON CONFLICT DO NOTHING")
    assert to_postgres("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, n "
                       "INTEGER, b BLOB)") == (
        "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, ts DOUBLE PRECISION, n BIGINT, b BYTEA)")
    assert to_postgres("SELECT '?', x FROM t WHERE y LIKE 'a%' AND z = ?") == (
        "SELECT '?', x FROM t WHERE y LIKE 'a%%' AND z = %s")
    with pytest.raises(ValueError, match=DATABASE_URL):
        open_database("unused.db", "mysql://kyodo@db/kyodo")


@pytest.mark.slow
def test_a_dropped_connection_is_replaced_and_the_meter_loses_nothing(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    import psycopg2

    url = _fresh_database(request)
    store = Store(tmp_path / "never.db", url)
    meter = Meter(store.record_request, retry_s=60)
    meter.record(_record(request_id="a"))  # its connection goes back to the pool
    admin = psycopg2.connect(url)
    admin.autocommit = True
    others = ("FROM pg_stat_activity WHERE datname = current_database() AND "
              "pid <> pg_backend_pid()")
    with admin.cursor() as cur:  # as when the server restarts or a proxy drops idle links
        cur.execute(f"SELECT pg_terminate_backend(pid) {others}")
        for _ in range(100):
            cur.execute(f"SELECT count(*) {others}")
            if cur.fetchone()[0] == 0:
                break
            time.sleep(0.05)
    admin.close()
    meter.record(_record(request_id="b"))  # on the dead pooled connection: kept for retry
    assert [r["request_id"] for r in meter.pending] == ["b"]
    meter.record(_record(request_id="c"))  # a new connection writes b, then c
    assert not meter.pending and store.usage(ITO)[0]["requests"] == 3
@pytest.mark.slow
def test_the_service_meters_into_postgresql(trained_root: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            request: pytest.FixtureRequest) -> None:
    from fastapi.testclient import TestClient

    from serving.api import app
    from serving.claim_screening import EXAMPLE_CLAIM
    from serving.deps import get_runtime
    from serving.runtime import Runtime
    from tests.serving.conftest import ITOSHIMA

    url = _fresh_database(request)
    monkeypatch.setenv(DATABASE_URL, url)  # the switch: nothing else changes
    runtime = Runtime.load(trained_root)
    monkeypatch.setitem(app.dependency_overrides, get_runtime, lambda: runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        scored = client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                             headers=ITOSHIMA)
        assert scored.status_code == 200
        assert client.get("/v1/usage", headers=ITOSHIMA).json()["usage"][0]["rows"] == 1
    assert not runtime.meter.pending
    monkeypatch.delenv(DATABASE_URL)
    in_postgres = Store(tmp_path / "never.db", url)  # read back on the server itself
    assert [(u["endpoint"], u["requests"], u["rows"]) for u in in_postgres.usage(ITO)] == [
        ("score", 1, 1)]
    assert in_postgres.audit(ITO)[0]["endpoint"] == "score"
    assert not (tmp_path / "never.db").exists()


def _overlay(batch_id: str) -> bytes:
    return b"\x89PNG" + batch_id.encode() * 100


def _image(tenant: str) -> bytes:
    return b"\xff\xd8JPEG" + tenant.encode() * 50


def _road_batch(store: Store, batch_id: str, tenant: str, age_days: float = 0) -> None:
    """Two analysed photos (the second has no analysed image), `age_days` old: 3 files."""
    store.save_road_batch(batch_id, tenant, "4", [
        {"index": 0, "name": "a.jpg", "overlay": _overlay(batch_id), "image": _image(tenant),
         "damage": 0.8},
        {"index": 1, "name": "b.jpg", "overlay": b"\x89PNG-b", "image": None, "damage": 0.1}])
    if age_days:
        with store.db.transaction() as conn:
            conn.execute("UPDATE road_batch SET created = created - ? WHERE batch_id = ?",
                         (age_days * 86400, batch_id))


def test_photos_live_in_the_file_store_and_the_database_keeps_metadata(
        open_store: OpenStore, backend: tuple[Path, str | None]) -> None:
    store = open_store()
    _road_batch(store, "b1", ITO)
    files = backend[0].parent / "files"  # the default: next to the SQLite file, under state/
    overlay = files / "road_damage" / ITO / "b1" / "0-overlay.png"
    assert overlay.read_bytes() == _overlay("b1")
    assert store.road_overlay(ITO, "b1", 0) == _overlay("b1")
    assert store.road_overlay(IYO, "b1", 0) is None and store.road_overlay(ITO, "b1", 7) is None
    with store.db.transaction() as conn:
        meta = conn.execute("SELECT key, size, sha256, content_type FROM road_file WHERE "
                            "batch_id = 'b1' ORDER BY key").fetchall()
    assert [(k, n, t) for k, n, _, t in meta] == [
        (f"road_damage/{ITO}/b1/0-image.jpg", len(_image(ITO)), "image/jpeg"),
        (f"road_damage/{ITO}/b1/0-overlay.png", len(_overlay("b1")), "image/png"),
        (f"road_damage/{ITO}/b1/1-overlay.png", 6, "image/png")]
    assert meta[1][2] == hashlib.sha256(_overlay("b1")).hexdigest()
    assert "overlay" not in store.db.columns("road_photo")  # no blobs in a new database
    store.save_road_corrections(ITO, [{"batch_id": "b1", "index": 0, "correct": True}])
    [photo] = store.road_training_photos()
    assert photo["image"] == _image(ITO)


def test_a_failed_batch_leaves_no_file_behind(open_store: OpenStore,
                                              backend: tuple[Path, str | None]) -> None:
    store = open_store()
    _road_batch(store, "b1", ITO)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        _road_batch(store, "b1", IYO)  # the same batch id again: the transaction fails
    written = backend[0].parent / "files" / "road_damage" / IYO
    assert not [p for p in written.rglob("*") if p.is_file()]
    assert store.road_overlay(ITO, "b1", 0) is not None


def test_purge_deletes_old_batches_their_files_and_corrections(
        open_store: OpenStore, backend: tuple[Path, str | None]) -> None:
    store, now = open_store(), time.time()
    _road_batch(store, "old-ito", ITO, age_days=500)
    _road_batch(store, "old-iyo", IYO, age_days=450)
    _road_batch(store, "new-ito", ITO, age_days=10)
    store.save_road_corrections(ITO, [{"batch_id": "old-ito", "index": 0, "correct": True},
                                      {"batch_id": "new-ito", "index": 1, "correct": True}])
    before = now - 400 * 86400
    dry = store.delete_road(ITO, before=before, dry_run=True)
    assert dry == {"batches": 1, "photos": 2, "corrections": 1, "files": 3,
                   "bytes": len(_overlay("old-ito")) + len(_image(ITO)) + 6}
    assert store.road_photos(ITO, "old-ito") is not None  # a dry run deletes nothing
    assert store.delete_road(ITO, before=before) == dry
    files = backend[0].parent / "files" / "road_damage"
    assert not any((files / ITO / "old-ito").glob("*"))
    assert store.road_photos(ITO, "old-ito") is None and store.road_overlay(ITO, "old-ito", 0) \
        is None
    assert [c["batch_id"] for c in store.road_corrections(ITO)] == ["new-ito"]
    assert store.road_photos(IYO, "old-iyo") is not None  # --tenant: only that municipality
    assert store.delete_road(before=before)["batches"] == 1  # every tenant: old-iyo
    assert [b["batch_id"] for b in store.road_batches(ITO)] == ["new-ito"]
    assert store.road_overlay(ITO, "new-ito", 0) is not None and store.road_batches(IYO) == []


def test_a_tenants_deletion_leaves_the_others_untouched(
        open_store: OpenStore, backend: tuple[Path, str | None]) -> None:
    store = open_store()
    for tenant in (ITO, IYO):
        _road_batch(store, f"b-{tenant}", tenant)
        store.save_road_corrections(tenant, [{"batch_id": f"b-{tenant}", "index": 0,
                                              "correct": True}])
        store.save_queue(f"q-{tenant}", tenant, TASK, "2026-10", 1, 0.5, "1",
                         [{"rank": 1, "claim_id": "c1", "patient_pseudonym": "P-1"}])
        store.save_feedback(tenant, TASK, [{"claim_id": "c1", "error_confirmed": True}])
        store.record_request(_record(tenant, subjects=["P-1"], drift={"age": [1, 2]}))
    orphan = backend[0].parent / "files" / "road_damage" / ITO / "lost" / "0-overlay.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"a file no row names")  # e.g. from a crash between file and row
    kinds = {"queues": 1, "queue_items": 1, "feedback": 1, "audit": 1, "drift": 1,
             "usage_kept": 1, "road_batches": 1, "road_photos": 2, "road_files": 3,
             "road_corrections": 1}
    plan = store.delete_tenant(ITO, dry_run=True)
    assert {k: v for k, v in plan.items() if k != "bytes"} == kinds and plan["bytes"] > 0
    assert store.feedback(ITO, TASK) != []  # a dry run deletes nothing
    assert store.delete_tenant(ITO) == plan
    assert store.road_batches(ITO) == [] and store.road_photos(ITO, f"b-{ITO}") is None
    assert store.road_overlay(ITO, f"b-{ITO}", 0) is None and store.road_corrections(ITO) == []
    assert store.queues(ITO, TASK) == [] and store.queue_items(ITO, f"q-{ITO}") is None
    assert store.feedback(ITO, TASK) == [] and store.audit(ITO) == []
    assert store.drift_counts(ITO, TASK, "1", 0) == {}
    assert not (backend[0].parent / "files" / "road_damage" / ITO).exists()
    assert store.usage(ITO)[0]["requests"] == 1  # billing records are kept
    assert store.delete_tenant(ITO)["road_batches"] == 0  # a second run finds nothing
    # the other municipality: every record and file as before
    assert [b["batch_id"] for b in store.road_batches(IYO)] == [f"b-{IYO}"]
    assert store.road_overlay(IYO, f"b-{IYO}", 0) == _overlay(f"b-{IYO}")
    assert len(store.road_corrections(IYO)) == 1 and len(store.queues(IYO, TASK)) == 1
    assert store.queue_items(IYO, f"q-{IYO}") is not None
    assert len(store.feedback(IYO, TASK)) == 1 and len(store.audit(IYO)) == 1
    assert store.drift_counts(IYO, TASK, "1", 0) == {"age": [1, 2]}
    [photo] = store.road_training_photos()
    assert photo["tenant"] == IYO


def _legacy_road_tables(path: Path, url: str | None, photos: int = 1) -> None:
    """road tables as released before the file store, with `photos` photos as blobs in a batch
    analysed 500 days ago."""
    with open_database(path, url).transaction() as conn:
        conn.execute("CREATE TABLE road_batch (batch_id TEXT PRIMARY KEY, tenant TEXT NOT NULL,"
                     " created REAL NOT NULL, photos INTEGER NOT NULL, model_version TEXT)")
        conn.execute("CREATE TABLE road_photo (batch_id TEXT NOT NULL REFERENCES "
                     "road_batch(batch_id), idx INTEGER NOT NULL, tenant TEXT NOT NULL, name "
                     "TEXT NOT NULL, result TEXT NOT NULL, overlay BLOB NOT NULL, image BLOB, "
                     "PRIMARY KEY (batch_id, idx))")
        conn.execute("INSERT INTO road_batch VALUES ('legacy', ?, ?, ?, '3')",
                     (ITO, time.time() - 500 * 86400, photos))
        for i in range(photos):
            conn.execute("INSERT INTO road_photo VALUES ('legacy', ?, ?, ?, ?, ?, ?)",
                         (i, ITO, f"old{i}.jpg", json.dumps({"index": i, "name": f"old{i}.jpg"}),
                          b"\x89PNG-old" + bytes([i]), b"JPEG-old" if i % 2 == 0 else None))


def test_photos_stored_as_blobs_before_the_file_store_are_read_and_purged(
        backend: tuple[Path, str | None]) -> None:
    path, url = backend
    _legacy_road_tables(path, url)
    store = Store(path, url)
    assert store.road_overlay(ITO, "legacy", 0) == b"\x89PNG-old\x00"
    assert store.road_photos(ITO, "legacy") == [{"index": 0, "name": "old0.jpg"}]
    store.save_road_corrections(ITO, [{"batch_id": "legacy", "index": 0, "correct": True}])
    assert store.road_training_photos()[0]["image"] == b"JPEG-old"
    _road_batch(store, "new", ITO)  # a new batch in the old table: its bytes go to files
    assert store.road_overlay(ITO, "new", 0) == _overlay("new")
    assert (path.parent / "files" / "road_damage" / ITO / "new" / "0-overlay.png").is_file()
    gone = store.delete_road(before=time.time() - 400 * 86400)
    assert gone == {"batches": 1, "photos": 1, "corrections": 1, "files": 0,
                    "bytes": len(b"\x89PNG-old\x00") + len(b"JPEG-old")}
    assert store.road_overlay(ITO, "legacy", 0) is None
    assert store.road_overlay(ITO, "new", 0) is not None


def test_blobs_are_migrated_to_the_file_store(backend: tuple[Path, str | None]) -> None:
    path, url = backend
    _legacy_road_tables(path, url, photos=5)
    store = Store(path, url)
    store.save_road_corrections(ITO, [{"batch_id": "legacy", "index": 2, "correct": True}])
    moved = store.migrate_road_blobs(limit=2)  # three rounds of at most two photos
    assert moved == {"photos": 5, "files": 8, "bytes": 5 * 9 + 3 * 8}
    assert store.migrate_road_blobs() == {"photos": 0, "files": 0, "bytes": 0}  # rerun: none
    with store.db.transaction() as conn:
        left = conn.execute("SELECT COUNT(*) FROM road_photo WHERE length(overlay) > 0 OR "
                            "image IS NOT NULL").fetchone()[0]
    assert left == 0  # the database holds metadata only
    files = path.parent / "files" / "road_damage" / ITO / "legacy"
    assert (files / "4-overlay.png").read_bytes() == b"\x89PNG-old\x04"
    assert not (files / "1-image.jpg").exists() and (files / "2-image.jpg").is_file()
    assert [store.road_overlay(ITO, "legacy", i) for i in range(5)] == [
        b"\x89PNG-old" + bytes([i]) for i in range(5)]
    assert store.road_training_photos()[0]["image"] == b"JPEG-old"
    gone = store.delete_road(ITO)  # purged from the file store now
    assert gone["files"] == 8 and gone["bytes"] == 69 and not any(files.glob("*"))
