"""Serving throughput: single-claim scoring next to the GET /v1/models floor, over real HTTP.

Run with `python -m bench.serving` (part of `make bench`). Trains a small claim_screening
champion in a throw-away workspace, starts `bentoml serve` on a loopback port and, for each
concurrency (1 and 32), runs GET /v1/models and POST /v1/claim_screening/score with one claim
for KYODO_BENCH_SERVING_S seconds each (default 20), reporting throughput, p50 and p99 of both
side by side. The load client runs on the same machine as the server, so on a small host they
compete for the same cores. Writes reports/bench/serving.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench import Recorder, bench_main, isolate_stores, say
from bench.httpload import Send, check_server, run_load

TASK = "claim_screening"
SECONDS = float(os.environ.get("KYODO_BENCH_SERVING_S", "20"))
CONCURRENCY = (1, 32)
KEY = {"Authorization": "Bearer kyodo-demo-402303"}
# a small champion: this benchmark measures the service, not the model
MODEL = {"generate": {"total_claims": 6000}, "model": {"n_estimators": 40}}
# issue 17's targets for one claim at concurrency 32, on the 2-core development machine
TARGETS = {("score 1 claim", 32, "throughput"): ">= 200 req/s",
           ("score 1 claim", 32, "p99"): "<= 300 ms"}


def plan() -> dict[str, Send]:
    """The floor (no model, no body) and one claim scored without explanations."""
    from serving.claim_screening import EXAMPLE_CLAIM

    body = json.dumps({"claims": [EXAMPLE_CLAIM], "explain": False}).encode()
    headers = {"content-type": "application/json"}
    return {"GET /v1/models": lambda c: c.get("/v1/models"),
            "score 1 claim": lambda c: c.post(f"/v1/{TASK}/score", content=body,
                                              headers=headers)}


def build(root: Path) -> Path:
    """generate -> train -> export -> promote a small champion; returns the workspace root."""
    from training.sandbox import build_champion, make_workspace

    return build_champion(make_workspace(root, TASK, MODEL), TASK, say)


def run(rec: Recorder, tmp: Path) -> None:
    """Both requests at each concurrency against one `bentoml serve`, results side by side."""
    from serving.launcher import bentoml_serve

    home = isolate_stores(tmp)
    rec.add("host load average (1 min) at start", os.getloadavg()[0], "procs",
            note=f"{os.cpu_count()} CPUs; other work on the host skews every number here")
    root = build(tmp / "ws")
    env = {"KYODO_ROOT": str(root), "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    requests = plan()
    say("http: starting bentoml serve ...")
    with bentoml_serve(env, root / "bentoml-serve.log") as url:
        check_server(url, requests, KEY)
        for concurrency in CONCURRENCY:
            p50 = {}
            for name, send in requests.items():
                say(f"http: {name} at concurrency {concurrency} for {SECONDS:.0f} s ...")
                load = run_load(url, send, 10_000_000, concurrency, KEY, SECONDS)
                p50[name] = load.p(50)
                note = (f"{len(load.latencies)} requests in {load.wall_s:.1f} s, concurrency "
                        f"{concurrency} (httpx threads, keep-alive, same host); server: one "
                        f"`bentoml serve` with the service's defaults; {load.errors} non-200")
                label = f"c={concurrency} {name}"
                rec.add(f"{label}: throughput", load.rps, "req/s",
                        TARGETS.get((name, concurrency, "throughput")), note)
                rec.add(f"{label}: p50", p50[name], "ms")
                rec.add(f"{label}: p99", load.p(99), "ms",
                        TARGETS.get((name, concurrency, "p99")))
                rec.add(f"{label}: errors", load.errors, "requests", 0)
            rec.add(f"c={concurrency} score 1 claim p50 / GET /v1/models p50",
                    p50["score 1 claim"] / p50["GET /v1/models"], "x")


if __name__ == "__main__":
    bench_main("serving", run)
