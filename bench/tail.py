"""Where the serving bench's rare multi-second latencies come from: the service under the
diagnostic target bench/stallwatch.py (event-loop stalls, per-request log) while the load
client and a hostile chunked sender record their side, with the host's kernel counters
(TCP, softnet, CPU steal, pressure) before and after each phase.

`python -m bench.tail [isolation-thread] [isolation-proc] [floor]` (default: all three):
- isolation-thread: tenant B scoring one claim at c=8 (httpx threads, as bench/serving.py does)
  while tenant A's chunked 20 MB bodies are sent from a thread of the same process;
- isolation-proc: the same with A's bodies sent from a process of its own;
- floor: GET /v1/models at c=32 with the lean client.
Prints what it found; writes nothing but its temporary workspace. A diagnostic, not a bench.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

SECONDS = float(os.environ.get("KYODO_TAIL_S", "20"))
HOSTILE = 20_000_000
CHUNK = 1 << 16


def counters() -> dict[str, float]:
    """Kernel counters now: TCP (/proc/net/netstat, snmp), softnet drops and squeezes, the
    CPU's steal time (s), and the total stall time of the pressure files (s)."""
    got: dict[str, float] = {}
    for name in ("/proc/net/netstat", "/proc/net/snmp"):
        lines = Path(name).read_text().splitlines()
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            prefix = head.split()[0].rstrip(":")
            for k, v in zip(head.split()[1:], values.split()[1:], strict=False):
                got[f"{prefix}.{k}"] = float(v)
    for i, line in enumerate(Path("/proc/net/softnet_stat").read_text().splitlines()):
        fields = [int(x, 16) for x in line.split()]
        got[f"softnet.cpu{i}.dropped"] = fields[1]
        got[f"softnet.cpu{i}.time_squeeze"] = fields[2]
    cpu = Path("/proc/stat").read_text().split("\n")[0].split()
    got["cpu.steal_s"] = int(cpu[8]) / os.sysconf("SC_CLK_TCK")
    for res in ("cpu", "io", "memory"):
        for line in Path(f"/proc/pressure/{res}").read_text().splitlines():
            kind, *fields = line.split()
            got[f"pressure.{res}.{kind}_s"] = int(fields[-1].split("=")[1]) / 1e6
    return got


def grown(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - v, 3) for k, v in before.items() if after.get(k, v) != v}


def hostile_once(host: str, port: int, key: str) -> dict[str, Any]:
    """One chunked 20 MB JSON body to /score, as httpx sends it (64 KiB pieces, the whole body
    before reading), with the client's own timings (ms after start)."""
    t0, wall = time.perf_counter(), time.time()
    s = socket.create_connection((host, port))
    out: dict[str, Any] = {"t": wall, "port": s.getsockname()[1],
                           "connect_ms": (time.perf_counter() - t0) * 1000}
    piece = b"1," * (CHUNK // 2)
    frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
    head = (f"POST /v1/claim_screening/score HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\ncontent-type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n1\r\n[\r\n").encode()
    sent, in_send, slowest, gaps, last = 0, 0.0, 0.0, 0.0, time.perf_counter()
    try:
        s.sendall(head)
        while sent < HOSTILE:
            a = time.perf_counter()
            gaps += a - last  # between two sends: the GIL, the scheduler
            s.sendall(frame)
            last = time.perf_counter()
            in_send += last - a
            slowest = max(slowest, last - a)
            sent += len(piece)
        s.sendall(b"2\r\n1]\r\n0\r\n\r\n")
        out["send_error"] = None
    except OSError as exc:
        out["send_error"] = type(exc).__name__
    out.update(sent_mb=sent / 1e6, send_end_ms=(time.perf_counter() - t0) * 1000,
               in_send_ms=in_send * 1000, slowest_send_ms=slowest * 1000,
               between_sends_ms=gaps * 1000)
    s.settimeout(60)
    try:
        data = s.recv(65536)
        out["answer"] = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "EOF"
    except OSError as exc:
        out["answer"] = type(exc).__name__
    out["done_ms"] = (time.perf_counter() - t0) * 1000
    try:  # how the server ended the connection after its answer
        while s.recv(65536):
            pass
        out["end"] = "FIN"
    except OSError as exc:
        out["end"] = type(exc).__name__
    s.close()
    return out


def hostile_loop(host: str, port: int, key: str, seconds: float, results: Any) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        results.append(hostile_once(host, port, key)) if isinstance(results, list) \
            else results.put(hostile_once(host, port, key))


def _proc_loop(host: str, port: int, key: str, seconds: float, q: Any) -> None:
    hostile_loop(host, port, key, seconds, q)
    q.put(None)


def oversleeps(stop: threading.Event, found: list[tuple[float, float]]) -> None:
    """The client process's own stalls: a 10 ms sleep that lasted >= 100 ms (the process not
    scheduled, or its GIL held that long); (wall time, ms) each."""
    while not stop.is_set():
        a = time.perf_counter()
        time.sleep(0.01)
        late = time.perf_counter() - a
        if late >= 0.1:
            found.append((time.time() - late, late * 1000))


def stall_log(path: Path, since: float, until: float) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if since <= r["t"] <= until]


