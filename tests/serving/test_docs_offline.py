"""/v1/docs works on a network without internet: Swagger UI's files come from this service.

FastAPI's default page loads them from cdn.jsdelivr.net, so an offline municipal network got a
blank page (the README promises no internet at run time). No runtime is needed for the docs.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from serving.api import app
from serving.docs import ASSET_URL, ASSETS


def test_docs_page_loads_nothing_from_outside() -> None:
    with TestClient(app) as client:
        page = client.get("/v1/docs")
        assert page.status_code == 200
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert refs and all(r.startswith(ASSET_URL + "/") for r in refs), refs
        assert "/v1/openapi.json" in page.text
        for ref in refs:
            got = client.get(ref)
            assert got.status_code == 200, ref
            assert got.headers["content-type"] == ASSETS[ref.rsplit("/", 1)[1]]
        script = client.get(f"{ASSET_URL}/swagger-ui-bundle.js")
        assert b"SwaggerUIBundle" in script.content and len(script.content) > 100_000
        missing = client.get(f"{ASSET_URL}/..%2Fsecret.py")
        assert missing.status_code == 404 and "error" in missing.json()
