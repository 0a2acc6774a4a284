"""The audit trail (GET /v1/audit, retention purge) and Prometheus /metrics, in process."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from models.pseudonym import pseudonymise
from serving.claim_screening import EXAMPLE_CLAIM
from serving.metering import request_record
from serving.store import Store
from tests.serving.conftest import ITOSHIMA, IYO

PSEUDONYM = pseudonymise("402303", EXAMPLE_CLAIM["patient_id"])


def _score(client: TestClient) -> None:
    r = client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                    headers=ITOSHIMA)
    assert r.status_code == 200


def _audit(client: TestClient, headers: dict = ITOSHIMA, **params: str) -> list[dict]:
    r = client.get("/v1/audit", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_every_prediction_is_audited_with_pseudonyms_only(client: TestClient) -> None:
    _score(client)
    items = _audit(client, subject=PSEUDONYM, task="claim_screening")
    latest = items[0]
    assert latest["subjects"] == [PSEUDONYM] and latest["model_version"] == "1"
    assert latest["endpoint"] == "score" and latest["status"] == 200 and latest["rows"] == 1
    assert latest["summary"]["claims"] == 1 and 0 <= latest["summary"]["max_score"] <= 1
    assert latest["time"].endswith("+09:00")
    r = client.get("/v1/audit", params={"subject": PSEUDONYM}, headers=ITOSHIMA)
    assert EXAMPLE_CLAIM["patient_id"] not in r.text
    by_raw_id = _audit(client, subject_id=EXAMPLE_CLAIM["patient_id"])
    assert [it["request_id"] for it in by_raw_id] == [it["request_id"] for it in items]


def test_queue_audit_names_every_scored_patient(client: TestClient, trained_root: Path) -> None:
    import pandas as pd

    raw = (trained_root / "data/claim_screening/402303.csv").read_bytes()
    q = client.post("/v1/claim_screening/queue", content=raw,
                    headers={**ITOSHIMA, "content-type": "text/csv"}).json()
    entry = next(it for it in _audit(client, task="claim_screening")
                 if it["summary"].get("queue_id") == q["queue_id"])
    patients = pd.read_csv(trained_root / "data/claim_screening/402303.csv",
                           usecols=["patient_id"], dtype=str)["patient_id"].nunique()
    assert len(entry["subjects"]) == patients and entry["summary"]["queued"] == q["queued"]


def test_audit_filters_and_tenancy(client: TestClient) -> None:
    _score(client)
    today = date.today()
    assert _audit(client, **{"from": str(today - timedelta(days=1)), "subject": PSEUDONYM})
    assert not _audit(client, **{"from": str(today + timedelta(days=2))})
    assert not _audit(client, to=str(today - timedelta(days=2)))
    assert not _audit(client, model_version="999")
    assert not _audit(client, IYO, subject=PSEUDONYM)  # another municipality's trail
    assert all(it["subjects"] != [PSEUDONYM] for it in _audit(client, IYO))
    bad = client.get("/v1/audit", params={"from": "2026-11-20", "to": "2026-11-01"},
                     headers=ITOSHIMA)
    assert bad.status_code == 422 and "to" in bad.json()["error"]
    assert client.get("/v1/audit", params={"subject": "P-000123"},
                      headers=ITOSHIMA).status_code == 422
    assert client.get("/v1/audit").status_code == 401


def test_retention_purge_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from typer.testing import CliRunner

    from tests.conftest import REPO
    from training.cli import app

    shutil.copytree(REPO / "configs", tmp_path / "configs")
    store = Store(tmp_path / "state" / "kyodo.db")
    for age_days in (400, 10):
        rec = request_record("402303", "claim_screening", "score", {"rows": 1}, 0.01, "1")
        store.record_request({**rec, "ts": time.time() - age_days * 86400})
    monkeypatch.setenv("KYODO_ROOT", str(tmp_path))
    result = CliRunner().invoke(app, ["audit", "purge", "--days", "365"])
    assert result.exit_code == 0 and "purged 1 audit records" in result.output
    assert len(store.audit("402303")) == 1
    assert len(store.usage_between(0, time.time() + 1)) == 1  # the bill keeps its usage


def _samples(client: TestClient) -> dict[tuple, float]:
    text = client.get("/metrics", headers={"Authorization": "Bearer kyodo-demo-admin"}).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _get(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_rows_latency_and_errors(client: TestClient,
                                                        trained_root: Path) -> None:
    labels = {"tenant": "402303", "task": "claim_screening", "model_version": "1"}
    before = _samples(client)
    _score(client)
    bad = client.post("/v1/claim_screening/queue", content=b"claim_id,age\nx,1\n",
                      headers={**ITOSHIMA, "content-type": "text/csv"})
    assert bad.status_code == 422
    after = _samples(client)
    ok, queue = {**labels, "endpoint": "score"}, {**labels, "endpoint": "queue"}
    assert _get(after, "kyodo_requests_total", **ok, status="200") - _get(
        before, "kyodo_requests_total", **ok, status="200") == 1
    assert _get(after, "kyodo_rows_total", **ok) - _get(before, "kyodo_rows_total", **ok) == 1
    assert _get(after, "kyodo_request_seconds_count", **ok) - _get(
        before, "kyodo_request_seconds_count", **ok) == 1
    assert _get(after, "kyodo_request_errors_total", **queue, status="422") - _get(
        before, "kyodo_request_errors_total", **queue, status="422") == 1
