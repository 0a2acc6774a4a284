"""checkup_nudge benchmarks: outreach lists for 300,000 residents (CLI, in-process, HTTP) and
ONNX vs native uplift-model prediction.

Run with `make bench` (or `python -m bench.checkup_nudge`). Builds a throw-away workspace
(data, MLflow store, BentoML store) in a temp dir, trains and promotes a moderate-size model
there, generates a separate 300,000-resident roster for one tenant, measures, and writes
reports/bench/checkup_nudge.json.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import (
    REPO,
    Recorder,
    bench_main,
    interleaved,
    isolate_stores,
    peak_rss_mb,
    percentile_ms,
    say,
)
from bench.httpload import Send, check_server, run_load
from models.checkup_nudge.generate import GenerateSpec, generate
from models.checkup_nudge.schema import read_roster
from models.checkup_nudge.scoring import (
    OnnxArmPredictor,
    build_features,
    plan_outreach,
    score_residents,
)
from models.checkup_nudge.task import NudgeModel
from serving.launcher import bentoml_serve
from training.sandbox import build_champion_in_child, make_workspace
from training.workspace import Workspace

TASK = "checkup_nudge"
# Workspace for the trained model: moderate data, the S-learner only (no learner selection).
WORKSPACE_OVERRIDES: dict[str, Any] = {"generate": {"total_residents": 60_000}, "learner": "s"}
ROSTER_RESIDENTS = 300_000
TENANT = "472018"  # 那覇市: the API key's tenant; the roster is all theirs
API_KEY = f"kyodo-demo-{TENANT}"
TARGET_CLI_S = 10.0
TARGET_HTTP_S = 30.0
CLI_RUNS = 2
HTTP_CSV_RUNS = 2
BATCH_REPEATS = 2
SINGLE_ROW_CALLS = 1000
HTTP_REQUESTS = 300  # per single-request load run, at concurrency 1
HTTP_MAX_S = 15.0  # per load run: stop starting requests after this, whatever the count
UPLOAD_TIMEOUT_S = 300.0
LOG_TAIL = 4000  # characters of the server log shown when an HTTP step fails


# -- workspace ----------------------------------------------------------------------------------


def train_in_child(root: Path) -> Workspace:
    """The benchmark's workspace, trained in a child process (setup only, not measured)."""
    make_workspace(root, TASK, WORKSPACE_OVERRIDES)
    return Workspace.load(build_champion_in_child(root, TASK))


def model_dir(ws: Workspace) -> Path:
    """The exported package the CLI reads: model.onnx and nudge.json."""
    return ws.root / "build" / TASK / "onnx"


def native_model(ws: Workspace) -> NudgeModel:
    """The fitted native model the pipeline exported."""
    return pickle.loads((ws.root / "build" / TASK / "model.pkl").read_bytes())


def onnx_session(ws: Workspace, threads: int = 0) -> Any:
    """onnxruntime session on the exported model, set up as the CLI and serving do (no
    spinning); threads=0 is onnxruntime's default (one per core), as the CLI uses."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_dir(ws) / "model.onnx"), opts,
                                providers=["CPUExecutionProvider"])


# -- data ---------------------------------------------------------------------------------------


def write_roster(ws: Workspace, path: Path) -> bytes:
    """ROSTER_RESIDENTS synthetic residents of TENANT (a seed training never saw) as a CSV."""
    tenant = next(t for t in ws.subscribers(TASK) if t.code == TENANT)
    spec = GenerateSpec(total_residents=ROSTER_RESIDENTS)
    residents = generate([(tenant.code, tenant.population)], spec,
                         ws.platform.seed + 1)[TENANT]["residents"]
    if len(residents) != ROSTER_RESIDENTS or residents["resident_id"].duplicated().any():
        raise RuntimeError(f"expected {ROSTER_RESIDENTS:,} unique residents, got "
                           f"{residents['resident_id'].nunique():,} of {len(residents):,}")
    residents.to_csv(path, index=False)
    return path.read_bytes()


# -- CLI ----------------------------------------------------------------------------------------


def run_cli(ws: Workspace, roster: Path, out: Path) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds and peak RSS (MiB) of `kyodo nudge plan` as a subprocess, and its summary."""
    cmd = [sys.executable, "-m", "training.cli", "nudge", "plan", str(roster), "--out", str(out),
           "--model-dir", str(model_dir(ws)), "--allow-new-districts"]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        text, errors = stdout.read().decode(), stderr.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"kyodo nudge plan failed ({proc.returncode}): {errors[-2000:]}")
    return wall, usage.ru_maxrss / 1024, json.loads(text)


