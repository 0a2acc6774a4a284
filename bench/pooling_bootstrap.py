"""Pooling report: where one municipality's time goes, and the bootstrap metric both ways.

Run with `python -m bench.pooling_bootstrap [--task care_plan] [--tenant CODE] [--resamples 5]`
in a trained workspace (`make train`; KYODO_ROOT or the repository root). For one municipality
it times what `kyodo report pooling` does (local-only fit, others-only fit, the bootstrap) and
evaluates, on the same resamples, the metric as the report computed it before (the task's
pooling_metric on each resample) and as it does now (Task.bootstrap_metric: for care_plan each
held-out person's recommendation worked out once). The values must be equal to the last bit:
the run exits 1 naming the resample if one is not. Writes reports/bench/pooling_bootstrap.json.
Not part of `make bench`: it fits two models of the demo's size (minutes).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from typing import Any

import numpy as np

from bench import Recorder, format_table, say, write_results
from models.task import AnyTask, Frames
from training import data as D
from training.pooling import fit_or_none, headline, resample
from training.workspace import Workspace

NAME = "pooling_bootstrap"


def main(argv: list[str] | None = None) -> int:
    """Measure, compare, write the JSON; 1 when a resample's values differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="care_plan")
    parser.add_argument("--tenant", help="municipality code (default: the first one)")
    parser.add_argument("--resamples", type=int, default=5)
    args = parser.parse_args(argv)
    ws = Workspace.load()
    task = ws.task(args.task)
    cfg = ws.task_config(task)
    pooled = pickle.loads((ws.root / "build" / task.name / "model.pkl").read_bytes())
    train_part, test = task.split(cfg, D.load_pooled(ws, task, progress=False))
    codes = sorted(test[task.frames[0]]["tenant_code"].unique())
    code = args.tenant or codes[0]
    rec = Recorder()
    say(f"{task.name} {code}: {len(test[task.frames[0]].query('tenant_code == @code'))} "
        f"held-out rows; fits with task.comparison_config")
    local_test = task.select(test, [code])
    fit_cfg = task.comparison_config(cfg)
    t0 = time.perf_counter()
    local = fit_or_none(task, fit_cfg, task.select(train_part, [code]), ws.platform.seed)
    rec.add("local-only fit", time.perf_counter() - t0, "s")
    t0 = time.perf_counter()
    fit_or_none(task, fit_cfg, task.select(train_part, [c for c in codes if c != code]),
                ws.platform.seed)
    rec.add("others-only fit", time.perf_counter() - t0, "s")
    models = {"pooled": pooled, **({"local-only": local} if local is not None else {})}
    differ = [compare(rec, task, cfg, name, model, local_test, args.resamples, ws.platform.seed)
              for name, model in models.items()]
    rec.add("resamples whose values differ", sum(differ), "resamples", 0)
    path = write_results(rec.results, NAME)
    print("\n" + format_table(rec.results), flush=True)
    say(f"wrote {path}")
    return 1 if sum(differ) else 0


def compare(rec: Recorder, task: AnyTask, cfg: Any, name: str, model: Any, test: Frames, n: int,
            seed: int) -> int:
    """Seconds per resample before (pooling_metric per resample) and now (bootstrap_metric,
    with its one-off setup), on the same n resamples; the number that differ."""
    t0 = time.perf_counter()
    now = task.bootstrap_metric(cfg, model, test)
    rec.add(f"{name}: bootstrap_metric setup", time.perf_counter() - t0, "s")
    rng = np.random.default_rng(seed)
    before_s, now_s, differ = 0.0, 0.0, 0
    for i in range(n):
        sample = resample(task, test, rng)
        t0 = time.perf_counter()
        before = headline(task, cfg, model, sample)
        before_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        after = now(sample)
        now_s += time.perf_counter() - t0
        say(f"  {name} resample {i}: before {before!r}, now {after!r}")
        differ += before != after
    rec.add(f"{name}: per resample before", before_s / n, "s")
    rec.add(f"{name}: per resample now", now_s / n, "s")
    return differ


if __name__ == "__main__":
    sys.exit(main())
