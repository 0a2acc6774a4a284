"""GET /v1/costs (a tenant's own bill) and /v1/admin/costs (every tenant, CSV and Excel)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.costs import month_of
from serving.claim_screening import EXAMPLE_CLAIM
from tests.serving.conftest import ITOSHIMA, IYO

ADMIN = {"Authorization": "Bearer kyodo-demo-admin"}


def _month() -> str:
    return month_of(time.time())


def test_tenant_sees_only_its_own_bill(client: TestClient) -> None:
    r = client.get("/v1/costs", params={"month": _month()}, headers=IYO)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tenant"] == "382108" and "bills" not in body
    bill = body["bill"]
    assert set(bill["by_task"]) == {"care_plan", "checkup_nudge", "claim_screening"}
    assert bill["saving_yen"] == bill["standalone_yen"] - bill["allocated_yen"] > 0
    assert "402303" not in r.text  # no other municipality's line


def test_a_scored_request_is_billed_in_this_month(client: TestClient) -> None:
    def rows() -> int:
        bill = client.get("/v1/costs", headers=ITOSHIMA).json()["bill"]
        return bill["by_task"]["claim_screening"]["rows"]

    before = rows()
    r = client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                    headers=ITOSHIMA)
    assert r.status_code == 200
    assert rows() == before + 1


def test_admin_sees_every_tenant_and_totals_add_up(client: TestClient, runtime) -> None:
    body = client.get("/v1/admin/costs", params={"month": _month()}, headers=ADMIN).json()
    assert set(body["bills"]) == {t.code for t in runtime.tenants.tenants}
    assert body["total_yen"] == sum(body["pools_yen"].values())
    assert sum(b["allocated_yen"] for b in body["bills"].values()) == body["total_yen"]


def test_admin_downloads_csv_and_xlsx(client: TestClient, runtime) -> None:
    csv = client.get("/v1/admin/costs", params={"format": "csv"}, headers=ADMIN)
    assert csv.status_code == 200 and csv.content.startswith("\ufeff団体コード".encode())
    xlsx = client.get("/v1/admin/costs", params={"format": "xlsx"}, headers=ADMIN)
    table = pd.read_excel(io.BytesIO(xlsx.content), dtype={"団体コード": str})
    assert len(table) == len(runtime.tenants.tenants) and "削減額（円）" in table.columns
    own = client.get("/v1/costs", params={"format": "csv_cp932"}, headers=IYO)
    assert len(pd.read_csv(io.BytesIO(own.content), encoding="cp932")) == 1


def test_costs_auth_and_bad_month(client: TestClient) -> None:
    assert client.get("/v1/admin/costs", headers=IYO).status_code == 403
    assert client.get("/v1/admin/costs").status_code == 401
    assert client.get("/v1/admin/costs", headers={"Authorization": "Bearer x"}).status_code == 401
    assert client.get("/v1/costs").status_code == 401
    bad = client.get("/v1/costs", params={"month": "2026-13"}, headers=IYO)
    assert bad.status_code == 422 and "YYYY-MM" in bad.json()["error"]
    wrong = client.get("/v1/costs", params={"format": "pdf"}, headers=IYO)
    assert wrong.status_code == 422 and "format" in wrong.json()["error"]


def test_cli_writes_the_same_bills_as_the_api(client: TestClient, trained_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from training.cli import app

    month = _month()
    monkeypatch.setenv("KYODO_ROOT", str(trained_root))
    result = CliRunner().invoke(app, ["costs", "--month", month, "--format", "xlsx"])
    assert result.exit_code == 0, result.output
    assert "伊予市" in result.output and "単独運用見込（円）" in result.output
    written = json.loads((trained_root / "reports" / "costs" / f"{month}.json").read_text())
    api = client.get("/v1/admin/costs", params={"month": month}, headers=ADMIN).json()["bills"]
    assert written == api
    assert {"allocated_yen", "standalone_yen", "by_task"} <= set(written["382108"])
    assert (trained_root / "reports" / "costs" / f"{month}.xlsx").stat().st_size > 0
    bad = CliRunner().invoke(app, ["costs", "--month", "11-2026"])
    assert bad.exit_code == 2 and "expected YYYY-MM" in bad.output
