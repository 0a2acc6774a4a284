"""One real `bentoml serve` over HTTP: health, readiness, scoring and a CSV queue."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.claim_screening import EXAMPLE_CLAIM
from serving.launcher import bentoml_serve
from tests.serving.conftest import ITOSHIMA


@pytest.fixture(scope="module")
def server(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real BentoML server process on a free port, stopped afterwards."""
    log = tmp_path_factory.mktemp("serve") / "bentoml.log"
    with bentoml_serve({"KYODO_ROOT": str(trained_root)}, log) as url:
        yield url


def test_health_and_readiness(server: str) -> None:
    assert httpx.get(f"{server}/healthz").status_code == 200
    assert httpx.get(f"{server}/readyz").status_code == 200
    models = httpx.get(f"{server}/v1/models").json()["models"]
    assert models[0]["task"] == "claim_screening"


def test_score_over_http(server: str) -> None:
    r = httpx.post(f"{server}/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                   headers=ITOSHIMA, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["reasons"]
    assert httpx.post(f"{server}/v1/claim_screening/score",
                      json={"claims": [EXAMPLE_CLAIM]}).status_code == 401


def test_queue_upload_over_http(server: str, trained_root: Path) -> None:
    raw = (trained_root / "data/claim_screening/402303.csv").read_bytes()
    r = httpx.post(f"{server}/v1/claim_screening/queue", headers=ITOSHIMA, timeout=60,
                   files={"file": ("claims.csv", raw, "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["rank"] == 1
    junk = httpx.post(f"{server}/v1/claim_screening/queue", headers=ITOSHIMA, timeout=60,
                      files={"file": ("x.csv", os.urandom(200_000), "text/csv")})
    assert junk.status_code in (400, 422)
    assert httpx.get(f"{server}/healthz").status_code == 200  # the worker survived


def test_openapi_page_documents_endpoints(server: str) -> None:
    spec = httpx.get(f"{server}/v1/openapi.json").json()
    assert {"/v1/claim_screening/score", "/v1/claim_screening/queue",
            "/v1/claim_screening/feedback", "/v1/models"} <= set(spec["paths"])
    assert httpx.get(f"{server}/v1/docs").status_code == 200
