"""claim_screening benchmarks: batch scoring throughput, ONNX vs native LightGBM, HTTP latency.

Run with `make bench` (or `python -m bench.claim_screening`). Builds a throw-away workspace
(data, MLflow store, BentoML store) in a temp dir, trains and promotes a realistic-size model
there, measures, and writes reports/bench/claim_screening.json.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import (
    Recorder,
    bench_main,
    interleaved,
    isolate_stores,
    peak_rss_mb,
    percentile_ms,
    say,
)
from bench.httpload import Send, check_server, run_load
from models.claim_screening.estimator import ClaimModel
from models.claim_screening.features import Reference
from models.claim_screening.generate import GenerateSpec, generate
from models.claim_screening.scoring import OnnxPredictor, Predictor, score_claims
from serving.launcher import bentoml_serve
from training.sandbox import build_champion_in_child, make_workspace
from training.workspace import Workspace

TASK = "claim_screening"
# Workspace for the trained model: moderate data, the model exactly as configs/ has it.
WORKSPACE_OVERRIDES = {"generate": {"total_claims": 30_000}}
BASE_CLAIMS = 150_000  # generated once (a different seed than training), tiled for larger sets
SIZES = (10_000, 100_000, 1_000_000)
ID_COLUMNS = ("claim_id", "patient_id", "provider_id")
TARGET_1M_S = 60.0
SINGLE_ROW_CALLS = 2000
BATCH_ROWS = 100_000
BATCH_REPEATS = 3
SINGLE_CLAIM_CALLS = 50
TENANT = "402303"
API_KEY = f"kyodo-demo-{TENANT}"
HTTP_PLAN = ((1, 300), (16, 1600))  # (concurrency, requests)
HTTP_MAX_S = 25.0  # per load run: stop starting requests after this, whatever the count


# -- workspace ----------------------------------------------------------------------------------


def train_in_child(root: Path) -> Workspace:
    """The benchmark's workspace, trained in a child process (setup only, not measured)."""
    make_workspace(root, TASK, WORKSPACE_OVERRIDES)
    return Workspace.load(build_champion_in_child(root, TASK))


def load_champion(ws: Workspace) -> Any:
    """The champion exactly as serving loads it (serving.runtime.load_packaged)."""
    from serving.runtime import load_packaged

    entry = json.loads((ws.path("state") / "champions.json").read_text())[TASK]
    return load_packaged(TASK, entry["tag"])


def native_model(ws: Workspace) -> ClaimModel:
    """The fitted native model the pipeline exported."""
    return pickle.loads((ws.root / "build" / TASK / "model.pkl").read_bytes())


# -- data ---------------------------------------------------------------------------------------


def base_lines(ws: Workspace) -> pd.DataFrame:
    """About BASE_CLAIMS synthetic claims for every subscriber, with a seed training never saw."""
    tenants = [(t.code, t.population) for t in ws.subscribers(TASK)]
    out = generate(tenants, GenerateSpec(total_claims=BASE_CLAIMS), ws.platform.seed + 1)
    return pd.concat([lines for lines, _ in out.values()], ignore_index=True)


def tile_claims(base: pd.DataFrame, n: int) -> pd.DataFrame:
    """Exactly n claims: copies of base (cut at the last one), ids suffixed '~k' in copy k > 0,
    so every copy is its own patients, providers and claims."""
    codes, uniques = pd.factorize(base["claim_id"])
    per = len(uniques)
    parts = []
    for k in range(math.ceil(n / per)):
        take = min(per, n - k * per)
        part = base if take == per else base[codes < take]
        if k:
            part = part.assign(**{c: part[c] + f"~{k}" for c in ID_COLUMNS})
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# -- batch scoring ------------------------------------------------------------------------------


@dataclass
class Timed:
    """A predictor that adds the seconds spent in it to `seconds`."""

    predict: Predictor
    seconds: float = 0.0

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        out = self.predict(X)
        self.seconds += time.perf_counter() - t0
        return out


def score_once(lines: pd.DataFrame, reference: Reference, session: Any,
               ) -> tuple[float, float, np.ndarray]:
    """Seconds for score_claims, seconds of it inside the ONNX model, and the feature matrix."""
    timed = Timed(OnnxPredictor(session))
    t0 = time.perf_counter()
    out = score_claims(lines, reference, timed)
    return time.perf_counter() - t0, timed.seconds, out.X


