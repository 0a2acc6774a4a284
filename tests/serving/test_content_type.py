"""A JSON endpoint sent another Content-Type answers 415 naming the header and what it takes,
in the product's error shape, on every operation of /v1/openapi.json whose body is JSON only
(the upload endpoints also take CSV, text/plain included, and name the types they take)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

KEYS = {"road_damage": "kyodo-demo-121002", "admin": "kyodo-demo-admin"}
TENANT = "kyodo-demo-232017"  # 豊橋市: care_plan, checkup_nudge, claim_screening


def _json_operations() -> list[tuple[str, str]]:
    from serving.api import app

    doc = app.openapi()
    return [(method, path) for path, ops in doc["paths"].items()
            for method, op in ops.items()
            if set(op.get("requestBody", {}).get("content", {})) == {"application/json"}]


def _call(client: TestClient, method: str, path: str, **kw: Any) -> Any:
    area = path.split("/")[2]
    key = KEYS.get(area, TENANT)
    url = re.sub(r"\{[^}]+\}", "x", path)
    return client.request(method.upper(), url, headers={
        "Authorization": f"Bearer {key}", **kw.pop("headers", {})}, **kw)


def test_there_are_json_operations() -> None:
    ops = _json_operations()
    assert len(ops) >= 7 and ("post", "/v1/checkup_nudge/score") in ops, ops


@pytest.mark.parametrize(("method", "path"), _json_operations())
def test_text_plain_is_415_naming_the_header(client: TestClient, method: str,
                                             path: str) -> None:
    r = _call(client, method, path, content=b'{"rows": []}',
              headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, (path, r.status_code, r.text)
    error = r.json()["error"]
    assert error.startswith("content-type") and "text/plain" in error, error
    assert "application/json" in error, error


def test_the_reported_case(client: TestClient) -> None:
    """POST /v1/checkup_nudge/score with text/plain named the field "" (a 422)."""
    r = client.post("/v1/checkup_nudge/score", content=b"{}", headers={
        "Authorization": f"Bearer {TENANT}", "Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == {
        "error": "content-type: text/plain is not accepted here; send the body as JSON with "
                 "'Content-Type: application/json'",
        "errors": [{"field": "content-type", "message": "content-type: text/plain is not "
                    "accepted here; send the body as JSON with 'Content-Type: "
                    "application/json'"}]}


def test_json_types_still_reach_the_model(client: TestClient) -> None:
    """application/json and application/*+json are read; a bad body is the model's 422."""
    for ctype in ("application/json", "application/json; charset=utf-8",
                  "application/merge-patch+json"):
        r = client.post("/v1/checkup_nudge/score", content=b"{}", headers={
            "Authorization": f"Bearer {TENANT}", "Content-Type": ctype})
        assert r.status_code == 422 and r.json()["error"].startswith("residents"), r.text


def test_a_body_without_content_type_is_415_and_no_body_is_the_models(
        client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TENANT}"}
    r = client.post("/v1/checkup_nudge/score", content=b"{}", headers=auth)
    assert r.status_code == 415 and "content-type: missing" in r.json()["error"], r.text
    r = client.post("/v1/checkup_nudge/score", headers=auth)
    assert r.status_code == 422, r.text
