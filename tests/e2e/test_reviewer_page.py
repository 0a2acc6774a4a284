"""The reviewer page (/ui/claim_screening) in headless Chromium against a real `bentoml serve`.

Slow: trains the tiny workspace, starts the service and a browser. Run with `make test-slow`
or `pytest -m slow tests/e2e`. Skips when Chromium or the playwright package is missing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from serving.launcher import bentoml_serve
from tests.e2e.conftest import BROWSER_MARKS, JAPANESE, REPO
from tests.serving.test_safe_downloads import RISKY, STARTS, csv_column
from tests.unit.test_downloads import intake_unquote

KEY = "kyodo-demo-402303"  # 糸島市
SCREENSHOT = REPO / "reports" / "e2e" / "claim_screening.png"

with contextlib.suppress(ImportError):  # missing: BROWSER_MARKS skip the tests
    from playwright.sync_api import Page, expect

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bentoml serve serving.service:Kyodo` on a free port, serving the trained workspace."""
    log = tmp_path_factory.mktemp("serve") / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(trained_root)}, log, timeout_s=90) as url:
        yield url


def _login(page: Page, server: str, key: str) -> None:
    page.goto(f"{server}/ui/claim_screening")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("save-key").click()


def _feedback(server: str, claim_id: str) -> dict[str, Any] | None:
    res = httpx.get(f"{server}/v1/claim_screening/feedback",
                    headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert res.status_code == 200, res.text
    return next((it for it in res.json()["items"] if it["claim_id"] == claim_id), None)


@pytest.mark.slow
def test_reviewer_uploads_reviews_and_records(server: str, page: Page, trained_root: Path,
                                              ) -> None:
    _login(page, server, KEY)
    expect(page).to_have_title(re.compile("レセプト点検"))
    expect(page.get_by_test_id("ai-note")).to_contain_text("最終判断は点検員が行います")
    expect(page.get_by_test_id("tenant-name")).to_contain_text("糸島市")

    # upload the month's claims; 30% so the tiny month queues enough claims to carry reasons
    page.get_by_test_id("csv-file").set_input_files(
        str(trained_root / "data" / "claim_screening" / "402303.csv"))
    page.get_by_test_id("capacity").fill("30")
    page.get_by_test_id("run-queue").click()
    rows = page.get_by_test_id("queue-row")
    expect(rows.first).to_be_visible(timeout=60_000)

    n = rows.count()
    assert n >= 2
    ranks = [int(r) for r in rows.evaluate_all("rs => rs.map(r => r.dataset.rank)")]
    assert ranks == list(range(1, n + 1))
    expect(rows.first.locator("[data-col=rank]")).to_have_text("1")
    expect(page.get_by_test_id("sum-month")).to_have_text(re.compile(r"^\d{4}-\d{2}$"))
    expect(page.get_by_test_id("sum-queued")).to_have_text(f"{n} 件")
    expect(page.get_by_test_id("sum-model")).to_have_text(re.compile(r"^v\S+"))
    # how many of the month's claims carry codes or providers without history, in Japanese
    expect(page.get_by_test_id("flag-summary")).to_have_text(
        re.compile(r"^対象月の全[\d,]+件について: .*件"))
    expect(rows.first.locator("[data-col=score]")).to_have_text(re.compile(r"^\d+\.\d%$"))
    badges = page.get_by_test_id("reason-badge")
    assert badges.count() > 0, "no reason labels in the queue"
    assert all(JAPANESE.search(t) for t in badges.all_inner_texts())
    queue_id = page.get_by_test_id("sum-queue-id").inner_text()
    assert re.fullmatch(r"[0-9a-f]{16}", queue_id)

    # the CSV download holds the same ranked list
    with page.expect_download() as info:
        page.get_by_test_id("download-csv").click()
    csv_text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    csv_lines = csv_text.strip().splitlines()
    assert csv_lines[0].startswith("順位,レセプト番号")
    assert len(csv_lines) == n + 1
    first_claim = rows.first.get_attribute("data-claim-id")
    assert first_claim and csv_lines[1].startswith(f"1,{first_claim},")

    # open the first claim: reasons / contributions, then record the outcome
    rows.first.click()
    detail = page.get_by_test_id("detail")
    expect(detail).to_be_visible()
    expect(page.get_by_test_id("detail-title")).to_contain_text(first_claim)
    expect(page.get_by_test_id("contribution-row").first).to_be_visible()
    page.get_by_test_id("fb-error-yes").check()
    page.get_by_test_id("fb-points").fill("120")
    page.get_by_test_id("fb-type").select_option("mismatch")
    page.get_by_test_id("fb-note").fill("e2e: 病名漏れを確認")
    page.get_by_test_id("fb-submit").click()
    expect(page.get_by_test_id("fb-status")).to_have_text("記録しました")
    expect(rows.first).to_have_class(re.compile(r"\breviewed\b"))
    expect(rows.first.locator("[data-col=status]")).to_contain_text("誤りあり")

    stored = _feedback(server, first_claim)
    assert stored is not None, "feedback not stored"
    assert stored["error_confirmed"] == 1
    assert stored["recovered_points"] == 120
    assert stored["error_type"] == "mismatch"
    assert stored["note"] == "e2e: 病名漏れを確認"
    assert stored["queue_id"] == queue_id

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # the list is among the past lists and reopens with the recorded outcome shown
    page.get_by_test_id("refresh-queues").click()
    past = page.locator(f"[data-testid=past-row][data-queue-id='{queue_id}']")
    expect(past).to_have_count(1)
    page.get_by_test_id("detail-close").click()
    page.reload()  # the key survives a reload (sessionStorage); the list must come back
    expect(page.get_by_test_id("tenant-name")).to_contain_text("糸島市")
    expect(page.get_by_test_id("queue-row")).to_have_count(0)
    past.get_by_test_id("open-queue").click()
    expect(rows).to_have_count(n)
    expect(rows.first.locator("[data-col=status]")).to_contain_text("誤りあり")
    expect(page.get_by_test_id("sum-queue-id")).to_have_text(queue_id)
    rows.first.click()
    expect(page.get_by_test_id("fb-error-yes")).to_be_checked()
    expect(page.get_by_test_id("fb-points")).to_have_value("120")


@pytest.mark.slow
def test_wrong_key_shows_error(server: str, page: Page) -> None:
    _login(page, server, "kyodo-demo-000000")
    alert = page.get_by_test_id("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("APIキーが正しくありません")
    expect(alert).to_contain_text("unknown API key")
    expect(page.get_by_test_id("tenant-name")).to_have_text("未ログイン")
    assert page.evaluate("sessionStorage.getItem('kyodo.apiKey')") is None


@pytest.mark.slow
def test_bad_csv_shows_api_error(server: str, page: Page, tmp_path: Path) -> None:
    _login(page, server, KEY)
    expect(page.get_by_test_id("tenant-name")).to_contain_text("糸島市")
    bad = tmp_path / "empty.csv"
    bad.write_text("claim_id,tenant_code\n", encoding="utf-8")
    page.get_by_test_id("csv-file").set_input_files(str(bad))
    page.get_by_test_id("run-queue").click()
    alert = page.get_by_test_id("alert")
    expect(alert).to_contain_text("入力内容に誤りがあります", timeout=30_000)
    expect(alert).to_contain_text("claims CSV")
    expect(page.get_by_test_id("queue-row")).to_have_count(0)


@pytest.mark.slow
def test_page_shows_markup_as_text(server: str, page: Page, trained_root: Path,
                                   tmp_path: Path) -> None:
    """Claim ids come from the uploaded file: markup in them must never become DOM."""
    payload = "<img src=x onerror=window.__xss=1>"
    source = trained_root / "data" / "claim_screening" / "402303.csv"
    lines = source.read_text(encoding="utf-8").splitlines()
    hostile = tmp_path / "hostile.csv"
    hostile.write_text("\n".join([lines[0]] + [payload + ln for ln in lines[1:]]) + "\n",
                       encoding="utf-8")
    _login(page, server, KEY)
    expect(page.get_by_test_id("tenant-name")).to_contain_text("糸島市")
    page.get_by_test_id("csv-file").set_input_files(str(hostile))
    page.get_by_test_id("run-queue").click()
    rows = page.get_by_test_id("queue-row")
    expect(rows.first).to_be_visible(timeout=60_000)
    expect(rows.first.locator("[data-col=claim_id]")).to_contain_text(payload)
    rows.first.click()
    expect(page.get_by_test_id("detail-title")).to_contain_text(payload)
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__xss") is None


@pytest.mark.slow
def test_csv_download_keeps_formula_ids_as_text(server: str, page: Page, trained_root: Path,
                                                tmp_path: Path) -> None:
    """The page writes this CSV itself (it holds the outcomes recorded on screen): claim and
    provider ids a spreadsheet would run come out quoted as models/downloads.py quotes them,
    and the upload intake's one-quote strip gives the ids back exactly."""
    lines = pd.read_csv(trained_root / "data" / "claim_screening" / "402303.csv", dtype=str,
                        keep_default_na=False)
    claims = list(dict.fromkeys(lines["claim_id"]))
    lines["claim_id"] = lines["claim_id"].map(
        {c: f"{RISKY[i % len(RISKY)]}#{c}" for i, c in enumerate(claims)})
    latest = lines[lines["service_month"] == lines["service_month"].max()]  # the queued month
    providers = list(dict.fromkeys(latest["provider_id"]))[:2]
    lines["provider_id"] = lines["provider_id"].replace(dict(zip(providers, ["@x", "-1"],
                                                                 strict=True)))
    risky = tmp_path / "formula-ids.csv"
    lines.to_csv(risky, index=False)
    _login(page, server, KEY)
    expect(page.get_by_test_id("tenant-name")).to_contain_text("糸島市")
    page.get_by_test_id("csv-file").set_input_files(str(risky))
    page.get_by_test_id("capacity").fill("100")  # every claim of the month, both providers
    page.get_by_test_id("run-queue").click()
    rows = page.get_by_test_id("queue-row")
    expect(rows.first).to_be_visible(timeout=60_000)
    shown = rows.evaluate_all("rs => rs.map(r => r.dataset.claimId)")
    assert shown and all(c.startswith(STARTS) for c in shown)

    with page.expect_download() as info:
        page.get_by_test_id("download-csv").click()
    content = Path(info.value.path()).read_bytes()
    ids = csv_column(content, "レセプト番号")
    assert not [c for c in ids if c.startswith(STARTS)]
    assert [intake_unquote(c) for c in ids] == shown
    providers_out = set(csv_column(content, "医療機関"))
    assert {"'@x", "'-1"} <= providers_out, providers_out