def batch_throughput(rec: Recorder, base: pd.DataFrame, champion: Any) -> np.ndarray:
    """Score 10k, 100k and 1M claims as serving does; returns the 100k feature matrix."""
    reference = Reference.from_dict(champion.assets["reference.json"]["reference"])
    threads = champion.session.get_session_options().intra_op_num_threads
    per = base["claim_id"].nunique()
    kept = None
    for n in SIZES:
        lines = tile_claims(base, n)
        copies = math.ceil(n / per)
        note = (f"{per:,} generated claims tiled x{copies} (ids suffixed per copy), cut to "
                f"{n:,}; {len(lines):,} lines; ORT intra_op_num_threads={threads} as in serving")
        say(f"batch: scoring {n:,} claims ({len(lines):,} lines) ...")
        if n == SIZES[-1]:
            rec.add("process peak RSS before largest batch", peak_rss_mb(), "MiB")
        seconds, in_model, X = score_once(lines, reference, champion.session)
        big = n == SIZES[-1]
        rec.add(f"batch {n:,} claims: wall", seconds, "s",
                f"<= {TARGET_1M_S:.0f} s" if big else None, note)
        rec.add(f"batch {n:,} claims: throughput", n / seconds, "claims/s",
                f">= {n / TARGET_1M_S:,.0f}" if big else None)
        rec.add(f"batch {n:,} claims: rules+features (outside ONNX)", seconds - in_model, "s")
        rec.add(f"batch {n:,} claims: ONNX predict", in_model, "s")
        if n == BATCH_ROWS:
            kept = X
        del lines, X
    rec.add("process peak RSS after largest batch", peak_rss_mb(), "MiB",
            note="ru_maxrss of the bench process: includes the base data and the trained model")
    return kept


def single_claim(rec: Recorder, champion: Any) -> None:
    """One example claim through serving's scoring path in-process: where HTTP time goes."""
    from serving.claim_screening import EXAMPLE_CLAIM, ClaimIn, claims_to_lines

    lines = claims_to_lines([ClaimIn.model_validate(EXAMPLE_CLAIM)], TENANT)
    reference = Reference.from_dict(champion.assets["reference.json"]["reference"])
    say(f"single claim in-process: {SINGLE_CLAIM_CALLS} score_claims calls ...")
    score_once(lines, reference, champion.session)
    runs = [score_once(lines, reference, champion.session)[:2] for _ in range(SINGLE_CLAIM_CALLS)]
    total = percentile_ms([r[0] for r in runs], 50)
    model = percentile_ms([r[1] for r in runs], 50)
    rec.add("1 claim in-process: score_claims median", total, "ms",
            note="serving.claim_screening EXAMPLE_CLAIM; no HTTP, validation, reasons or "
                 f"metering; median of {SINGLE_CLAIM_CALLS}")
    rec.add("1 claim in-process: of which ONNX predict median", model, "ms")
    rec.add("1 claim in-process: score_claims / ONNX predict", total / model, "x")


# -- ONNX vs native -----------------------------------------------------------------------------


def onnx_session(ws: Workspace, model: ClaimModel, threads: int) -> Any:
    """onnxruntime session on the combined graph exported from the native model."""
    import onnxruntime as ort

    from training.export import combine_graphs

    raw = combine_graphs(ws.task(TASK).to_onnx(model, ws.platform.onnx_opset)).SerializeToString()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])


def with_threads(model: ClaimModel, n_jobs: int) -> ClaimModel:
    """A copy of the native model predicting with n_jobs threads."""
    out = copy.deepcopy(model)
    out.classifier.set_params(n_jobs=n_jobs)
    out.stake.set_params(n_jobs=n_jobs)
    return out


def single_rows(rec: Recorder, ws: Workspace, model: ClaimModel, X: np.ndarray) -> None:
    """Median latency of one feature row per call: native LightGBM vs ONNX (1 thread)."""
    idx = np.random.default_rng(0).choice(len(X), SINGLE_ROW_CALLS, replace=False)
    rows = [X[i:i + 1].copy() for i in idx]
    jobs = model.classifier.get_params()["n_jobs"]
    fns = {"native": model.predict, "native_1": with_threads(model, 1).predict,
           "onnx": OnnxPredictor(onnx_session(ws, model, threads=1))}
    say(f"single rows: {SINGLE_ROW_CALLS} calls each, in alternating blocks of 100 ...")
    times = interleaved(fns, rows, block=100, warmup=50)
    med = {k: percentile_ms(v, 50) * 1000 for k, v in times.items()}
    rec.add("single row: native LightGBM median", med["native"], "us",
            note=f"ClaimModel.predict (predict_proba + stake.predict), n_jobs={jobs} as fitted; "
                 f"{SINGLE_ROW_CALLS} calls, alternating with the ONNX calls in blocks of 100")
    rec.add("single row: native LightGBM n_jobs=1 median", med["native_1"], "us")
    rec.add("single row: ONNX median", med["onnx"], "us",
            note="combined graph via OnnxPredictor, intra_op_num_threads=1")
    rec.add("single row: ONNX p99", percentile_ms(times["onnx"], 99) * 1000, "us")
    rec.add("single row: native/ONNX latency ratio", med["native"] / med["onnx"], "x", ">= 3x")
    rec.add("single row: native(n_jobs=1)/ONNX latency ratio", med["native_1"] / med["onnx"],
            "x", ">= 3x")