def summarize_hostile(bodies: list[dict[str, Any]], server: list[dict[str, Any]]) -> None:
    by_port = {r["client_port"]: r for r in server if r["kind"] == "request" and r["status"]}
    done = sorted(b["done_ms"] for b in bodies)
    print(f"  {len(bodies)} hostile bodies: done median {statistics.median(done):.0f} ms, "
          f"max {done[-1]:.0f} ms; answers {Counter(b['answer'] for b in bodies)}; send "
          f"errors {Counter(str(b['send_error']) for b in bodies)}; connection ends "
          f"{Counter(b['end'] for b in bodies)}")
    for b in sorted(bodies, key=lambda b: -b["done_ms"])[:5]:
        srv = by_port.get(b["port"], {})
        arrive = (srv["t"] - b["t"]) * 1000 if srv else float("nan")
        print(f"    client: done {b['done_ms']:.0f} ms (connect {b['connect_ms']:.1f}, sent "
              f"{b['sent_mb']:.1f} MB by {b['send_end_ms']:.0f} ms: in send() "
              f"{b['in_send_ms']:.0f} ms, slowest send {b['slowest_send_ms']:.0f} ms, between "
              f"sends {b['between_sends_ms']:.0f} ms; {b['send_error']}; answer {b['answer']})"
              f" | server: {_server(srv, arrive)}")


def _server(srv: dict[str, Any], arrive: float) -> str:
    """One server-side request record in a line."""
    if not srv:
        return "no record"
    return (f"arrived +{arrive:.0f} ms, {srv['bytes'] / 1e6:.1f} MB read in {srv['messages']} "
            f"pieces, waiting in receive {srv['waiting_ms']:.0f} ms (longest "
            f"{srv['longest_wait_ms']:.0f}), answered {srv['status']} at {srv['start_ms']:.0f} "
            f"ms, app {srv['ms']:.0f} ms")


def summarize_lags(rows: list[dict[str, Any]]) -> None:
    lags = [r for r in rows if r["kind"] == "lag"]
    print(f"  event-loop stalls >= 100 ms: {len(lags)}"
          + (f", max {max(r['lag_ms'] for r in lags):.0f} ms" if lags else ""))
    for r in sorted(lags, key=lambda r: -r["lag_ms"])[:6]:
        top = r["stacks"][0] if r["stacks"] else ["(no sample)", 0]
        print(f"    pid {r['pid']} {time.strftime('%H:%M:%S', time.gmtime(r['t']))}"
              f"+{r['t'] % 1:.2f} "
              f"{r['lag_ms']:.0f} ms: on CPU {r['on_cpu_ms']:.0f}, runnable-waiting "
              f"{r['runnable_ms']:.0f}, rest {r['lag_ms'] - r['on_cpu_ms'] - r['runnable_ms']:.0f}"
              f" ms, {r['major_faults']} major faults; {top[1]}x {top[0][:400]}")


