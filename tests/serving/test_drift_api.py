"""Drift over HTTP: scoring requests are counted into the champion's reference bins and a
tenant sees PSI for its own requests only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from serving.runtime import Runtime
from tests.serving.conftest import ITOSHIMA

ADMIN = {"Authorization": "Bearer kyodo-demo-admin"}
IYO = {"Authorization": "Bearer kyodo-demo-382108"}


def _claims(trained_root: Path, tenant: str, n: int) -> list[dict]:
    lines = pd.read_csv(trained_root / "data/claim_screening" / f"{tenant}.csv", dtype=str,
                        keep_default_na=False)
    ids = lines["claim_id"].drop_duplicates().tail(n)
    out = []
    for cid, g in lines[lines["claim_id"].isin(ids)].groupby("claim_id", sort=False):
        head = g.iloc[0]
        out.append({"claim_id": cid, "patient_id": head["patient_id"], "age": int(head["age"]),
                    "sex": int(head["sex"]), "service_month": head["service_month"],
                    "provider_id": head["provider_id"], "claim_type": head["claim_type"],
                    "total_points": int(head["total_points"]),
                    "lines": [{"line_kind": r.line_kind, "code": r.code, "count": int(r.count),
                               "days": int(r.days), "points": int(r.points)}
                              for r in g.itertuples()]})
    return out


def test_requests_are_counted_and_reported_per_tenant(client: TestClient, runtime: Runtime,
                                                      trained_root: Path) -> None:
    def counted() -> int:  # other tests in the session score for 402303 too
        runtime.meter.flush()
        body = client.get("/v1/drift", headers=ITOSHIMA).json()
        return sum(d["rows_counted"] for d in body["drift"] if d["task"] == "claim_screening")

    before = counted()
    claims = _claims(trained_root, "402303", 60)
    for start in (0, 30):
        r = client.post("/v1/claim_screening/score", headers=ITOSHIMA,
                        json={"claims": claims[start:start + 30], "explain": True})
        assert r.status_code == 200, r.text
    runtime.meter.flush()
    body = client.get("/v1/drift", headers=ITOSHIMA).json()
    assert body["tenant"] == "402303" and body["threshold"] == 0.2
    [mine] = [d for d in body["drift"] if d["task"] == "claim_screening"]
    # 60 claims scored; the occluded copies behind the contributions are not counted
    assert mine["tenant"] == "402303" and mine["rows_counted"] == before + 60
    names = [f["feature"] for f in mine["features"]]
    assert "score" in names and "R_INDICATION" in names
    assert all(f["psi"] is None or f["psi"] >= 0 for f in mine["features"])
    assert all(d["tenant"] == "402303" for d in body["drift"])

    everyone = client.get("/v1/admin/drift?days=7", headers=ADMIN).json()
    assert everyone["days"] == 7
    assert any(d["tenant"] == "402303" for d in everyone["drift"])
    assert client.get("/v1/admin/drift", headers=IYO).status_code == 403
    assert client.get("/v1/drift?days=0", headers=ITOSHIMA).status_code == 422

    env = {**os.environ, "KYODO_ROOT": str(trained_root)}
    done = subprocess.run([sys.executable, "-m", "training.cli", "report", "drift"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "claim_screening" in done.stdout and "402303" in done.stdout
    written = json.loads((trained_root / "reports/drift.json").read_text())
    assert any(d["tenant"] == "402303" and d["rows_counted"] == before + 60
               for d in written["drift"])