def batch_rows(rec: Recorder, ws: Workspace, model: ClaimModel, X: np.ndarray) -> None:
    """One batched call on BATCH_ROWS feature rows: native LightGBM vs ONNX, same threads."""
    cores = os.cpu_count() or 1
    jobs = model.classifier.get_params()["n_jobs"]
    onnx = OnnxPredictor(onnx_session(ws, model, threads=cores))
    fns = {"native": model.predict, "onnx": onnx}
    say(f"batched rows: {len(X):,} rows x {BATCH_REPEATS} repeats each, alternating ...")
    times = interleaved(fns, [X] * BATCH_REPEATS, block=1)
    med = {k: statistics.median(v) for k, v in times.items()}
    rec.add(f"{len(X):,} rows batched: native LightGBM", med["native"], "s",
            note=f"median of {BATCH_REPEATS} alternating runs; native n_jobs={jobs}, "
                 f"ORT intra_op_num_threads={cores}")
    rec.add(f"{len(X):,} rows batched: ONNX", med["onnx"], "s")
    rec.add(f"{len(X):,} rows batched: native/ONNX time ratio", med["native"] / med["onnx"], "x")


# -- HTTP ---------------------------------------------------------------------------------------


def http_plan() -> dict[str, Send]:
    """Requests to time: the no-model floor and single-claim scoring with and without reasons."""
    from serving.claim_screening import EXAMPLE_CLAIM

    def score(explain: bool) -> Send:
        body = json.dumps({"claims": [EXAMPLE_CLAIM], "explain": explain}).encode()
        headers = {"content-type": "application/json"}
        return lambda c: c.post(f"/v1/{TASK}/score", content=body, headers=headers)

    return {"GET /v1/models (floor)": lambda c: c.get("/v1/models"),
            "score explain=false": score(False), "score explain=true": score(True)}


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def http_latency(rec: Recorder, ws: Workspace, bento_home: Path) -> None:
    """p50/p99 of each planned request at each concurrency against `bentoml serve`."""
    env = {"KYODO_ROOT": str(ws.root), "BENTOML_HOME": str(bento_home),
           "BENTOML_DO_NOT_TRACK": "True"}
    plan = http_plan()
    log = ws.root / "bentoml-serve.log"
    say("http: starting bentoml serve serving.service:Kyodo on 127.0.0.1 ...")
    with bentoml_serve(env, log) as url:
        say(f"http: ready at {url}")
        check_server(url, plan, _auth())
        for concurrency, requests in HTTP_PLAN:
            http_round(rec, url, plan, concurrency, requests)


def http_round(rec: Recorder, url: str, plan: dict[str, Send], concurrency: int,
               requests: int) -> None:
    """All planned requests at one concurrency, back to back, and scoring over the floor."""
    threads = os.environ.get("KYODO_ORT_THREADS", "1")
    p50 = {}
    for name, send in plan.items():
        say(f"http: {name}, up to {requests} requests / {HTTP_MAX_S:.0f} s at concurrency "
            f"{concurrency} ...")
        load = run_load(url, send, requests, concurrency, _auth(), HTTP_MAX_S)
        p50[name] = load.p(50)
        target = "<= 10 ms" if "score" in name and concurrency == 1 else None
        note = (f"{len(load.latencies)} requests (at most {requests} or {HTTP_MAX_S:.0f} s), "
                f"concurrency {concurrency} (httpx client threads, keep-alive, same host); "
                f"server: 1 bentoml worker, ORT threads={threads}; {load.errors} non-200")
        rec.add(f"http c={concurrency} {name}: p50", p50[name], "ms", target, note)
        rec.add(f"http c={concurrency} {name}: p99", load.p(99), "ms")
        rec.add(f"http c={concurrency} {name}: throughput", load.rps, "req/s")
        if load.errors:
            raise RuntimeError(f"{name}: {load.errors} of {requests} requests were not 200")
    floor = p50[next(iter(plan))]
    for name in list(plan)[1:]:
        rec.add(f"http c={concurrency} {name}: p50 / floor p50", p50[name] / floor, "x")


# -- main ---------------------------------------------------------------------------------------


def run(rec: Recorder, tmp: Path) -> None:
    """Every measurement, in order; results accumulate in rec."""
    bento_home = isolate_stores(tmp)
    rec.add("host load average (1 min) at start", os.getloadavg()[0], "procs",
            note=f"{os.cpu_count()} CPUs; other work on the host skews every number here")
    ws = train_in_child(tmp / "ws")
    say(f"data: generating ~{BASE_CLAIMS:,} claims to tile ...")
    base = base_lines(ws)
    say(f"data: {base['claim_id'].nunique():,} claims, {len(base):,} lines")
    champion = load_champion(ws)
    X = batch_throughput(rec, base, champion)
    del base
    single_claim(rec, champion)
    model = native_model(ws)
    single_rows(rec, ws, model, X)
    batch_rows(rec, ws, model, X)
    http_latency(rec, ws, bento_home)
    rec.add("host load average (1 min) at end", os.getloadavg()[0], "procs")


if __name__ == "__main__":
    bench_main(TASK, run)
