"""The checkup outreach page (/ui/checkup_nudge) in headless Chromium against `bentoml serve`.

Slow: trains the tiny checkup_nudge workspace, starts the service and a browser. Run with
`make test-slow` or `pytest -m slow tests/e2e`. Skips when Chromium or playwright is missing.
The browser fixtures mirror tests/e2e/test_reviewer_page.py.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from serving.launcher import bentoml_serve
from tests.e2e.conftest import BROWSER_MARKS, JAPANESE, REPO

KEY = "kyodo-demo-472018"  # 那覇市
SCREENSHOT = REPO / "reports" / "e2e" / "checkup_nudge.png"
PLANS = ("policy", "standard_to_all", "highest_probability")

with contextlib.suppress(ImportError):  # missing: BROWSER_MARKS skip the tests
    from playwright.sync_api import Locator, Page, expect

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(nudge_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bentoml serve serving.service:Kyodo` on a free port, serving the nudge workspace."""
    log = tmp_path_factory.mktemp("serve-nudge") / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(nudge_root)}, log, timeout_s=90) as url:
        yield url


@pytest.fixture
def roster(nudge_root: Path) -> Path:
    return nudge_root / "data" / "checkup_nudge" / "472018.csv"


def _login(page: Page, server: str, key: str = KEY) -> None:
    page.goto(f"{server}/ui/checkup_nudge")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("save-key").click()
    if key == KEY:
        expect(page.get_by_test_id("tenant-name")).to_contain_text("那覇市")


def _number(locator: Locator) -> float:
    """The first number in a cell as shown on the page ("1,234.5 人" -> 1234.5)."""
    match = re.search(r"-?[\d,]+(?:\.\d+)?", locator.inner_text())
    assert match, f"no number in {locator.inner_text()!r}"
    return float(match.group().replace(",", ""))


def _download(page: Page, test_id: str) -> Path:
    with page.expect_download(timeout=60_000) as info:
        page.get_by_test_id(test_id).click()
    assert info.value.failure() is None
    return Path(info.value.path())


