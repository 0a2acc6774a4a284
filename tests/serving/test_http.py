"""One real `bentoml serve` over HTTP: health, readiness, scoring and a CSV queue."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.claim_screening import EXAMPLE_CLAIM
from tests.conftest import REPO
from tests.serving.conftest import ITOSHIMA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_root: Path) -> Iterator[str]:
    """A real BentoML server process on a free port, stopped afterwards."""
    port = free_port()
    env = {**os.environ, "KYODO_ROOT": str(trained_root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "serving.service:Kyodo", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("bentoml serve did not become ready")


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
