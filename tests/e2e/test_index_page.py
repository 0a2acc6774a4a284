"""The index page (/ and /ui) in headless Chromium against `bentoml serve`.

Slow: uses the trained claim_screening workspace, starts the service and a browser. Any visitor
lands on the list of every task page (no task is the default); a municipality's key marks its
subscribed tasks and lists them first, and the page it opens next is logged in already; the
operator's key is told where it works, on the index and on a task page, without a refused call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.configs import task_labels
from serving.launcher import bentoml_serve
from tests.e2e.conftest import BROWSER_MARKS, REPO, console_errors

CHIBA = "kyodo-demo-121002"  # 千葉市: checkup_nudge, road_damage, claim_screening
ADMIN = "kyodo-demo-admin"
SCREENSHOT = REPO / "reports" / "e2e" / "index.png"

with contextlib.suppress(ImportError):  # missing: BROWSER_MARKS skip the tests
    from playwright.sync_api import Page, expect

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bentoml serve serving.service:Kyodo` on a free port."""
    log = tmp_path_factory.mktemp("serve-index") / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(trained_root)}, log, timeout_s=90) as url:
        yield url


def _login(page: Page, key: str) -> None:
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("save-key").click()


def test_root_lists_every_task_page_and_marks_the_subscribed(server: str, page: Page) -> None:
    errors = console_errors(page)
    page.goto(f"{server}/")
    assert page.url == f"{server}/ui"
    expect(page.locator("h1")).to_have_text("業務ページ一覧")
    links = page.get_by_test_id("task-link")
    expect(links).to_have_text(list(task_labels().values()))
    expect(page.get_by_test_id("subscription").first).to_be_hidden()

    _login(page, CHIBA)
    expect(page.get_by_test_id("tenant-name")).to_have_text("千葉市（121002）")
    items = page.get_by_test_id("task-item")
    expect(items.last).to_have_attribute("data-task", "care_plan")  # not subscribed: last
    expect(items.last.get_by_test_id("subscription")).to_have_text("未契約")
    subscribed = [t for t in task_labels() if t != "care_plan"]
    for i, task in enumerate(subscribed):
        expect(items.nth(i)).to_have_attribute("data-task", task)
        expect(items.nth(i).get_by_test_id("subscription")).to_have_text("契約中")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # the key stays in this tab: the road page opens logged in
    page.locator("[data-task=road_damage] a").click()
    expect(page).to_have_url(f"{server}/ui/road_damage")
    expect(page.get_by_test_id("tenant-name")).to_have_text("千葉市（121002）")
    assert errors == []


def test_the_operator_is_told_where_its_key_works(server: str, page: Page) -> None:
    errors = console_errors(page)
    page.goto(f"{server}/ui")
    _login(page, ADMIN)
    expect(page.get_by_test_id("tenant-name")).to_have_text("運営者（全団体）")
    expect(page.get_by_test_id("alert-message")).to_contain_text("費用按分")
    expect(page.get_by_test_id("subscription").first).to_be_hidden()
    # a task page with the operator's key: said in Japanese, and none of its routes is called
    page.goto(f"{server}/ui/claim_screening")
    expect(page.get_by_test_id("tenant-name")).to_have_text("運営者（全団体）")
    expect(page.get_by_test_id("alert-message")).to_contain_text("運営者のキーでは業務ページは使えません")
    assert errors == []


def test_a_task_page_calls_nothing_for_a_non_subscriber(server: str, page: Page) -> None:
    """千葉市 on the care-plan page: told in Japanese, and neither the form's load nor a
    button sends a request the key would be refused (403)."""
    errors = console_errors(page)
    page.goto(f"{server}/ui/care_plan")
    _login(page, CHIBA)
    alert = page.get_by_test_id("alert-message")
    expect(alert).to_contain_text("千葉市 はケアプラン作成支援（care_plan）を契約していません")
    page.get_by_test_id("run-suggest").click()
    expect(alert).to_contain_text("契約していません")
    assert errors == []
