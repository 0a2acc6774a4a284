"""Benchmarks: measurements, not pass/fail tests; results go to reports/bench/<name>.json."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Wall-clock start, shared with child processes so their progress lines use the same clock.
_START = float(os.environ.setdefault("KYODO_BENCH_T0", str(time.time())))


def say(message: str) -> None:
    """Progress line with seconds since the benchmark started."""
    print(f"[{time.time() - _START:7.1f}s] {message}", flush=True)


@dataclass(frozen=True)
class Result:
    """One measurement; target is a number, a short text like '<= 60 s', or None."""

    name: str
    value: float
    unit: str
    target: float | str | None = None
    note: str = ""

    def to_dict(self) -> dict:
        """JSON form: name, value, unit, target (and note when there is one)."""
        out = {"name": self.name, "value": self.value, "unit": self.unit, "target": self.target}
        return {**out, "note": self.note} if self.note else out


@dataclass
class Recorder:
    """Collects results and prints each one as it is measured."""

    results: list[Result] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, target: float | str | None = None,
            note: str = "") -> float:
        """Record a result (value rounded for reading) and return the unrounded value."""
        self.results.append(Result(name, _round(value), unit, target, note))
        say(f"  {name}: {_fmt(value)} {unit}")
        return value


def _round(value: float) -> float:
    """Four significant digits, so the JSON stays readable."""
    return float(f"{value:.4g}") if np.isfinite(value) else float(value)


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def percentile_ms(seconds: Iterable[float], q: float) -> float:
    """The q-th percentile of durations given in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(list(seconds)) * 1000, q))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(module: str, folder: Path) -> dict[str, Any]:
    """Run `python -m <module> --child <folder>` in a fresh process (repo on PYTHONPATH) and
    return the JSON object its last stdout line holds: memory measured there starts afresh.
    Raises subprocess.CalledProcessError when the child fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", module, "--child", str(folder)],
                         capture_output=True, text=True, env=env, check=True, cwd=REPO)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def format_table(results: list[Result]) -> str:
    """Results as an aligned text table; notes go under the table, numbered."""
    width = max([len(r.name) for r in results] + [4])
    head = f"{'name':<{width}}  {'value':>12}  {'unit':<10}  {'target':<16}"
    lines, notes = [head, "-" * len(head)], []
    for r in results:
        mark = ""
        if r.note:
            notes.append(r.note)
            mark = f" [{len(notes)}]"
        target = "" if r.target is None else str(r.target)
        lines.append(f"{r.name:<{width}}  {_fmt(r.value):>12}  {r.unit:<10}  {target:<16}{mark}")
    lines += [""] + [f"[{i}] {n}" for i, n in enumerate(notes, start=1)]
    return "\n".join(lines)


def write_results(results: list[Result], name: str) -> Path:
    """Write reports/bench/<name>.json (a list of result dicts) and return its path."""
    path = REPO / "reports" / "bench" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False)
                    + "\n", encoding="utf-8")
    return path


def isolate_stores(tmp: Path) -> Path:
    """Point BentoML at a throw-away store under tmp (before anything imports it) and MLflow at
    the workspace's own store; returns the BentoML home."""
    import sys

    if "bentoml" in sys.modules:
        raise RuntimeError("bentoml was imported before BENTOML_HOME could be isolated")
    home = tmp / "bentoml"
    home.mkdir()
    os.environ["BENTOML_HOME"] = str(home)
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("KYODO_ROOT", None)
    return home


def interleaved(fns: dict[str, Callable[[Any], Any]], inputs: list[Any], block: int,
                warmup: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each fn on each input; the fns take turns every `block` inputs, so
    drift on a noisy host hits all of them alike."""
    for fn in fns.values():
        for x in inputs[:warmup]:
            fn(x)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for start in range(0, len(inputs), block):
        for name, fn in fns.items():
            for x in inputs[start:start + block]:
                t0 = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - t0)
    return times


def bench_main(task: str, run: Callable[[Recorder, Path], None]) -> None:
    """Run a task's benchmarks in a temp dir, then write and print the results (also those
    gathered before a failure)."""
    import tempfile

    rec = Recorder()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix=f"kyodo-bench-{task}-") as tmp:
            run(rec, Path(tmp))
        rec.add("bench total wall time", time.perf_counter() - t0, "s")
    finally:
        path = write_results(rec.results, task)
        print("\n" + format_table(rec.results), flush=True)
        say(f"wrote {path.relative_to(REPO)}")
