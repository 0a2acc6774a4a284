"""The OpenAPI document is generated from types: the upload endpoints' request bodies come from
pydantic models (serving/uploads.py request_body), every $ref resolves, and the single-row
APIs are documented from their models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from serving.api import app

SERVING = Path(__file__).resolve().parents[2] / "serving"


def test_no_hand_written_request_schemas() -> None:
    """Every openapi_extra in serving/ is built by request_body from models."""
    for path in SERVING.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"openapi_extra=(\S+?)\(", text):
            assert match.group(1) == "request_body", f"{path.name}: {match.group(0)}"
        assert "openapi_extra={" not in text, path.name


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
                *(r for v in node.values() for r in _refs(v))]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_resolves_and_uploads_are_typed() -> None:
    doc = app.openapi()
    schemas = doc["components"]["schemas"]
    assert all(r.startswith("#/components/schemas/") and r.rsplit("/", 1)[1] in schemas
               for r in _refs(doc)), [r for r in _refs(doc) if r.rsplit("/", 1)[1] not in schemas]
    queue = doc["paths"]["/v1/claim_screening/queue"]["post"]["requestBody"]["content"]
    assert set(queue) == {"application/json", "text/csv", "multipart/form-data",
                          "application/octet-stream"}
    assert queue["multipart/form-data"]["schema"]["properties"]["file"]["items"] == {
        "type": "string", "format": "binary"}
    assert queue["text/csv"]["schema"]["title"] == "CsvBody"
    one = doc["paths"]["/v1/claim_screening/score_claim"]["post"]
    assert one["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ClaimIn"}
    answer = one["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/ClaimScore"}
    assert json.dumps(doc)  # serialisable as served
