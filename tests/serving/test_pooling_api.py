"""Pooling gain over HTTP: a tenant sees its own row and anonymised others; the admin sees all."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from tests.serving.conftest import ITOSHIMA

ADMIN = {"Authorization": "Bearer kyodo-demo-admin"}


def test_pooling_falls_back_to_training_metrics_then_serves_the_report(
        client: TestClient, trained_root: Path) -> None:
    report_path = trained_root / "reports" / "pooling.json"
    report_path.unlink(missing_ok=True)
    r = client.get("/v1/pooling", headers=ITOSHIMA)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tenant"] == "402303" and "kyodo report pooling" in body["source"]
    own = body["tasks"]["claim_screening"]["own"]
    assert own["pooled"] > 0 and own["ci_low"] is None
    metrics = json.loads((trained_root / "reports/claim_screening/metrics.json").read_text())
    assert own["pooled"] == metrics["pooling"]["402303"]["pooled"]

    rows = {code: {"population": 1, "rows": 10, "pooled": 5.0, "local": 3.0 + i,
                   "others_only": 4.0, "ci_low": 0.5, "ci_high": 2.5}
            for i, code in enumerate(metrics["pooling"])}
    report_path.write_text(json.dumps({"claim_screening": rows}))
    try:
        mine = client.get("/v1/pooling", headers=ITOSHIMA).json()["tasks"]["claim_screening"]
        assert mine["own"] == rows["402303"]
        assert len(mine["others_gain"]) == len(rows) - 1
        assert "402303" not in json.dumps(mine["others_gain"])
        full = client.get("/v1/admin/pooling", headers=ADMIN).json()
        assert full["source"] == "kyodo report pooling"
        assert full["tasks"]["claim_screening"] == rows
    finally:
        report_path.unlink()


def test_admin_pooling_needs_the_admin_key(client: TestClient) -> None:
    assert client.get("/v1/admin/pooling", headers=ITOSHIMA).status_code == 403
    assert client.get("/v1/admin/pooling").status_code == 401
