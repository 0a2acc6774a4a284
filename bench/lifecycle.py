"""Model lifecycle under load: promote and roll back claim_screening while 16 clients score.

Run with `python -m bench.lifecycle` (part of `make bench`). Builds a throw-away workspace
with a weak champion v1 and a better v2, serves it with `bentoml serve`, keeps CONCURRENCY
clients scoring, runs `promote` (v2) and `rollback` (v1) in this process, and counts failed
requests and how long the running service took to switch. Writes reports/bench/lifecycle.json.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from bench import Recorder, bench_main, isolate_stores, percentile_ms, say

TASK = "claim_screening"
CONCURRENCY = 16
PHASE_S = 6.0  # load before the promote, between promote and rollback, and after
CHECK_S = 0.5  # operations.champion_check_s of the served workspace
WEAK = {"generate": {"total_claims": 6000},
        "model": {"n_estimators": 10, "num_leaves": 4, "min_child_samples": 500}}
NORMAL = {"generate": {"total_claims": 6000}, "model": {"n_estimators": 80}}
KEY = {"Authorization": "Bearer kyodo-demo-402303"}


def _configure(root: Path, overrides: dict[str, Any]) -> None:
    from training.sandbox import make_workspace

    make_workspace(root, TASK, overrides)
    path = root / "configs" / "platform.yaml"
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["operations"] = {**cfg.get("operations", {}), "champion_check_s": CHECK_S}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


def build(root: Path) -> Any:
    """v1 (weak) promoted, v2 (better) exported; returns the workspace."""
    from training.data import write_generated
    from training.pipeline import export, train
    from training.registry import promote
    from training.workspace import Workspace

    _configure(root, WEAK)
    ws = Workspace.load(root)
    task = ws.task(TASK)
    write_generated(ws, task, progress=False)
    train(ws, task, progress=False)
    export(ws, task, progress=False)
    promote(ws, task, who="bench")
    _configure(root, NORMAL)
    train(ws, task, progress=False)
    export(ws, task, progress=False)
    return ws


class Load:
    """CONCURRENCY clients scoring until stopped: (time, ok, model version, seconds) each."""

    def __init__(self, url: str):
        from serving.claim_screening import EXAMPLE_CLAIM

        self.url, self.body = url, {"claims": [EXAMPLE_CLAIM]}
        self.log: list[tuple[float, bool, str | None, float]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(CONCURRENCY)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers=KEY, timeout=60) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = client.post(f"/v1/{TASK}/score", json=self.body)
                    ok = r.status_code == 200
                    version = r.json().get("model_version") if ok else None
                except httpx.HTTPError:
                    ok, version = False, None
                self.log.append((time.monotonic(), ok, version, time.perf_counter() - t0))

    def switched_after(self, since: float, version: str, timeout_s: float = 60) -> float:
        """Seconds from `since` until the first response from `version` started after it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            hits = [t for t, _, v, d in list(self.log) if v == version and t - d >= since]
            if hits:
                return min(hits) - since
            time.sleep(0.02)
        raise RuntimeError(f"the service never switched to version {version}")


def run(rec: Recorder, tmp: Path) -> None:
    """Promote and roll back under load against a real `bentoml serve`."""
    from serving.launcher import bentoml_serve
    from training.registry import promote, rollback

    isolate_stores(tmp)
    say("building the workspace (weak v1 champion, better v2) ...")
    ws = build(tmp / "ws")
    task = ws.task(TASK)
    with bentoml_serve({"KYODO_ROOT": str(ws.root)}, tmp / "bentoml.log") as url:
        load = Load(url)
        for t in load.threads:
            t.start()
        say(f"{CONCURRENCY} clients scoring; promote in {PHASE_S:.0f} s ...")
        time.sleep(PHASE_S)
        t_promote = time.monotonic()
        promote(ws, task, who="bench")
        promote_s = time.monotonic() - t_promote
        switch_up = load.switched_after(t_promote, "2")
        time.sleep(PHASE_S)
        t_back = time.monotonic()
        rollback(ws, task, who="bench")
        switch_back = load.switched_after(t_back, "1")
        time.sleep(PHASE_S)
        load.stop.set()
        for t in load.threads:
            t.join(60)
    ok = np.array([o for _, o, _, _ in load.log])
    versions = [v for _, _, v, _ in load.log]
    seconds = [d for *_, d in load.log]
    rec.add("requests during promote and rollback", len(ok), "requests",
            note=f"{CONCURRENCY} concurrent clients, one claim per /score call, "
                 f"champion_check_s={CHECK_S}")
    rec.add("failed requests", int((~ok).sum()), "requests", 0)
    rec.add("promote (registry + package + pointer)", promote_s, "s")
    rec.add("promote -> first response from v2", switch_up, "s", f"<= {CHECK_S + 5:g} s")
    rec.add("rollback -> first response from v1", switch_back, "s", f"<= {CHECK_S + 5:g} s")
    rec.add("responses from v2", versions.count("2"), "requests")
    rec.add("latency p50 under load", percentile_ms(seconds, 50), "ms")
    rec.add("latency p99 under load", percentile_ms(seconds, 99), "ms")


if __name__ == "__main__":
    bench_main("lifecycle", run)
