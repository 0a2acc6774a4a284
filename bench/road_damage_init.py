"""road_damage: ImageNet-initialised EfficientNet-Lite0 vs the same network from scratch vs the
small ResNet (the default before issue 13), trained alike on synthetic tiles only (no real
crops: this compares initialisations) and scored on the same held-out photos, over seeds.

A one-off measurement, not a stage (README road section). On 2 cores, a subset:
    python -m bench.road_damage_init --photos 60 --epochs 3
On a GPU machine, all training photos, the configured schedule, three seeds:
    python -m bench.road_damage_init --photos 0 --epochs 0 --device cuda --seeds 0,1,2 \
        --workers 8 --data data/road_damage
Results go to reports/bench/road_damage_init.json.
"""

from __future__ import annotations

import argparse
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench import Recorder, bench_main, say
from training import data as D
from training.sandbox import make_workspace
from training.workspace import Workspace

TASK = "road_damage"
# EfficientNet's 3.4 M parameters want a smaller step and batch than the small ResNet
_EFFNET = {"architecture": "efficientnet_lite0", "learning_rate": 1e-3, "batch_size": 64,
           "freeze_blocks": 0}
CANDIDATES: dict[str, dict[str, Any]] = {
    "resnet, scratch": {"architecture": "resnet", "init": "scratch", "learning_rate": 4e-3,
                        "batch_size": 128, "freeze_blocks": 0},
    "efficientnet_lite0, scratch": {**_EFFNET, "init": "scratch"},
    "efficientnet_lite0, imagenet": {**_EFFNET, "init": "imagenet"},
}


def fit_one(root: Path, name: str, seed: int, opts: argparse.Namespace) -> dict[str, Any]:
    """Train one candidate with one seed on the (sub)set of training photos; held-out scores."""
    import torch

    torch.set_num_threads(opts.threads)
    ws = Workspace.load(root)
    task = ws.task(TASK)
    cfg = ws.task_config(task)
    train, test = task.split(cfg, D.load_pooled(ws, task, progress=False))
    if opts.photos:
        keep = train["photos"]["photo_id"].sample(opts.photos, random_state=0)
        train = {f: train[f][train[f]["photo_id"].isin(keep)].reset_index(drop=True)
                 for f in task.frames}
    update = {**CANDIDATES[name], "device": opts.device, "threads": opts.threads}
    if opts.epochs:
        update.update(epochs=opts.epochs, patience=opts.epochs)
    c = cfg.model_copy(update={"model": cfg.model.model_copy(update=update),
                               "real": cfg.real.model_copy(update={"train": False})})
    t0 = time.perf_counter()
    fitted = task.fit(c, train, seed=seed)
    seconds = time.perf_counter() - t0
    ev = task.evaluate(c, fitted, test)["overall"]
    say(f"{name}, seed {seed}: crack F1 {ev['crack_f1']}, macro F1 {ev['macro_f1']}, "
        f"{seconds:.0f} s")
    return {"name": name, "seed": seed, "seconds": seconds, "photos": len(train["photos"]),
            "parameters": fitted.assets["parameters"], "crack_f1": ev["crack_f1"],
            "macro_f1": ev["macro_f1"], "d40_f1": ev["f1"]["D40"],
            "mlit_accuracy": ev["mlit_accuracy"]}


def run(rec: Recorder, tmp: Path, opts: argparse.Namespace) -> None:
    """Generate the demo data (or copy a data folder made by `kyodo data generate`), train each
    candidate with each seed, record the held-out scores."""
    root = make_workspace(tmp / "ws", TASK, {})
    ws = Workspace.load(root)
    if opts.data is None:
        D.write_generated(ws, ws.task(TASK), progress=False)
    else:
        shutil.copytree(opts.data, ws.path("data") / TASK)
    names = [name for name in CANDIDATES for _ in opts.seeds]
    seeds = [seed for _ in CANDIDATES for seed in opts.seeds]
    with ProcessPoolExecutor(opts.workers) as pool:
        done = list(pool.map(fit_one, [root] * len(names), names, seeds, [opts] * len(names)))
    for name in CANDIDATES:
        rows = [r for r in done if r["name"] == name]
        f1s = [r["crack_f1"] for r in rows]
        note = (f"{rows[0]['photos']} training photos, {opts.epochs or 'configured'} epochs, "
                f"device {opts.device}, seeds {opts.seeds}: {f1s}; "
                f"{rows[0]['parameters']:,} parameters")
        rec.add(f"{name}: held-out tile crack F1 (mean over seeds)", float(np.mean(f1s)), "F1",
                note=note)
        rec.add(f"{name}: held-out tile crack F1 (worst seed)", min(f1s), "F1")
        for key, label, unit in (("macro_f1", "held-out tile macro-F1 (mean)", "F1"),
                                 ("d40_f1", "held-out pothole (D40) F1 (mean)", "F1"),
                                 ("mlit_accuracy", "held-out MLIT level accuracy (mean)", "share"),
                                 ("seconds", "training time", "s")):
            rec.add(f"{name}: {label}", float(np.mean([r[key] for r in rows])), unit)


def options(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m bench.road_damage_init")
    p.add_argument("--photos", type=int, default=60, help="training photos (0: all)")
    p.add_argument("--epochs", type=int, default=3, help="epochs (0: the configured schedule)")
    p.add_argument("--data", type=Path, default=None, help="a data/road_damage folder to copy")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--seeds", default="0", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--workers", type=int, default=1, help="candidates trained at once")
    p.add_argument("--threads", type=int, default=2, help="CPU threads per worker")
    return p.parse_args(argv)


if __name__ == "__main__":
    opts = options()
    bench_main("road_damage_init", lambda rec, tmp: run(rec, tmp, opts))
