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
from tests.serving.test_checkup_xml_api import roster as card_roster
from tests.serving.test_safe_downloads import (
    RISKY,
    assert_inert,
    csv_column,
    xlsx_column,
    xlsx_sheet,
)
from tests.unit.test_checkup_xml import FIXTURES as XML_DIR
from tests.unit.test_checkup_xml import ZIP

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


def _run(page: Page, roster: Path, xml: list[Path] | None = None, budget: str = "50000") -> None:
    """Pick the roster (and 特定健診 XML files), set the budget in yen and send."""
    page.get_by_test_id("csv-file").set_input_files(str(roster))
    if xml is not None:
        page.get_by_test_id("xml-files").set_input_files([str(p) for p in xml])
    page.get_by_test_id("budget-yen").fill(budget)
    page.get_by_test_id("run-plan").click()


@pytest.mark.slow
def test_checkup_xml_fills_the_roster(server: str, page: Page, nudge_root: Path,
                                      tmp_path: Path) -> None:
    """A ZIP of 特定健診 XML sent with a roster that carries 保険者番号・記号・番号: the page says
    how many were matched and filled, and the downloads send the XML again."""
    cards = tmp_path / "roster-cards.csv"
    cards.write_bytes(card_roster(nudge_root))  # ten residents, the first three in the XML
    _login(page, server)
    picker = page.get_by_test_id("xml-files")
    assert picker.get_attribute("multiple") is not None
    assert ".zip" in (picker.get_attribute("accept") or "")
    expect(page.get_by_test_id("xml-hint")).to_contain_text("保険者番号・記号・番号")

    _run(page, cards, [ZIP])
    expect(page.get_by_test_id("xml-name")).to_contain_text(ZIP.name)
    note = page.get_by_test_id("xml-note")
    expect(note).to_be_visible(timeout=60_000)
    expect(note).to_contain_text("3 件（3 人分）を読み込み、名簿の 3 人と照合しました")
    expect(note).to_contain_text("HbA1c 3 人")
    # 拡張期血圧 and HDL: known codes without a roster column
    expect(note).to_contain_text("名簿に列のない検査項目（腹囲・拡張期血圧・HDLなど）2 件")
    expect(page.get_by_test_id("alert-message")).to_contain_text("特定健診XML")
    expect(page.get_by_test_id("sum-residents")).to_have_text("10 人")

    # a download posts the roster and the ZIP again (same list, same merge); playwright does
    # not expose multipart bodies with files, so the page's fetch records the form's parts
    page.evaluate("""() => { const real = window.fetch; window.__sent = [];
        window.fetch = (url, opts) => {
            window.__sent.push([...opts.body.entries()].map(([k, v]) => k + ":" + v.name));
            return real(url, opts); }; }""")
    utf8 = _download(page, "download-csv").read_text(encoding="utf-8-sig")
    assert page.evaluate("window.__sent") == [[f"file:{cards.name}", f"file:{ZIP.name}"]]
    assert utf8.startswith("順位,住民ID")

    # single XML files, several at once
    singles = sorted(XML_DIR.glob("*.xml"))
    _run(page, cards, singles)
    expect(page.get_by_test_id("xml-name")).to_contain_text(f"{len(singles)} ファイル")
    expect(note).to_contain_text(f"{len(singles)} 件（3 人分）", timeout=60_000)

    # 取消: the next list is made from the roster alone
    page.get_by_test_id("xml-clear").click()
    expect(page.get_by_test_id("xml-name")).to_have_text("選択されていません")
    expect(page.get_by_test_id("xml-clear")).to_be_hidden()
    page.get_by_test_id("run-plan").click()
    expect(note).to_be_hidden(timeout=60_000)
    expect(page.get_by_test_id("alert-message")).not_to_contain_text("特定健診XML")


