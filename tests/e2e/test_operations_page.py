"""The operations page (/ui/operations) in headless Chromium against `bentoml serve`.

Slow: uses the trained claim_screening workspace, runs `kyodo report pooling`, starts the service
and a browser. A tenant sees its usage, its own pooling row next to the anonymised others, the
drift of the claims it scored and the champion history; the operator sees every municipality.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.launcher import bentoml_serve
from tests.e2e.conftest import BROWSER_MARKS, JAPANESE, REPO, console_errors
from tests.serving.test_drift_api import _claims

ITOSHIMA = "kyodo-demo-402303"  # 糸島市: checkup_nudge, claim_screening
ADMIN = "kyodo-demo-admin"
SCREENSHOT = REPO / "reports" / "e2e" / "operations.png"

with contextlib.suppress(ImportError):  # missing: BROWSER_MARKS skip the tests
    from playwright.sync_api import Page, expect

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The pooling report (a few bootstrap draws), then `bentoml serve` with scored claims."""
    env = {**os.environ, "KYODO_ROOT": str(trained_root)}
    done = subprocess.run([sys.executable, "-m", "training.cli", "report", "pooling",
                           "--bootstrap", "5"], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    log = tmp_path_factory.mktemp("serve-operations") / "bentoml.log"
    try:
        with bentoml_serve({"KYODO_ROOT": str(trained_root)}, log, timeout_s=90) as url:
            claims = _claims(trained_root, "402303", 40)
            for start in (0, 20):
                r = httpx.post(f"{url}/v1/claim_screening/score",
                               json={"claims": claims[start:start + 20]},
                               headers={"Authorization": f"Bearer {ITOSHIMA}"}, timeout=60)
                assert r.status_code == 200, r.text
            yield url
    finally:  # other tests expect the workspace without the report
        (trained_root / "reports" / "pooling.json").unlink(missing_ok=True)
        shutil.rmtree(trained_root / "reports" / "pooling", ignore_errors=True)


def _login(page: Page, server: str, key: str) -> None:
    page.goto(f"{server}/ui/operations")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("save-key").click()


def _get(server: str, path: str, key: str) -> dict:
    r = httpx.get(f"{server}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_tenant_sees_its_own_gain_drift_usage_and_models(server: str, page: Page) -> None:
    _login(page, server, ITOSHIMA)
    expect(page.get_by_test_id("tenant-name")).to_contain_text("糸島市")
    usage = page.locator("[data-testid=usage-table] tbody tr")
    expect(usage).to_have_count(1, timeout=30_000)
    expect(usage.first).to_contain_text("レセプト点検")
    expect(usage.first.locator("td").nth(2)).to_have_text("2")  # two scoring requests

    # pooling: its own figures (the report's, CI included) and 12 anonymous others
    own = _get(server, "/v1/pooling", ITOSHIMA)["tasks"]["claim_screening"]["own"]
    card = page.locator("[data-testid=pool-task][data-task=claim_screening]")
    expect(card).to_have_count(1, timeout=30_000)
    expect(card.get_by_test_id("pool-ci")).not_to_have_text("—")
    assert own["ci_low"] is not None and own["others_only"] is not None
    gain = card.get_by_test_id("pool-gain").inner_text()
    assert float(gain.replace(",", "").replace("+", "")) == pytest.approx(
        own["pooled"] - own["local"], abs=0.5)
    expect(card.get_by_test_id("other-dot")).to_have_count(12)
    expect(card.get_by_test_id("own-dot")).to_have_count(1)
    assert JAPANESE.search(card.get_by_test_id("pool-verdict").inner_text())
    html = page.content()
    for other in ("伊予市", "千葉市", "382108", "121002"):
        assert other not in html, f"another municipality ({other}) is on a tenant's page"

    # drift: the 40 claims it scored, PSI per feature with a band on every counted row
    entry = page.locator("[data-testid=drift-entry][data-tenant='402303']")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("集計 40 件")
    rows = entry.locator("[data-testid=drift-row]")
    assert rows.count() > 5
    bands = ("安定", "注意", "注意（件数少）", "要確認")
    assert rows.locator("td:nth-child(4)").all_inner_texts()[0] in bands
    # 40 rows is under drift_min_rows: PSI is shown, nothing is flagged as a finding
    assert _get(server, "/v1/drift", ITOSHIMA)["drift"][0]["flagged"] == []
    drift = _get(server, "/v1/drift", ITOSHIMA)["drift"][0]
    expect(entry.locator("tr.flagged")).to_have_count(len(drift["flagged"]))
    expect(entry.locator("[data-feature=score]")).to_have_count(1)

    models = page.locator("[data-testid=models-table] tbody tr")
    expect(models).to_have_count(1)
    expect(models.first).to_contain_text("v1 昇格")

    # the page set links both ways, and a bad window is a Japanese error from the API
    expect(page.locator("nav.pages a[href='/ui/costs']")).to_have_count(1)
    page.get_by_test_id("drift-days").fill("0")
    page.get_by_test_id("drift-show").click()
    expect(page.get_by_test_id("drift-error")).to_contain_text("入力内容に誤りがあります")
    expect(page.get_by_test_id("drift-error")).to_contain_text("days")  # the API's own message


def test_tenant_page_fits_a_phone_and_the_keyboard(server: str, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server}/ui/operations")
    page.keyboard.press("Tab")  # the links to the other page come first
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/ui/costs"
    page.get_by_test_id("api-key").focus()
    page.keyboard.type(ITOSHIMA)
    page.keyboard.press("Enter")
    entry = page.get_by_test_id("drift-entry")
    expect(entry).to_have_count(1, timeout=30_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways page
    assert entry.get_attribute("open") is not None
    entry.locator("summary").focus()
    page.keyboard.press("Enter")  # a drift block folds from the keyboard
    expect(entry).not_to_have_attribute("open", "")


def test_operator_sees_every_municipality(server: str, page: Page) -> None:
    errors = console_errors(page)
    _login(page, server, ADMIN)
    expect(page.get_by_test_id("tenant-name")).to_have_text("運営者（全団体）")
    table = page.locator("[data-testid=pool-task][data-task=claim_screening]")
    expect(table.locator("[data-testid=pool-table] tbody tr")).to_have_count(13, timeout=30_000)
    expect(table.get_by_test_id("scatter-dot")).to_have_count(
        sum(r["local"] is not None for r in _get(server, "/v1/admin/pooling", ADMIN)[
            "tasks"]["claim_screening"].values()))
    expect(table).to_contain_text("伊予市")
    expect(table).to_contain_text("千葉市")
    expect(page.locator("[data-testid=drift-entry][data-tenant='402303']")).to_have_count(1)
    expect(page.get_by_test_id("usage-section")).to_be_hidden()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert errors == []  # the login calls nothing that refuses the admin key (/v1/whoami)


def test_wrong_key_shows_a_japanese_error(server: str, page: Page) -> None:
    _login(page, server, "kyodo-demo-nope")
    expect(page.get_by_test_id("alert-message")).to_contain_text("APIキーが正しくありません")
    expect(page.get_by_test_id("pooling-section")).to_be_hidden()
    expect(page.get_by_test_id("drift-section")).to_be_hidden()