def cli_plan(rec: Recorder, ws: Workspace, roster: Path, tmp: Path) -> None:
    """`python -m training.cli nudge plan` on the 300k roster, wall time including startup."""
    walls = []
    for i in range(CLI_RUNS):
        out = tmp / f"cli-list-{i}.csv"
        say(f"cli: run {i + 1}/{CLI_RUNS}: kyodo nudge plan on {ROSTER_RESIDENTS:,} residents ...")
        wall, rss, summary = run_cli(ws, roster, out)
        walls.append(wall)
        rows = sum(1 for _ in out.open(encoding="utf-8-sig")) - 1
        if rows != summary["mailed"]:  # the staff list holds the mailed residents
            raise RuntimeError(f"the CLI wrote {rows:,} rows, expected {summary['mailed']:,}")
        note = ("subprocess `python -m training.cli nudge plan ROSTER --out LIST.csv "
                "--model-dir build/checkup_nudge/onnx` (default budget): interpreter start, "
                "imports, read+validate CSV, features, ONNX (default threads), plan, CSV write; "
                f"{ROSTER_RESIDENTS:,} residents, {rows:,} mailed rows written")
        rec.add(f"CLI plan 300k run {i + 1}: wall", wall, "s", f"<= {TARGET_CLI_S:.0f} s",
                note if i == 0 else "")
        rec.add(f"CLI plan 300k run {i + 1}: reported by the CLI (after imports)",
                summary["seconds"], "s")
        rec.add(f"CLI plan 300k run {i + 1}: peak RSS", rss, "MiB")
    rec.add("CLI plan 300k: throughput (median run)", ROSTER_RESIDENTS / statistics.median(walls),
            "residents/s")


# -- in-process breakdown -----------------------------------------------------------------------


@dataclass
class Timed:
    """An arm predictor that adds the seconds spent in it to `seconds`."""

    predict: Callable[[np.ndarray], np.ndarray]
    seconds: float = 0.0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.predict(X)
        self.seconds += time.perf_counter() - t0
        return out


