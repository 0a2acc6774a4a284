"""Pages are served with the shared fragments (key form, header) included once, filled, with no
markers left; / and /ui are the index of every task page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from models.configs import task_labels
from serving.api import PAGES
from serving.pages import INDEX, render, task_page

HEADER = ('<div class="tenant" id="tenant-box" data-testid="tenant-box">\n'
          '    <span id="tenant-name" data-testid="tenant-name">未ログイン</span>\n  </div>\n'
          '</header>')


@pytest.mark.parametrize("page", (*PAGES, INDEX))
def test_every_page_includes_the_key_form_once(page: str) -> None:
    text = render(page)
    assert "kyodo:" not in text and "$heading" not in text and "$hint" not in text
    for marker in ('<form id="key-form"', '<input type="password" id="api-key"',
                   '<div id="alert" ', '<button type="button" id="alert-close"'):
        assert text.count(marker) == 1, (page, marker)


@pytest.mark.parametrize("page", (*PAGES, INDEX))
def test_every_page_includes_the_header_once(page: str) -> None:
    text = render(page)
    assert "$title" not in text and "$sub" not in text and "$nav" not in text
    assert text.count("<header>") == 1 and text.count(HEADER) == 1, page
    assert text.index("</header>") < text.index("<main>")
    assert re.search(r"<h1>[^<]+</h1>\n    <div class=\"sub\">[^<]+ ― kyodo 共同利用型クラウド"
                     r"</div>", text), page


@pytest.mark.parametrize("page", PAGES)
def test_no_page_repeats_the_header_markup(page: str) -> None:
    """The header lives in static/_header.html only: a page's file has the include."""
    from serving.pages import STATIC

    source = (STATIC / f"{page}.html").read_text(encoding="utf-8")
    assert "<header>" not in source and 'id="tenant-box"' not in source
    assert source.count("<!--kyodo:header ") == 1


def test_header_labels_and_nav_as_before() -> None:
    claims = render("claim_screening")
    assert "<h1>レセプト点検（国保）</h1>" in claims
    assert "AIによる点検優先順位リスト ― kyodo 共同利用型クラウド" in claims
    assert '<nav class="pages"' not in claims  # the links are the platform pages'
    for page, other in (("costs", "operations"), ("operations", "costs")):
        text = render(page)
        nav = text[text.index('<nav class="pages" aria-label="管理ページ">'):text.index("</nav>")]
        assert f'<a href="/ui/{page}" aria-current="page">' in nav
        assert f'<a href="/ui/{other}">' in nav and nav.count("<a ") == 2


def test_the_generic_task_page_gets_the_header_with_its_label() -> None:
    text = task_page("toy", "おもちゃ<&>")
    assert "<h1>おもちゃ&lt;&amp;&gt;</h1>" in text and 'data-task="toy"' in text
    assert text.count(HEADER) == 1 and "{{" not in text and "kyodo:" not in text


def test_fragment_attributes_override_defaults(client: TestClient) -> None:
    costs = client.get("/ui/costs")
    assert costs.status_code == 200 and "APIキー（自治体または運営者）" in costs.text
    assert "sessionStorage" not in costs.text  # its own hint replaces the default
    claims = client.get("/ui/claim_screening").text
    assert "<h2>1. APIキー</h2>" in claims and "sessionStorage" in claims
    assert client.get("/ui/no_such_page").status_code == 404


def test_root_and_ui_are_the_index_of_every_task_page(client: TestClient) -> None:
    """No task is anyone's landing page: / goes to /ui, which lists every task of
    configs/platform.yaml by its Japanese label, and the costs and operations pages."""
    root = client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307) and root.headers["location"] == "/ui"
    index = client.get("/ui", follow_redirects=False)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert client.get("/").text == index.text
    links = re.findall(r'<li data-task="(\w+)" data-testid="task-item"><a href="/ui/(\w+)" '
                       r'data-testid="task-link">([^<]+)</a>', index.text)
    assert [(t, label) for t, href, label in links if t == href] == list(task_labels().items())
    assert 'href="/ui/costs"' in index.text and 'href="/ui/operations"' in index.text
    assert client.get("/ui/index").status_code == 404  # only at / and /ui


def test_the_browsers_icon_request_is_no_error(client: TestClient) -> None:
    """Every page load asks for /favicon.ico; a 404 would be an error in the page's console."""
    r = client.get("/favicon.ico")
    assert r.status_code == 204 and not r.content
