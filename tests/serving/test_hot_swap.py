"""Hot swap: `promote` and `rollback` switch the running service's model with no restart and no
failed request, under a bounded load of concurrent clients; /v1/models shows the history."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from serving.claim_screening import EXAMPLE_CLAIM
from serving.runtime import Runtime
from tests.conftest import make_workspace
from tests.serving.conftest import ITOSHIMA, bound_client
from training.workspace import Workspace

CLIENTS = 8
WEAK = {"generate": {"total_claims": 6000},
        "model": {"n_estimators": 10, "num_leaves": 4, "min_child_samples": 500}}
NORMAL = {"generate": {"total_claims": 6000}, "model": {"n_estimators": 80}}


def _configure(root: Path, overrides: dict) -> None:
    """Task config with overrides; the service checks the champion pointer every 50 ms."""
    make_workspace(root, overrides)
    path = root / "configs" / "platform.yaml"
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["operations"] = {**cfg.get("operations", {}), "champion_check_s": 0.05}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def swap_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A weak v1 promoted to champion and a better v2 exported, not yet promoted."""
    from training.data import write_generated
    from training.pipeline import export, train
    from training.registry import promote

    root = tmp_path_factory.mktemp("ws-swap")
    _configure(root, WEAK)
    ws = Workspace.load(root)
    task = ws.task("claim_screening")
    write_generated(ws, task, progress=False)
    train(ws, task, progress=False)
    assert export(ws, task, progress=False)["version"] == "1"
    assert promote(ws, task, who="test")["promoted"]
    _configure(root, NORMAL)
    train(ws, task, progress=False)
    assert export(ws, task, progress=False)["version"] == "2"
    return ws


@pytest.fixture
def swap_client(swap_ws: Workspace) -> Iterator[TestClient]:
    """The app on a runtime of the swap workspace (restoring the shared client's runtime)."""
    with bound_client(Runtime.load(swap_ws.root)) as c:
        yield c


class Load:
    """Concurrent clients scoring in a loop until stopped; records (status, model version) in
    the order responses arrive, and when each request was sent and answered (`times`): a request
    sent before a swap may be answered after a later request saw the new model."""

    def __init__(self, client: TestClient, clients: int):
        self.client, self.results = client, []
        self.times: list[tuple[float, float]] = []  # (sent, answered), monotonic s, as results
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            r = self.client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                                 headers=ITOSHIMA)
            version = r.json().get("model_version") if r.status_code == 200 else None
            with self._lock:
                self.results.append((r.status_code, version))
                self.times.append((sent, time.monotonic()))

    def wait_for(self, version: str, timeout_s: float = 60) -> int:
        """Wait until a response came from `version`; returns how many responses came before."""
        start = len(self.results)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(v == version for _, v in self.results[start:]):
                return start
            time.sleep(0.02)
        raise AssertionError(f"the service never answered with version {version}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(60)


def test_promote_and_rollback_under_load_fail_no_request(swap_ws: Workspace,
                                                         swap_client: TestClient) -> None:
    from training.registry import promote, rollback

    task = swap_ws.task("claim_screening")
    with Load(swap_client, CLIENTS) as load:
        load.wait_for("1")
        assert promote(swap_ws, task, who="tester")["promoted"]
        load.wait_for("2")
        models = swap_client.get("/v1/models").json()["models"]
        assert models[0]["version"] == "2"
        history = models[0]["champion_history"]
        assert [h["version"] for h in history] == ["1", "2"]
        assert history[-1]["by"] == "tester" and history[-1]["metric"].startswith("recovered")
        assert history[-1]["at"] and history[-1]["value"] > history[0]["value"]
        rollback(swap_ws, task, who="tester")
        rolled_back = time.monotonic()
        switched_back = load.wait_for("1")
        time.sleep(0.3)
    statuses = [s for s, _ in load.results]
    versions = [v for _, v in load.results]
    assert len(statuses) > 3 * CLIENTS and set(statuses) == {200}, set(statuses)
    assert "2" in versions[:switched_back]
    # once a client has been answered by v1 again, every request sent after that answer gets v1
    # (judged by when it was sent: one sent earlier may still be answered by v2 on a busy machine)
    seen_back = min(answered for (sent, answered), v in zip(load.times, versions, strict=True)
                    if sent > rolled_back and v == "1")
    later = [v for (sent, _), v in zip(load.times, versions, strict=True) if sent > seen_back]
    assert later and set(later) == {"1"}, later
    history = swap_client.get("/v1/models").json()["models"][0]["champion_history"]
    assert history[-1]["version"] == "1" and history[-1]["rollback_of"] == "2"
    print(f"hot swap: {len(statuses)} requests at concurrency {CLIENTS}, 0 failed, "
          f"versions {versions[0]} -> 2 -> {versions[-1]}")