@pytest.mark.slow
def test_staff_builds_outreach_list(server: str, page: Page, roster: Path) -> None:
    _login(page, server)
    expect(page).to_have_title(re.compile("特定健診"))
    expect(page.get_by_test_id("ai-note")).to_contain_text(
        "予測は過去の無作為化キャンペーンから学習したもので、効果は見込みです。")
    residents = len(pd.read_csv(roster))

    page.get_by_test_id("csv-file").set_input_files(str(roster))
    page.get_by_test_id("budget-yen").fill("50000")
    page.get_by_test_id("run-plan").click()
    rows = page.get_by_test_id("list-row")
    expect(rows.first).to_be_visible(timeout=60_000)

    # summary cards
    expect(page.get_by_test_id("sum-residents")).to_have_text(f"{residents:,} 人")
    expect(page.get_by_test_id("sum-budget")).to_contain_text("50,000円")
    assert _number(page.get_by_test_id("sum-gain")) > 0
    expect(page.get_by_test_id("sum-rate")).to_have_text(re.compile(r"^\d+\.\d% → \d+\.\d%$"))
    expect(page.get_by_test_id("sum-cost-per")).to_have_text(re.compile(r"^[\d,]+円$"))
    mailed = int(_number(page.get_by_test_id("sum-mailed")))
    assert 0 < mailed <= 500  # 50,000 yen at 85 + 15 yen a postcard

    # the list vs both baselines, read from the comparison table
    compare = page.get_by_test_id("compare-row")
    expect(compare).to_have_count(3)
    assert compare.evaluate_all("rs => rs.map(r => r.dataset.plan)") == list(PLANS)
    gains = {plan: _number(page.locator(f"[data-testid=compare-row][data-plan={plan}] "
                                        "[data-col=gain]")) for plan in PLANS}
    assert gains["policy"] == _number(page.get_by_test_id("sum-gain"))
    assert gains["policy"] >= gains["highest_probability"], gains
    arm_rows = page.get_by_test_id("arm-row")
    assert arm_rows.count() >= 1
    assert all(JAPANESE.search(t) for t in arm_rows.locator("[data-col=arm]").all_inner_texts())
    assert sum(_number(r.locator("[data-col=count]")) for r in arm_rows.all()) == mailed

    # the gain curve: three series in an inline SVG, Japanese axis labels and legend
    chart = page.get_by_test_id("gain-chart")
    series = chart.locator("[data-testid=gain-series]")
    expect(series).to_have_count(3)
    assert series.evaluate_all("gs => gs.map(g => g.dataset.series)") == list(PLANS)
    for line in series.locator("polyline").all():
        assert len((line.get_attribute("points") or "").split()) >= 3
    expect(chart.get_by_test_id("chart-x-label")).to_have_text("予算（円）")
    expect(chart.get_by_test_id("chart-y-label")).to_have_text("見込み受診者増（人）")
    expect(chart.get_by_test_id("chart-legend")).to_contain_text("受診確率の高い順（従来方式）")

    # the list: ranked rows with Japanese message types
    n = rows.count()
    assert n == mailed  # fewer than the page's 1000-row limit
    ranks = [int(r) for r in rows.evaluate_all("rs => rs.map(r => r.dataset.rank)")]
    assert ranks == sorted(ranks) and ranks[0] == 1
    arms = rows.locator("[data-col=arm]").all_inner_texts()
    assert all(JAPANESE.search(a) for a in arms) and "送付なし" not in arms
    expect(rows.first.locator("[data-col=uplift]")).to_have_text(re.compile(r"^\+\d+\.\d pt$"))
    expect(rows.first.locator("[data-col=p_after]")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(rows.first.locator("[data-col=cost]")).to_have_text("100円")
    first_id = rows.first.locator("[data-col=resident_id]").inner_text()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # downloads: the same list as files (Excel, Shift_JIS CSV, UTF-8 CSV)
    xlsx = pd.read_excel(_download(page, "download-xlsx"))
    assert list(xlsx.columns[:2]) == ["順位", "住民ID"]
    assert len(xlsx) == mailed and str(xlsx.iloc[0]["住民ID"]) == first_id
    sjis = _download(page, "download-sjis").read_bytes().decode("cp932")
    assert sjis.splitlines()[0].split(",")[0] == "順位"
    assert len(sjis.strip().splitlines()) == mailed + 1
    utf8 = _download(page, "download-csv").read_text(encoding="utf-8-sig")
    assert utf8.splitlines()[0].startswith("順位,住民ID") and first_id in utf8

    # the budget as a number of postcards
    page.get_by_test_id("mode-postcards").check()
    expect(page.get_by_test_id("budget-yen")).to_be_disabled()
    page.get_by_test_id("postcards").fill("100")
    expect(page.get_by_test_id("budget-hint")).to_contain_text("10,000円")
    page.get_by_test_id("run-plan").click()
    expect(page.get_by_test_id("sum-budget")).to_contain_text("10,000円", timeout=60_000)
    assert 0 < _number(page.get_by_test_id("sum-mailed")) <= 100
    expect(rows).to_have_count(int(_number(page.get_by_test_id("sum-mailed"))))


@pytest.mark.slow
def test_bad_age_shows_api_error(server: str, page: Page, roster: Path, tmp_path: Path,
                                 ) -> None:
    lines = roster.read_text(encoding="utf-8").splitlines()
    age = lines[0].split(",").index("age")
    cells = lines[5].split(",")  # CSV line 6 (the header is line 1)
    cells[age] = "sixty"  # not a number (an age of 39 is no error: see the fiscal-year rule)
    lines[5] = ",".join(cells)
    bad = tmp_path / "age-sixty.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")

    _login(page, server)
    page.get_by_test_id("csv-file").set_input_files(str(bad))
    page.get_by_test_id("budget-yen").fill("50000")
    page.get_by_test_id("run-plan").click()
    alert = page.get_by_test_id("alert")
    expect(alert).to_contain_text("入力内容に誤りがあります", timeout=60_000)
    expect(alert).to_contain_text("age")
    expect(alert).to_contain_text("row 6")
    expect(alert).to_contain_text("sixty")
    expect(page.get_by_test_id("result-box")).to_be_hidden()
    expect(page.get_by_test_id("list-row")).to_have_count(0)
    expect(page.get_by_test_id("download-xlsx")).to_be_disabled()

    # a budget below one postcard is the API's error too
    page.get_by_test_id("csv-file").set_input_files(str(roster))
    page.get_by_test_id("budget-yen").fill("50")
    page.get_by_test_id("run-plan").click()
    expect(alert).to_contain_text("too small for one postcard", timeout=60_000)


@pytest.mark.slow
def test_wrong_key_shows_error(server: str, page: Page) -> None:
    _login(page, server, "kyodo-demo-000000")
    alert = page.get_by_test_id("alert")
    expect(alert).to_contain_text("APIキーが正しくありません")
    expect(alert).to_contain_text("unknown API key")
    expect(page.get_by_test_id("tenant-name")).to_have_text("未ログイン")
    assert page.evaluate("sessionStorage.getItem('kyodo.apiKey')") is None


@pytest.mark.slow
def test_page_shows_markup_as_text(server: str, page: Page, roster: Path,
                                   tmp_path: Path) -> None:
    """Resident ids come from the uploaded file: markup in them must never become DOM."""
    payload = "<img src=x onerror=window.__xss=1>"
    lines = roster.read_text(encoding="utf-8").splitlines()
    hostile = tmp_path / "hostile.csv"
    hostile.write_text("\n".join([lines[0]] + [payload + ln for ln in lines[1:]]) + "\n",
                       encoding="utf-8")
    _login(page, server)
    page.get_by_test_id("csv-file").set_input_files(str(hostile))
    page.get_by_test_id("budget-yen").fill("20000")
    page.get_by_test_id("run-plan").click()
    rows = page.get_by_test_id("list-row")
    expect(rows.first).to_be_visible(timeout=60_000)
    expect(rows.first.locator("[data-col=resident_id]")).to_contain_text(payload)
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__xss") is None
