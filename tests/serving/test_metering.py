"""Metering is exact: concurrent clients are each counted once, and a failing store never fails a
prediction — the record is kept, retried and written exactly once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.claim_screening import EXAMPLE_CLAIM
from serving.metering import Meter, request_record
from serving.store import Store
from tests.serving.conftest import ITOSHIMA

THREADS, PER_THREAD = 16, 25


def _counts(runtime) -> tuple[int, int]:
    """(metered score requests, audit records) of 糸島市 in the real store."""
    usage = runtime.store.usage("402303")
    requests = sum(u["requests"] for u in usage if u["endpoint"] == "score")
    return requests, len(runtime.store.audit("402303", task="claim_screening", limit=10**6))


def _score(client: TestClient) -> int:
    return client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                       headers=ITOSHIMA).status_code


def test_concurrent_clients_are_counted_exactly_once(client: TestClient, runtime) -> None:
    before = _counts(runtime)
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = list(pool.map(lambda _: _score(client), range(THREADS * PER_THREAD)))
    assert statuses.count(200) == THREADS * PER_THREAD
    after = _counts(runtime)
    assert after[0] - before[0] == THREADS * PER_THREAD  # 400 requests, 400 meter rows
    assert after[1] - before[1] == THREADS * PER_THREAD
    assert not runtime.meter.pending


def _write_many(path: str, worker: int, n: int) -> None:
    store = Store(path)
    for i in range(n):
        store.record_request(request_record("402303", "claim_screening", "score", {"rows": 2},
                                            0.001, "1") | {"request_id": f"w{worker}-{i}"})


def test_worker_processes_sharing_the_database_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "kyodo.db")
    Store(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, w, 300)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    _write_many(path, 0, 300)  # the same request ids again: retries are not counted twice
    usage = Store(path).usage("402303")
    assert usage == [{"task": "claim_screening", "endpoint": "score", "requests": 900,
                      "rows": 1800, "images": 0, "compute_ms": pytest.approx(900.0)}]


class FlakyStore:
    """The real store's write, failing for the next `failures` calls (optionally after the write
    landed, as when the connection drops between COMMIT and its acknowledgement)."""

    def __init__(self, write, failures: int, after_write: bool = False):
        self.write, self.failures, self.after_write = write, failures, after_write

    def __call__(self, rec: dict) -> None:
        if self.failures > 0:
            self.failures -= 1
            if self.after_write:
                self.write(rec)
            raise sqlite3.OperationalError("database is locked")
        self.write(rec)


@pytest.mark.parametrize("after_write", [False, True], ids=["lost-write", "landed-write"])
def test_failing_meter_never_fails_a_request_and_is_retried(
        client: TestClient, runtime, monkeypatch: pytest.MonkeyPatch, after_write: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    # failing until told otherwise: the meter's 1 s retry timer may also try while the first
    # requests run on a slow machine, and must not use up a fixed number of failures
    flaky = FlakyStore(runtime.store.record_request, failures=10**6, after_write=after_write)
    monkeypatch.setattr(runtime.meter, "_write", flaky)
    before = _counts(runtime)
    assert [_score(client) for _ in range(3)] == [200] * 3  # the store is failing
    assert len(runtime.meter.pending) == 3 and "meter write failed" in caplog.text
    flaky.failures = 0  # the store recovers
    assert [_score(client) for _ in range(3)] == [200] * 3
    deadline = time.monotonic() + 10
    while runtime.meter.pending and time.monotonic() < deadline:
        time.sleep(0.05)  # the retry timer writes whatever is still queued
    assert not runtime.meter.pending
    assert _counts(runtime)[0] - before[0] == 6 and _counts(runtime)[1] - before[1] == 6


def test_retry_queue_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: dict) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    meter = Meter(broken, limit=3, retry_s=60)
    for i in range(5):
        meter.record({"request_id": str(i), "tenant": "402303", "task": "claim_screening"})
    assert [r["request_id"] for r in meter.pending] == ["2", "3", "4"] and meter.dropped == 2
    assert "retry queue full" in caplog.text
    meter.pending.clear()  # nothing for the exit-time flush to retry


def test_an_existing_database_is_migrated_additively(tmp_path: Path) -> None:
    path = tmp_path / "kyodo.db"
    with sqlite3.connect(path) as conn:  # the usage table as released before request ids
        conn.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,"
                     " tenant TEXT NOT NULL, task TEXT NOT NULL, endpoint TEXT NOT NULL, rows "
                     "INTEGER NOT NULL, images INTEGER NOT NULL DEFAULT 0, compute_ms REAL NOT "
                     "NULL, model_version TEXT, status INTEGER NOT NULL)")
        conn.execute("INSERT INTO usage (ts, tenant, task, endpoint, rows, compute_ms, status) "
                     "VALUES (1, '402303', 'claim_screening', 'score', 3, 5, 200)")
    store = Store(path)
    rec = request_record("402303", "claim_screening", "score", {"rows": 2}, 0.01, "1")
    store.record_request(rec)
    store.record_request(rec)  # the retry of a landed write
    assert store.usage("402303")[0]["requests"] == 2 and store.usage("402303")[0]["rows"] == 5
    assert len(store.audit("402303")) == 1