def main(phases: list[str]) -> None:
    from bench import isolate_stores
    from bench.httpload import run_lean, run_load
    from bench.serving import KEY, TENANT_B, build, lean_plan, plan

    keep = os.environ.get("KYODO_TAIL_DIR")  # a workspace built by an earlier run: reused
    if keep and (Path(keep) / "ws" / "state" / "champions.json").is_file():
        tmp, home, root = Path(keep), Path(keep) / "bentoml", Path(keep) / "ws"
        os.environ.update(BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="True")
    else:
        tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="kyodo-tail-"))
        tmp.mkdir(parents=True, exist_ok=True)
        home = isolate_stores(tmp)
        root = build(tmp / "ws")
    log = tmp / f"stalls-{time.time():.0f}.jsonl"
    import yaml

    platform = root / "configs" / "platform.yaml"
    cfg = yaml.safe_load(platform.read_text(encoding="utf-8"))
    # KYODO_TAIL_LINGER=0: uvicorn's immediate close, as before serving.linger_*
    cfg["serving"]["linger_mb"] = 0 if os.environ.get("KYODO_TAIL_LINGER") == "0" else 64
    platform.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    print(f"linger_mb {cfg['serving']['linger_mb']}", flush=True)
    env = {"KYODO_ROOT": str(root), "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True",
           "KYODO_STALL_LOG": str(log)}
    from serving.launcher import served

    key = KEY["Authorization"].split()[1]
    with served(env, tmp / "serve.log", target="bench.stallwatch:Kyodo", workers=None) as (
            url, proc):
        host, port = url.rsplit("/", 1)[1].split(":")
        for phase in phases:
            print(f"== {phase} ({SECONDS:g} s), load {os.getloadavg()}", flush=True)
            before, t0 = counters(), time.time()
            quit_watch, client_stalls = threading.Event(), []
            threading.Thread(target=oversleeps, args=(quit_watch, client_stalls),
                             daemon=True).start()
            if phase == "memory":  # KYODO_TRACEMALLOC=1: where the workers' memory grows
                from bench.serving import workers_rss_mb
                from serving.launcher import worker_pids

                pids = worker_pids(proc)
                rss = workers_rss_mb(pids)
                ld = run_lean(url, lean_plan()["GET /v1/models"], 32, KEY, SECONDS)
                print(f"  floor c=32 {len(ld.latencies)} requests: workers' RSS {rss:.0f} -> "
                      f"{workers_rss_mb(pids):.0f} MB")
                for r in stall_log(log, t0 - 1, time.time() + 1):
                    if r["kind"] == "spans":
                        print(f"    pid {r['pid']} live spans {r['spans']} (ended "
                              f"{r['ended']}), held by {r['holders']}; gc {r['gc_counts']} "
                              f"{r['gc_stats']}")
                        for chain in r["chains"]:
                            print(f"      span <- {chain}")
                    if r["kind"] == "memory":
                        print(f"    pid {r['pid']} traced {r['traced_mb']:.1f} MB; grew: "
                              + "; ".join(f"{g['kb']:+.0f} kB ({g['count']:+d}) {g['where']}"
                                          for g in r["grew"][:5]))
                bodies = []
            elif phase == "floor":
                ld = run_lean(url, lean_plan()["GET /v1/models"], 32, KEY, SECONDS)
                ms = ld.latencies * 1000
                print(f"  floor c=32: {len(ms)} requests, p50 {statistics.median(ms):.1f}, "
                      f"p99 {sorted(ms)[int(len(ms) * 0.99)]:.0f}, max {ms.max():.0f} ms; "
                      f"> 300 ms: {(ms > 300).sum()}")
                for i in ms.argsort()[-5:][::-1]:
                    at = t0 + ld.done_at[i]
                    print(f"    {ms[i]:.0f} ms, answered at "
                          f"{time.strftime('%H:%M:%S', time.gmtime(at))}+{at % 1:.2f}")
                bodies: list[dict[str, Any]] = []
            elif phase == "isolation-thread":
                bodies = []
                attacker = threading.Thread(target=hostile_loop, args=(
                    host, int(port), key, SECONDS, bodies), daemon=True)
                attacker.start()
                during = run_load(url, plan()["score 1 claim"], 10_000_000, 8, TENANT_B,
                                  SECONDS)
                attacker.join(120)
                print(f"  B c=8: p99 {during.p(99):.0f} ms, max "
                      f"{during.latencies.max() * 1000:.0f} ms, {len(during.latencies)} requests")
            elif phase == "isolation-httpx":  # bench/serving.py's own hostile() thread
                from bench.serving import hostile

                refused: list[tuple[float, str]] = []
                stop = threading.Event()
                attacker = threading.Thread(target=hostile, args=(url, stop, refused),
                                            daemon=True)
                attacker.start()
                during = run_load(url, plan()["score 1 claim"], 10_000_000, 8, TENANT_B,
                                  SECONDS)
                stop.set()
                attacker.join(120)
                bodies = []
                took = sorted(t * 1000 for t, o in refused if o.endswith("(chunked)"))
                print(f"  B c=8: p99 {during.p(99):.0f} ms, max "
                      f"{during.latencies.max() * 1000:.0f} ms; A's chunked bodies (httpx): "
                      f"{len(took)}, median {statistics.median(took):.0f} ms, slowest "
                      f"{[round(t) for t in took[-5:]]} ms; answers "
                      f"{Counter(o for _, o in refused)}")
                srv = sorted((r for r in stall_log(log, t0 - 1, time.time() + 1)
                              if r["kind"] == "request" and r["status"] == 413),
                             key=lambda r: -r["ms"])
                for r in srv[:5]:
                    print(f"    server, slowest 413s: {_server(r, float('nan'))}")
            elif phase == "isolation-proc":
                q = multiprocessing.get_context("spawn").Queue()
                p = multiprocessing.get_context("spawn").Process(
                    target=_proc_loop, args=(host, int(port), key, SECONDS, q))
                p.start()
                during = run_load(url, plan()["score 1 claim"], 10_000_000, 8, TENANT_B,
                                  SECONDS)
                bodies = []
                while (item := q.get(timeout=120)) is not None:
                    bodies.append(item)
                p.join()
                print(f"  B c=8: p99 {during.p(99):.0f} ms, max "
                      f"{during.latencies.max() * 1000:.0f} ms, {len(during.latencies)} requests")
            else:
                raise SystemExit(f"unknown phase {phase}")
            quit_watch.set()
            print(f"  client process stalls >= 100 ms: {len(client_stalls)}: " + ", ".join(
                f"{time.strftime('%H:%M:%S', time.gmtime(t))}+{t % 1:.2f} {ms:.0f} ms"
                for t, ms in client_stalls[:8]))
            time.sleep(0.5)
            t1 = time.time()
            rows = stall_log(log, t0 - 1, t1 + 1)
            if bodies:
                summarize_hostile(bodies, rows)
            summarize_lags(rows)
            pauses = [r for r in rows if r["kind"] == "gc"]
            if pauses:
                print(f"  full collections: {len(pauses)}; ms in order: "
                      + ", ".join(f"{r['ms']:.0f}" for r in pauses[:40])
                      + f"; objects tracked after the last: {pauses[-1]['tracked']}")
            slow = [r for r in rows if r["kind"] == "request" and r["status"] != 413]
            print(f"  requests >= 200 ms inside the app (not 413): {len(slow)}")
            print(f"  kernel counters grew: {grown(before, counters())}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["isolation-thread", "isolation-proc", "floor"])