def stopwatch(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by fn() and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def breakdown(rec: Recorder, ws: Workspace, raw: bytes, tmp: Path) -> pd.DataFrame:
    """The CLI's steps in-process, each timed; returns the validated roster."""
    assets = json.loads((model_dir(ws) / "nudge.json").read_text(encoding="utf-8"))
    say(f"in-process: the CLI's steps on {ROSTER_RESIDENTS:,} residents ...")
    t_session, session = stopwatch(lambda: onnx_session(ws))
    t_read, residents = stopwatch(lambda: read_roster(raw))
    t_feat, _ = stopwatch(lambda: build_features(residents, assets))
    timed = Timed(OnnxArmPredictor(session))
    t_score, scored = stopwatch(lambda: score_residents(residents, assets, timed))
    budget = assets["budget_yen_per_resident"] * len(scored)
    t_plan, (listing, _) = stopwatch(lambda: plan_outreach(scored, budget, assets["costs"]))
    out = tmp / "inprocess-list.csv"
    t_write, _ = stopwatch(lambda: listing.to_csv(out, index=False, encoding="utf-8-sig",
                                                  lineterminator="\r\n"))
    total = t_session + t_read + t_score + t_plan + t_write
    rec.add("in-process 300k: ONNX session load", t_session, "s",
            note=f"same steps and options as the CLI, in this process; CSV {len(raw) / 1e6:.1f} "
                 f"MB; ORT default threads ({os.cpu_count()} CPUs), no spinning")
    rec.add("in-process 300k: read_roster (decode, parse, validate)", t_read, "s")
    rec.add("in-process 300k: score_residents", t_score, "s")
    rec.add("in-process 300k:   of which build_features", t_feat, "s",
            note="timed separately on the same roster (score_residents builds them again)")
    rec.add("in-process 300k:   of which ONNX predict (6 arms)", timed.seconds, "s")
    rec.add("in-process 300k: plan_outreach", t_plan, "s")
    rec.add("in-process 300k: write CSV (utf-8-sig, CRLF)", t_write, "s")
    rec.add("in-process 300k: total", total, "s", f"<= {TARGET_CLI_S:.0f} s")
    rec.add("process peak RSS after in-process plan", peak_rss_mb(), "MiB")
    return residents


# -- ONNX vs native -----------------------------------------------------------------------------


def with_threads(model: NudgeModel, n_jobs: int) -> NudgeModel:
    """A copy of the native model whose boosters predict with n_jobs threads."""
    out = copy.deepcopy(model)
    for booster in out.uplift.boosters.values():
        booster.set_params(n_jobs=n_jobs)
    return out


def native_threads(model: NudgeModel) -> int:
    """n_jobs the boosters were fitted with."""
    return next(iter(model.uplift.boosters.values())).get_params()["n_jobs"]


def batch_rows(rec: Recorder, ws: Workspace, model: NudgeModel, X: np.ndarray) -> None:
    """Per-arm P on the whole feature matrix: native LightGBM vs ONNX, 1 thread and all cores."""
    cores = os.cpu_count() or 1
    jobs = native_threads(model)
    fns = {"native_1": with_threads(model, 1).predict,
           "onnx_1": OnnxArmPredictor(onnx_session(ws, threads=1)),
           "native_n": with_threads(model, cores).predict,
           "onnx_n": OnnxArmPredictor(onnx_session(ws, threads=cores))}
    diff = float(np.abs(fns["native_1"](X) - fns["onnx_1"](X)).max())
    say(f"batched rows: {len(X):,} rows x {BATCH_REPEATS} repeats each, alternating ...")
    times = interleaved(fns, [X] * BATCH_REPEATS, block=1)
    med = {k: statistics.median(v) for k, v in times.items()}
    label = f"{len(X):,} rows batched"
    rec.add(f"{label}: native LightGBM, 1 thread", med["native_1"], "s",
            note=f"NudgeModel.predict (learner {model.uplift.learner!r}: one predict_proba on "
                 f"the {len(model.uplift.arms)}x stacked input; fitted with n_jobs={jobs}) vs "
                 f"OnnxArmPredictor (one session run per arm); median of {BATCH_REPEATS} "
                 "alternating runs; same feature matrix as the 300k roster")
    rec.add(f"{label}: ONNX, 1 thread", med["onnx_1"], "s")
    rec.add(f"{label}: native/ONNX time ratio, 1 thread", med["native_1"] / med["onnx_1"], "x")
    rec.add(f"{label}: native LightGBM, {cores} threads", med["native_n"], "s")
    rec.add(f"{label}: ONNX, {cores} threads", med["onnx_n"], "s")
    rec.add(f"{label}: native/ONNX time ratio, {cores} threads",
            med["native_n"] / med["onnx_n"], "x")
    rec.add(f"{label}: max |native - ONNX| P(attend)", diff, "prob")


def single_rows(rec: Recorder, ws: Workspace, model: NudgeModel, X: np.ndarray) -> None:
    """Median latency of one resident's per-arm P: native LightGBM vs ONNX (1 thread)."""
    idx = np.random.default_rng(0).choice(len(X), SINGLE_ROW_CALLS, replace=False)
    rows = [X[i:i + 1].copy() for i in idx]
    fns = {"native": with_threads(model, 1).predict,
           "onnx": OnnxArmPredictor(onnx_session(ws, threads=1))}
    say(f"single rows: {SINGLE_ROW_CALLS} calls each, in alternating blocks of 100 ...")
    times = interleaved(fns, rows, block=100, warmup=50)
    med = {k: percentile_ms(v, 50) * 1000 for k, v in times.items()}
    rec.add("single resident: native LightGBM median", med["native"], "us",
            note=f"P(attend) under all {len(model.uplift.arms)} arms for one feature row; "
                 f"{SINGLE_ROW_CALLS} calls each, alternating in blocks of 100; n_jobs=1 and "
                 "ORT intra_op_num_threads=1 (as serving)")
    rec.add("single resident: ONNX median", med["onnx"], "us")
    rec.add("single resident: ONNX p99", percentile_ms(times["onnx"], 99) * 1000, "us")
    rec.add("single resident: native/ONNX latency ratio", med["native"] / med["onnx"], "x")


# -- HTTP ---------------------------------------------------------------------------------------


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def upload(url: str, raw: bytes, fmt: str) -> tuple[float, Any]:
    """Client wall seconds of one multipart roster upload to /outreach, and the response."""
    import httpx

    with httpx.Client(base_url=url, headers=_auth(), timeout=UPLOAD_TIMEOUT_S) as client:
        t0 = time.perf_counter()
        # the 300k roster is generated at a larger scale than training, so it has more districts
        params = {"format": fmt, "allow_new_districts": "true"}
        response = client.post(f"/v1/{TASK}/outreach", params=params,
                               files={"file": ("roster.csv", raw, "text/csv")})
        body = response.content
        wall = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(f"outreach {fmt}: HTTP {response.status_code}: {body[:500]!r}")
    return wall, response


def http_outreach(rec: Recorder, url: str, raw: bytes) -> None:
    """POST /outreach with the 300k roster: the CSV download (target) and the JSON answer."""
    mb = len(raw) / 1e6
    for i in range(HTTP_CSV_RUNS):
        say(f"http: outreach upload {mb:.1f} MB, format=csv, run {i + 1}/{HTTP_CSV_RUNS} ...")
        wall, response = upload(url, raw, "csv")
        listing = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")
        note = (f"client wall: multipart upload of the {ROSTER_RESIDENTS:,}-resident roster "
                f"({mb:.1f} MB) -> validate, score, plan -> download of the mailed list "
                f"({len(listing):,} rows, {len(response.content) / 1e6:.1f} MB); default budget; "
                "1 bentoml worker, KYODO_ORT_THREADS="
                f"{os.environ.get('KYODO_ORT_THREADS', '1')}; same host")
        rec.add(f"http outreach 300k format=csv run {i + 1}: wall", wall, "s",
                f"<= {TARGET_HTTP_S:.0f} s", note if i == 0 else "")
    say(f"http: outreach upload {mb:.1f} MB, format=json ...")
    wall, response = upload(url, raw, "json")
    payload = response.json()
    rec.add("http outreach 300k format=json: wall", wall, "s", f"<= {TARGET_HTTP_S:.0f} s",
            f"summary + first {payload['items_returned']:,} of {payload['items_total']:,} "
            f"mailed residents ({len(response.content) / 1e6:.2f} MB response)")


def http_plan() -> dict[str, Send]:
    """Requests to time one by one: the no-model floor and one resident's scores."""
    from serving.checkup_nudge import EXAMPLE_RESIDENT

    body = json.dumps({"residents": [EXAMPLE_RESIDENT]}).encode()
    headers = {"content-type": "application/json"}
    return {"GET /v1/models (floor)": lambda c: c.get("/v1/models"),
            "POST /score 1 resident": lambda c: c.post(f"/v1/{TASK}/score", content=body,
                                                       headers=headers)}


def http_single(rec: Recorder, url: str) -> None:
    """p50/p99 of the floor and one-resident scoring at concurrency 1."""
    plan = http_plan()
    check_server(url, plan, _auth())
    p50 = {}
    for name, send in plan.items():
        say(f"http: {name}, up to {HTTP_REQUESTS} requests / {HTTP_MAX_S:.0f} s at "
            "concurrency 1 ...")
        load = run_load(url, send, HTTP_REQUESTS, 1, _auth(), HTTP_MAX_S)
        if load.errors:
            raise RuntimeError(f"{name}: {load.errors} requests were not 200")
        p50[name] = load.p(50)
        rec.add(f"http c=1 {name}: p50", p50[name], "ms",
                note=f"{len(load.latencies)} requests (at most {HTTP_REQUESTS} or "
                     f"{HTTP_MAX_S:.0f} s), 1 httpx client, keep-alive, same host")
        rec.add(f"http c=1 {name}: p99", load.p(99), "ms")
    names = list(plan)
    rec.add(f"http c=1 {names[1]}: p50 / floor p50", p50[names[1]] / p50[names[0]], "x")


def log_tail(log: Path) -> str:
    """The last LOG_TAIL characters of the server log ('' if there is none)."""
    return log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:] if log.is_file() else ""


