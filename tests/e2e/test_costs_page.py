"""The cost-sharing page (/ui/costs) in headless Chromium against `bentoml serve`.

Slow: uses the trained claim_screening workspace, starts the service and a browser. A tenant
sees its own bill and chart; the operator sees every municipality and downloads the table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from serving.claim_screening import EXAMPLE_CLAIM
from serving.launcher import bentoml_serve
from tests.e2e.conftest import BROWSER_MARKS, JAPANESE, REPO, console_errors
from tests.serving.test_safe_downloads import csv_column, xlsx_column, xlsx_sheet

IYO = "kyodo-demo-382108"  # 伊予市: care_plan, checkup_nudge, claim_screening
ADMIN = "kyodo-demo-admin"
SCREENSHOT = REPO / "reports" / "e2e" / "costs.png"

with contextlib.suppress(ImportError):  # missing: BROWSER_MARKS skip the tests
    from playwright.sync_api import Page, expect

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bentoml serve serving.service:Kyodo` on a free port with some metered usage."""
    log = tmp_path_factory.mktemp("serve-costs") / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(trained_root)}, log, timeout_s=90) as url:
        r = httpx.post(f"{url}/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                       headers={"Authorization": f"Bearer {IYO}"}, timeout=30)
        assert r.status_code == 200, r.text
        yield url


def _login(page: Page, server: str, key: str) -> None:
    page.goto(f"{server}/ui/costs")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("save-key").click()


def _yen(text: str) -> int:
    return int(text.replace("円", "").replace(",", "").strip())


def test_tenant_sees_its_own_bill_and_chart(server: str, page: Page) -> None:
    _login(page, server, IYO)
    expect(page.get_by_test_id("tenant-name")).to_contain_text("伊予市")
    expect(page.get_by_test_id("result-section")).to_be_visible(timeout=30_000)
    bill = httpx.get(f"{server}/v1/costs", headers={"Authorization": f"Bearer {IYO}"}).json()
    assert _yen(page.get_by_test_id("allocated").inner_text()) == bill["bill"]["allocated_yen"]
    assert _yen(page.get_by_test_id("standalone").inner_text()) == bill["bill"][
        "standalone_yen"]
    assert _yen(page.get_by_test_id("saving").inner_text()) == bill["bill"]["saving_yen"]
    rows = page.get_by_test_id("chart-row")
    expect(rows).to_have_count(1)
    assert float(rows.first.get_by_test_id("bar-allocated").get_attribute("width")) > 0
    table_rows = page.locator("[data-testid=cost-table] tbody tr")
    expect(table_rows).to_have_count(3)
    assert all(JAPANESE.search(t) for t in table_rows.locator("td:first-child").all_inner_texts())
    assert "糸島市" not in page.content()  # no other municipality's line
    models = page.locator("[data-testid=models-table] tbody tr")
    expect(models).to_have_count(1)
    expect(models.first).to_contain_text("レセプト点検")
    expect(models.first).to_contain_text("v1 昇格")


def test_operator_sees_every_municipality_and_downloads(server: str, page: Page,
                                                        trained_root: Path) -> None:
    errors = console_errors(page)
    _login(page, server, ADMIN)
    expect(page.get_by_test_id("tenant-name")).to_have_text("運営者（全団体）")
    rows = page.get_by_test_id("chart-row")
    expect(rows).to_have_count(13, timeout=30_000)
    assert errors == []  # the login calls nothing that refuses the admin key (/v1/whoami)
    expect(page.locator("[data-testid=cost-table] tbody tr")).to_have_count(13)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    with page.expect_download(timeout=60_000) as info:
        page.get_by_test_id("download-xlsx").click()
    table = pd.read_excel(info.value.path(), dtype={"団体コード": str})
    assert len(table) == 13 and "382108" in set(table["団体コード"])
    # written by models/downloads.py: no formula cells, codes as text ("012050"), yen as numbers
    sheet = xlsx_sheet(Path(info.value.path()).read_bytes())
    assert "012050" in xlsx_column(sheet, "団体コード")
    assert all(isinstance(v, int | float) for v in xlsx_column(sheet, "削減額（円）"))
    with page.expect_download(timeout=60_000) as info:
        page.get_by_test_id("download-csv").click()
    codes = csv_column(Path(info.value.path()).read_bytes(), "団体コード")
    assert len(codes) == 13 and "012050" in codes


def test_wrong_key_shows_a_japanese_error(server: str, page: Page) -> None:
    _login(page, server, "kyodo-demo-nope")
    expect(page.get_by_test_id("alert-message")).to_contain_text("APIキーが正しくありません")
    expect(page.get_by_test_id("result-section")).to_be_hidden()