@pytest.mark.slow
def test_checkup_xml_errors_are_shown(server: str, page: Page, nudge_root: Path, roster: Path,
                                      tmp_path: Path) -> None:
    """The API's 422s for XML reach staff in Japanese: a broken document is named, and a roster
    without the card columns says which columns to add."""
    cards = tmp_path / "roster-cards.csv"
    cards.write_bytes(card_roster(nudge_root))
    broken = tmp_path / "h0000047099920260099.xml"
    broken.write_bytes((XML_DIR / "h0000047099920260001.xml").read_bytes()[:500])
    _login(page, server)
    alert = page.get_by_test_id("alert")

    _run(page, cards, [broken])
    expect(alert).to_contain_text("入力内容に誤りがあります", timeout=60_000)
    expect(alert).to_contain_text("特定健診 XML")
    expect(alert).to_contain_text(broken.name)
    expect(page.get_by_test_id("result-box")).to_be_hidden()
    expect(page.get_by_test_id("download-csv")).to_be_disabled()

    _run(page, roster, [ZIP])  # the trained roster has no 保険者番号・記号・番号
    expect(alert).to_contain_text("特定健診XMLと照合する列がありません", timeout=60_000)
    expect(alert).to_contain_text("保険者番号")

    # one XML per person, more files than a form may carry: the page says to send a ZIP
    # before uploading anything (the API's 413 says the same, tests/serving)
    one = (XML_DIR / "h0000047099920260001.xml").read_bytes()
    page.get_by_test_id("xml-files").set_input_files(
        [{"name": f"h{i:04d}.xml", "mimeType": "text/xml", "buffer": one} for i in range(200)])
    expect(page.get_by_test_id("xml-name")).to_contain_text("200 ファイル")
    sent: list[str] = []
    page.on("request", lambda req: sent.append(req.url) if "/outreach" in req.url else None)
    page.get_by_test_id("run-plan").click()
    expect(alert).to_contain_text("200 個まで", timeout=10_000)
    expect(alert).to_contain_text("ZIPにまとめて")
    assert sent == []


@pytest.mark.slow
def test_downloads_keep_formula_ids_as_text(server: str, page: Page, roster: Path,
                                            tmp_path: Path) -> None:
    """Resident ids that a spreadsheet would run (=HYPERLINK, +81..., @SUM, -2+3) come back
    inert in every download the page offers: quoted in CSV, string cells in Excel."""
    frame = pd.read_csv(roster, dtype=str, keep_default_na=False)
    frame["resident_id"] = [f"{RISKY[i % len(RISKY)]}#{i}" for i in range(len(frame))]
    risky = tmp_path / "formula-ids.csv"
    frame.to_csv(risky, index=False)
    _login(page, server)
    _run(page, risky)
    rows = page.get_by_test_id("list-row")
    expect(rows.first).to_be_visible(timeout=60_000)
    shown = rows.locator("[data-col=resident_id]").all_inner_texts()
    assert set(shown) <= set(frame["resident_id"])  # on screen exactly as uploaded

    csv = _download(page, "download-csv").read_bytes()
    sheet = xlsx_sheet(_download(page, "download-xlsx").read_bytes())  # no formula cells
    sjis = _download(page, "download-sjis").read_bytes()
    assert_inert(csv_column(csv, "住民ID"), xlsx_column(sheet, "住民ID"), shown)
    assert_inert(csv_column(sjis, "住民ID", "cp932"), xlsx_column(sheet, "住民ID"), shown)


@pytest.mark.slow
def test_a_download_error_is_shown(server: str, page: Page, roster: Path,
                                   tmp_path: Path) -> None:
    """An id Shift_JIS cannot hold: the Shift_JIS download is the API's 422 naming the
    character and pointing to UTF-8, shown on the page; the UTF-8 download still works."""
    frame = pd.read_csv(roster, dtype=str, keep_default_na=False)
    frame["resident_id"] = "𠮷-" + frame["resident_id"]
    odd = tmp_path / "jis-x-0213.csv"
    frame.to_csv(odd, index=False)
    _login(page, server)
    _run(page, odd)
    expect(page.get_by_test_id("list-row").first).to_be_visible(timeout=60_000)
    page.get_by_test_id("download-sjis").click()
    alert = page.get_by_test_id("alert")
    expect(alert).to_contain_text("入力内容に誤りがあります", timeout=60_000)
    expect(alert).to_contain_text("Shift_JIS（cp932）にない文字です")
    expect(alert).to_contain_text("𠮷")
    assert "𠮷-" in _download(page, "download-csv").read_text(encoding="utf-8-sig")
