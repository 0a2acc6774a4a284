"""The care-plan page (/ui/care_plan) in headless Chromium against `bentoml serve`.

Slow: trains the tiny care_plan workspace, starts the service and a browser. Run with
`make test-slow` or `pytest -m slow tests/e2e/test_care_plan_page.py`. Skips when Chromium or
playwright is missing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from serving.care_plan import EXAMPLE_PERSON
from serving.launcher import bentoml_serve
from tests.e2e.conftest import BROWSER_MARKS, JAPANESE, REPO

KEY = "kyodo-demo-232017"  # 豊橋市
SCREENSHOT = REPO / "reports" / "e2e" / "care_plan.png"

with contextlib.suppress(ImportError):  # missing: BROWSER_MARKS skip the tests
    from playwright.sync_api import Page, expect

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(care_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bentoml serve serving.service:Kyodo` on a free port, serving the care_plan workspace."""
    log = tmp_path_factory.mktemp("serve-care") / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(care_root)}, log, timeout_s=90) as url:
        yield url


@pytest.fixture
def survey_csv(tmp_path: Path) -> Path:
    """The example person's survey as a one-row CSV (Shift_JIS, bare item numbers)."""
    row = {k: v for k, v in EXAMPLE_PERSON.items() if k != "items"}
    row.update(EXAMPLE_PERSON["items"])
    path = tmp_path / "survey.csv"
    pd.DataFrame([row]).to_csv(path, index=False, encoding="cp932")
    return path


def _login(page: Page, server: str) -> None:
    page.goto(f"{server}/ui/care_plan")
    page.get_by_test_id("api-key").fill(KEY)
    page.get_by_test_id("save-key").click()
    expect(page.get_by_test_id("tenant-name")).to_contain_text("豊橋市")
    expect(page.get_by_test_id("i-6-12")).to_be_attached()


@pytest.mark.slow
def test_care_manager_gets_three_plans_and_compares_own(server: str, page: Page,
                                                        survey_csv: Path) -> None:
    _login(page, server)
    expect(page).to_have_title(re.compile("ケアプラン"))
    expect(page.get_by_test_id("ai-note")).to_contain_text("観察データ")
    assert page.locator("#groups select").count() == 74
    assert page.locator("#groups fieldset legend").first.inner_text().startswith("第1群")

    # a missing answer is caught on the page, naming the item, and focused
    page.get_by_test_id("run-suggest").click()
    expect(page.get_by_test_id("alert-message")).to_contain_text("未回答の項目")
    # named by their captions, not the caption run together with the <select>'s choices
    expect(page.get_by_test_id("alert-message")).to_contain_text("年齢、性別、独居、現在の要介護度")
    expect(page.get_by_test_id("alert-message")).not_to_contain_text("選択")

    page.get_by_test_id("csv-file").set_input_files(str(survey_csv))
    expect(page.get_by_test_id("alert-message")).to_contain_text("項目を読み込みました")
    assert page.get_by_test_id("i-1-7").input_value() == "2"
    assert page.get_by_test_id("f-care_level").input_value() == "要介護1"

    page.get_by_test_id("ex-short_stay").check()
    page.get_by_test_id("max-days").select_option("3")
    page.get_by_test_id("run-suggest").click()
    expect(page.get_by_test_id("plan-ai")).to_have_count(3, timeout=30_000)
    expect(page.get_by_test_id("plan-typical")).to_have_count(1)
    first = page.get_by_test_id("plan-ai").first
    expect(first.get_by_test_id("plan-probs")).to_contain_text("改善")
    expect(first.get_by_test_id("plan-cost")).to_contain_text("単位")
    expect(first.get_by_test_id("key-items")).to_contain_text("1-7 歩行")
    assert first.get_by_test_id("reasons").locator("li").count() >= 1
    assert re.search(r"[大中小]", first.get_by_test_id("reasons").inner_text())
    assert "短期入所" not in page.get_by_test_id("plans").inner_text().split("標準的なプラン")[0]
    assert page.get_by_test_id("bar-p_worsen").count() == 4
    assert JAPANESE.search(page.get_by_test_id("sum-level").inner_text())

    # the care manager's own plan joins the comparison
    page.get_by_test_id("own-day_service").select_option("2")
    page.get_by_test_id("own-home_help_body").select_option("3")
    page.get_by_test_id("run-own").click()
    expect(page.get_by_test_id("plan-own")).to_have_count(1, timeout=30_000)
    expect(page.get_by_test_id("plan-own")).to_contain_text("通所介護 週2日")
    assert page.get_by_test_id("bar-p_worsen").count() == 5

    # the printable view hides the forms and keeps the plans
    page.emulate_media(media="print")
    expect(page.get_by_test_id("survey-section")).to_be_hidden()
    expect(page.get_by_test_id("plans")).to_be_visible()
    expect(page.get_by_test_id("print-head")).to_contain_text("ケアプラン案")
    page.emulate_media(media="screen")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


@pytest.mark.slow
def test_server_side_errors_show_in_japanese(server: str, page: Page, survey_csv: Path) -> None:
    _login(page, server)
    page.get_by_test_id("csv-file").set_input_files(str(survey_csv))
    expect(page.get_by_test_id("alert-message")).to_contain_text("項目を読み込みました")
    page.get_by_test_id("f-care_level").select_option("要支援1")
    for service in ("home_nursing", "short_stay", "day_rehab", "home_help_body"):
        page.get_by_test_id(f"rq-{service}").check()
    page.get_by_test_id("run-suggest").click()
    expect(page.get_by_test_id("alert-message")).to_contain_text("入力内容に誤りがあります")
    expect(page.get_by_test_id("alert-message")).to_contain_text("5,032")
