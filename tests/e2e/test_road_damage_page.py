"""The crew page (/ui/road_damage) in headless Chromium at a phone viewport, against
`bentoml serve`: pick photos, upload, results worst first with overlays, correct, GeoJSON.

Slow: trains the tiny road_damage workspace, starts the service and a browser. Run with
`make test-slow` or `pytest -m slow tests/e2e/test_road_damage_page.py`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.launcher import bentoml_serve
from tests.e2e.conftest import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, JAPANESE, REPO
from tests.serving.test_safe_downloads import STARTS, csv_column
from tests.unit.test_downloads import intake_unquote

KEY = "kyodo-demo-121002"  # 千葉市
SCREENSHOT = REPO / "reports" / "e2e" / "road_damage.png"
RANK = {"none": -1, "I": 0, "II": 1, "III": 2}  # none: no level (not a road photo)
NO_FIX = REPO / "tests" / "fixtures" / "cases" / "g7_null_island.jpg"  # GPS 0°, 0°

with contextlib.suppress(ImportError):  # missing: BROWSER_MARKS skip the tests
    from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(road_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bentoml serve serving.service:Kyodo` on a free port, serving the road workspace."""
    log = tmp_path_factory.mktemp("serve-road") / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(road_root)}, log, timeout_s=90) as url:
        yield url


@pytest.fixture(scope="module")
def phone_browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.skip(f"cannot launch {CHROMIUM} with playwright: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture
def phone(phone_browser: Browser) -> Iterator[Page]:
    """A phone-sized tab (390 x 844, touch); fails on any uncaught page error."""
    context = phone_browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP",
                                        is_mobile=True, has_touch=True, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_crew_analyses_photos_on_a_phone(server: str, phone: Page, road_root: Path) -> None:
    photos = sorted((road_root / "data" / "road_damage" / "images" / "121002").glob("*.jpg"))[:4]
    photos.append(NO_FIX)
    phone.goto(f"{server}/ui/road_damage")
    expect(phone).to_have_title(re.compile("道路損傷"))
    assert JAPANESE.search(phone.locator("body").inner_text())
    phone.get_by_test_id("api-key").fill(KEY)
    phone.get_by_test_id("save-key").click()
    expect(phone.get_by_test_id("tenant-name")).to_contain_text("千葉市")

    picker = phone.get_by_test_id("photos")
    assert picker.get_attribute("accept") == "image/*,.heic,.heif"
    assert picker.get_attribute("capture")
    picker.set_input_files([str(p) for p in photos])
    expect(phone.get_by_test_id("file-name")).to_contain_text("5 枚")
    phone.get_by_test_id("analyze").click()
    cards = phone.locator("article.photo")
    expect(cards).to_have_count(5, timeout=60_000)
    no_fix = phone.locator("article.photo", has_text=NO_FIX.name)
    expect(no_fix.locator("li[data-code=gps_zero]")).to_contain_text("測位できていない")
    expect(no_fix).to_contain_text("位置情報なし")

    levels = [cards.nth(i).get_attribute("data-level") for i in range(5)]
    assert [RANK[lv] for lv in levels] == sorted((RANK[lv] for lv in levels), reverse=True)
    overlay = phone.get_by_test_id(re.compile(r"overlay-\d+")).first
    expect(overlay).to_have_attribute("src", re.compile("^blob:"))
    phone.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth)")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, "the page must not scroll sideways on a phone"

    # correct one tile of the first card: tap it, tick the true class, send
    first = cards.first
    index = first.get_attribute("data-testid").split("-")[1]
    first.get_by_test_id(f"tile-{index}-0-0").tap()
    expect(first.get_by_test_id(f"target-{index}")).to_contain_text("行1・列1")
    first.get_by_test_id(f"fix-{index}-D00").check()
    first.get_by_test_id(f"fix-wrong-{index}").tap()
    expect(phone.get_by_test_id("alert-message")).to_contain_text("訂正を記録しました")

    with phone.expect_download(timeout=60_000) as info:
        phone.get_by_test_id("download-geojson").tap()
    geo = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert geo["type"] == "FeatureCollection" and geo["features"]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOT), full_page=True)


def test_a_broken_file_is_named_in_japanese(server: str, phone: Page, tmp_path: Path,
                                            road_root: Path) -> None:
    """One unreadable file refuses the batch (422 naming it); the page says why in Japanese and
    analyses the other photos in one tap."""
    bad = tmp_path / "memo.jpg"
    bad.write_bytes(b"not a photo")
    good = sorted((road_root / "data" / "road_damage" / "images" / "121002").glob("*.jpg"))[:2]
    phone.goto(f"{server}/ui/road_damage")
    phone.get_by_test_id("api-key").fill(KEY)
    phone.get_by_test_id("save-key").click()
    expect(phone.get_by_test_id("tenant-name")).to_contain_text("千葉市")
    phone.get_by_test_id("photos").set_input_files([str(bad), *map(str, good)])
    phone.get_by_test_id("analyze").click()
    message = phone.get_by_test_id("alert-message")
    expect(message).to_contain_text("写真を診断できませんでした", timeout=30_000)
    expect(message).to_contain_text("memo.jpg: 画像ファイルではありません")
    rest = phone.get_by_test_id("analyze-rest")
    expect(rest).to_contain_text("残りの 2 枚")
    rest.tap()
    expect(phone.locator("article.photo")).to_have_count(2, timeout=60_000)
    expect(message).to_contain_text("2 枚を診断しました")
    expect(rest).to_be_hidden()


def test_exports_keep_formula_names_as_text(server: str, phone: Page, road_root: Path) -> None:
    """Photo file names are the crew's text: names a spreadsheet would run come out quoted in
    the CSV and in the GeoJSON attributes the page downloads (models/downloads.py)."""
    photos = sorted((road_root / "data" / "road_damage" / "images" / "121002").glob("*.jpg"))
    # no '"' in a name: Windows forbids it and browsers send it as %22 (WHATWG multipart)
    names = ["=HYPERLINK(x).jpg", "@SUM(A1).jpg", "+81.jpg", "-5.jpg"]
    phone.goto(f"{server}/ui/road_damage")
    phone.get_by_test_id("api-key").fill(KEY)
    phone.get_by_test_id("save-key").click()
    expect(phone.get_by_test_id("tenant-name")).to_contain_text("千葉市")
    phone.get_by_test_id("photos").set_input_files(
        [{"name": n, "mimeType": "image/jpeg", "buffer": p.read_bytes()}
         for n, p in zip(names, photos, strict=False)])
    phone.get_by_test_id("analyze").click()
    expect(phone.locator("article.photo")).to_have_count(len(names), timeout=60_000)

    with phone.expect_download(timeout=60_000) as info:
        phone.get_by_test_id("download-csv").tap()
    got = csv_column(Path(info.value.path()).read_bytes(), "photo")
    assert not [n for n in got if n.startswith(STARTS)]
    assert sorted(map(intake_unquote, got)) == sorted(names)
    with phone.expect_download(timeout=60_000) as info:
        phone.get_by_test_id("download-geojson").tap()
    geo = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    props = [f["properties"]["photo"] for f in geo["features"]]
    assert props and not [n for n in props if n.startswith(STARTS)]
    assert set(map(intake_unquote, props)) <= set(names)
