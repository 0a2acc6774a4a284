"""The single-row APIs as BentoML's adaptive-batching APIs, under a real `bentoml serve` with
serving.batching on: concurrent one-claim requests answer what the FastAPI route answers in
process, and the errors keep the product's shape."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from serving.claim_screening import EXAMPLE_CLAIM
from serving.launcher import bentoml_serve
from tests.serving.conftest import ITOSHIMA
from tests.serving.test_fast_paths import json_claims

PATH = "/v1/claim_screening/score_claim"
# serving.batching is off by default (README: Single-row APIs): its own `bentoml serve` runs in
# `make test-slow`; the default FastAPI routes are checked in test_fast_paths.py
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batched(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The trained workspace served with serving.batching on (its own configs, the rest
    linked), two workers."""
    root = tmp_path_factory.mktemp("batched")
    for entry in trained_root.iterdir():
        if entry.name != "configs":
            (root / entry.name).symlink_to(entry)
    configs = root / "configs"
    configs.mkdir()
    for f in (trained_root / "configs").iterdir():
        (configs / f.name).write_bytes(f.read_bytes())
    platform = yaml.safe_load((configs / "platform.yaml").read_text(encoding="utf-8"))
    platform["serving"]["batching"] = True
    (configs / "platform.yaml").write_text(yaml.safe_dump(platform, allow_unicode=True),
                                           encoding="utf-8")
    with bentoml_serve({"KYODO_ROOT": str(root)}, root / "bentoml.log", workers=2) as url:
        yield url


def test_batched_claims_answer_as_alone(batched: str, trained_root: Path,
                                        client: TestClient) -> None:
    lines = pd.read_csv(trained_root / "data/claim_screening/402303.csv", dtype=str,
                        keep_default_na=False)
    claims = json_claims(lines)[:48]

    def post(claim: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{batched}{PATH}", json=claim, headers=ITOSHIMA, timeout=60)

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(post, claims))
    assert all(r.status_code == 200 for r in got), [r.text for r in got if r.status_code != 200]
    want = [client.post(PATH, json=c, headers=ITOSHIMA).json() for c in claims]
    assert [r.json() for r in got] == want
    assert got[0].headers["server"].startswith("BentoML")  # served by the BentoML API


def test_batched_errors_in_the_product_shape(batched: str) -> None:
    r = httpx.post(f"{batched}{PATH}", json=EXAMPLE_CLAIM, timeout=30)
    assert r.status_code == 401 and "API key" in r.json()["error"]
    bad = {**EXAMPLE_CLAIM, "age": 200}
    r = httpx.post(f"{batched}{PATH}", json=bad, headers=ITOSHIMA, timeout=30)
    assert r.status_code == 422 and r.json()["error"].startswith("age:"), r.text
    r = httpx.post(f"{batched}{PATH}", content=b"{not json", headers=ITOSHIMA, timeout=30)
    assert r.status_code == 422 and r.json()["error"], r.text

    def chunked() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 1_000_000

    r = httpx.post(f"{batched}{PATH}", content=chunked(), headers=ITOSHIMA, timeout=60)
    assert r.status_code == 413 and "max_row_kb" in r.json()["error"]
    # the rest of the API is still the FastAPI app's
    r = httpx.post(f"{batched}/v1/claim_screening/score", headers=ITOSHIMA, timeout=30,
                   json={"claims": [EXAMPLE_CLAIM], "explain": False})
    assert r.status_code == 200, r.text
