"""Operations against a real `bentoml serve`: exact metering under concurrent HTTP clients,
/metrics (kyodo's series, for the operator's key or the scrape token), the audit trail and
the costs over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.claim_screening import EXAMPLE_CLAIM
from serving.launcher import bentoml_serve
from tests.serving.conftest import ITOSHIMA

CLIENTS, PER_CLIENT = 16, 10
ADMIN = {"Authorization": "Bearer kyodo-demo-admin"}


@pytest.fixture(scope="module")
def server(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve-ops") / "bentoml.log"
    env = {"KYODO_ROOT": str(trained_root), "KYODO_METRICS_TOKEN": "scrape-only-token"}
    with bentoml_serve(env, log) as url:
        yield url


def _metered(server: str) -> int:
    usage = httpx.get(f"{server}/v1/usage", headers=ITOSHIMA).json()["usage"]
    return sum(u["requests"] for u in usage if u["endpoint"] == "score")


def _served(server: str) -> float:
    text = httpx.get(f"{server}/metrics", headers=ADMIN).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "kyodo_requests_total" and s.labels.get("tenant") == "402303"
               and s.labels.get("endpoint") == "score" and s.labels.get("status") == "200")


def test_concurrent_http_clients_are_metered_exactly(server: str) -> None:
    before, seen_before = _metered(server), _served(server)

    def client_loop(_: int) -> list[int]:
        with httpx.Client(base_url=server, headers=ITOSHIMA, timeout=60) as c:
            return [c.post("/v1/claim_screening/score",
                           json={"claims": [EXAMPLE_CLAIM]}).status_code
                    for _ in range(PER_CLIENT)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for batch in pool.map(client_loop, range(CLIENTS)) for s in batch]
    assert statuses.count(200) == CLIENTS * PER_CLIENT
    assert _metered(server) - before == CLIENTS * PER_CLIENT  # 160 requests, 160 meter rows
    assert _served(server) - seen_before == CLIENTS * PER_CLIENT  # and in /metrics


def test_metrics_endpoint_has_kyodo_histograms(server: str) -> None:
    assert httpx.get(f"{server}/metrics").status_code == 401
    r = httpx.get(f"{server}/metrics", headers={"Authorization": "Bearer scrape-only-token"})
    assert r.status_code == 200 and "text/plain" in r.headers["content-type"]
    assert 'kyodo_request_seconds_bucket{' in r.text and 'model_version="1"' in r.text


def test_audit_and_costs_over_http(server: str) -> None:
    audit = httpx.get(f"{server}/v1/audit", params={"limit": 5}, headers=ITOSHIMA).json()
    assert audit["returned"] == 5 and audit["items"][0]["task"] == "claim_screening"
    bill = httpx.get(f"{server}/v1/costs", headers=ITOSHIMA).json()["bill"]
    assert bill["by_task"]["claim_screening"]["requests"] >= CLIENTS * PER_CLIENT
