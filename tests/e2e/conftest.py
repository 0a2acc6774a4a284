"""Browser fixtures shared by the page tests: Debian's Chromium driven by playwright."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("KYODO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

# Each page-test module sets `pytestmark = BROWSER_MARKS`.
BROWSER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(sync_playwright is None,
                       reason="the playwright package is not installed "
                              "(.venv/bin/pip install playwright; make test-slow does this)"),
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason=f"Chromium not found at {CHROMIUM} "
                              "(apt-get install chromium; make test-slow does this)"),
]


def console_errors(page: Page) -> list[str]:
    """The console errors `page` logs from now on, filled in as they come: Chromium logs every
    refused fetch there ("Failed to load resource: ... status of 401")."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by playwright (no downloaded browser)."""
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Exception as exc:  # e.g. a Chromium too old or too new for this playwright
            pytest.skip(f"cannot launch {CHROMIUM} with playwright: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (own sessionStorage); fails the test on any uncaught page error."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="ja-JP",
                                  accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
