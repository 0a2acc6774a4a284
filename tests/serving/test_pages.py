"""Pages are served with the shared key form included once, filled, with no markers left."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.api import PAGES
from serving.pages import render


@pytest.mark.parametrize("page", PAGES)
def test_every_page_includes_the_key_form_once(page: str) -> None:
    text = render(page)
    assert "kyodo:" not in text and "$heading" not in text and "$hint" not in text
    for marker in ('<form id="key-form"', '<input type="password" id="api-key"',
                   '<div id="alert" ', '<button type="button" id="alert-close"'):
        assert text.count(marker) == 1, (page, marker)


def test_fragment_attributes_override_defaults(client: TestClient) -> None:
    costs = client.get("/ui/costs")
    assert costs.status_code == 200 and "APIキー（自治体または運営者）" in costs.text
    assert "sessionStorage" not in costs.text  # its own hint replaces the default
    claims = client.get("/ui/claim_screening").text
    assert "<h2>1. APIキー</h2>" in claims and "sessionStorage" in claims
    assert client.get("/ui/no_such_page").status_code == 404