def http_bench(rec: Recorder, ws: Workspace, bento_home: Path, raw: bytes) -> None:
    """Everything over HTTP against a real `bentoml serve`; the server is always stopped."""
    env = {"KYODO_ROOT": str(ws.root), "BENTOML_HOME": str(bento_home),
           "BENTOML_DO_NOT_TRACK": "True"}
    log = ws.root / "bentoml-serve.log"
    say("http: starting bentoml serve serving.service:Kyodo on 127.0.0.1 ...")
    try:
        with bentoml_serve(env, log) as url:
            say(f"http: ready at {url}")
            http_single(rec, url)
            http_outreach(rec, url, raw)
    except Exception:
        say(f"http: failed; server log tail:\n{log_tail(log)}")
        raise
    say("http: server stopped")


# -- main ---------------------------------------------------------------------------------------


def run(rec: Recorder, tmp: Path) -> None:
    """Every measurement, in order; results accumulate in rec."""
    bento_home = isolate_stores(tmp)
    rec.add("host load average (1 min) at start", os.getloadavg()[0], "procs",
            note=f"{os.cpu_count()} CPUs; other work on the host skews every number here")
    ws = train_in_child(tmp / "ws")
    model = native_model(ws)
    trained = WORKSPACE_OVERRIDES["generate"]["total_residents"]
    rec.add("workspace: residents generated for training", trained, "residents",
            note="the model: configs/checkup_nudge.yaml except total_residents and learner 's' "
                 "(no auto selection between s and t, to save time); fitted learner "
                 f"{model.uplift.learner!r}, {len(model.uplift.boosters)} booster(s)")
    say(f"data: generating a {ROSTER_RESIDENTS:,}-resident roster for {TENANT} ...")
    roster = tmp / "roster.csv"
    raw = write_roster(ws, roster)
    rec.add("roster to plan: residents", ROSTER_RESIDENTS, "residents",
            note=f"generate() for {TENANT} (那覇市, the API key's tenant) alone, so every row "
                 "is that tenant's; seed = platform seed + 1 (training never saw it); "
                 f"written with DataFrame.to_csv: {len(raw) / 1e6:.1f} MB")
    cli_plan(rec, ws, roster, tmp)
    residents = breakdown(rec, ws, raw, tmp)
    X = build_features(residents, model.assets)
    del residents
    batch_rows(rec, ws, model, X)
    single_rows(rec, ws, model, X)
    del X
    http_bench(rec, ws, bento_home, raw)
    rec.add("host load average (1 min) at end", os.getloadavg()[0], "procs")


if __name__ == "__main__":
    bench_main(TASK, run)
