"""road_damage onboarding: how real-photo figures grow with a new city's labelled crops.

A learning curve for issue 13 item 6. The "new city" is 室蘭市 (Muroran, tenant 012050), one of
the two cities the shipped model never trains on (real.HELD_OUT_CITIES). Its real RDD crops
(assets/road_real; 128 x 128 crops of damage boxes, NOT whole photos) are shuffled once (seed 0);
the first n of them (n = 0, 10, 25, 50, 100) are the city's labelled data, added to training the
way `real.train` adds the other cities' crops (task.fit(real_crops=...)); the last 81 are never
trained on and are what "new city" is scored on. 市原市 (Ichihara, the other held-out city) is
scored too: does another city's labels help a city nobody labelled? Each point is one fit of
the configs/road_damage.yaml model (the demo default) on a reduced synthetic set and schedule
(PHOTOS, MIN_PHOTOS, EPOCHS below: 2 shared CPU cores), seed 0: one run's noise per point.

    python -m bench.road_onboarding     # reports/bench/road_onboarding.json, ~10 min on 2 cores
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import Recorder, bench_main, isolate_stores, say

TASK = "road_damage"
NEW_CITY, OTHER_CITY = "muroran", "ichihara"
SIZES = (0, 10, 25, 50, 100)
# short fits (the onboarding path itself is `kyodo retrain road_damage`, the full schedule)
PHOTOS, MIN_PHOTOS, EPOCHS = 40, 8, 4
OVERRIDES: dict[str, Any] = {"generate": {"total_photos": PHOTOS, "min_photos": MIN_PHOTOS,
                                         "min_test_photos": 0},
                             "model": {"epochs": EPOCHS}}


def new_city_split(seed: int = 0) -> tuple[Any, Any]:
    """(labelled pool of max(SIZES) crops in a fixed order, the new city's evaluation crops):
    the new city's scored crops (cracks, markings, potholes) shuffled once."""
    from models.road_damage import real

    crops = real.load()
    city = crops.subset((crops.city == NEW_CITY) & crops.labels.any(axis=1))
    order = np.random.default_rng(seed).permutation(len(city.rdd))
    n = max(SIZES)
    return city.subset(order[:n]), city.subset(order[n:])


def curve_point(task: Any, cfg: Any, train: Any, test: Any, n: int, pool: Any, rest: Any,
                ) -> dict[str, Any]:
    """Fit with the training cities' crops plus the new city's first n; score both cities."""
    from models.road_damage import real
    from models.road_damage.photo import Grid

    crops = real.load()
    own = real.concat([real.split(crops)[0], pool.subset(np.arange(len(pool.rdd)) < n)])
    t0 = time.perf_counter()
    model = task.fit(cfg, train, seed=0, real_crops=own)
    fit_s = time.perf_counter() - t0
    window, cuts = Grid(**cfg.grid.model_dump()).window, model.assets["threshold"]

    def score(w: np.ndarray) -> np.ndarray:
        return task.predict_tiles(model, w)

    other = crops.subset(crops.city == OTHER_CITY)
    new_block = real.evaluate(score, window, cuts, rest, (NEW_CITY,))
    other_block = real.evaluate(score, window, cuts, other, (OTHER_CITY,))
    syn = task.evaluate_synthetic(cfg, model, test)["overall"]
    return {"n": n, "fit_s": round(fit_s, 1), "synthetic_crack_f1": syn["crack_f1"],
            "new_city": new_block, "other_city": other_block}


def run(rec: Recorder, tmp: Path) -> None:
    """Every point of the curve, in order; results accumulate in rec."""
    from training.data import load_pooled, write_generated
    from training.sandbox import make_workspace
    from training.workspace import Workspace

    isolate_stores(tmp)
    rec.add("host load average (1 min) at start", os.getloadavg()[0], "procs",
            note=f"{os.cpu_count()} CPUs shared with other work: fit seconds vary with it")
    ws = Workspace.load(make_workspace(tmp / "ws", TASK, OVERRIDES))
    task = ws.task(TASK)
    write_generated(ws, task, progress=False)
    cfg = ws.task_config(task)
    if not cfg.real.train:
        raise SystemExit("configs/road_damage.yaml: real.train is off; the curve adds crops "
                         "through it")
    train, test = task.split(cfg, load_pooled(ws, task, progress=False))
    pool, rest = new_city_split()
    say(f"new city {NEW_CITY}: {len(pool.rdd)} crops to label, {len(rest.rdd)} scored "
        f"({int(rest.crack.sum())} cracks, {int(rest.negative.sum())} markings); "
        f"{cfg.model.architecture}, {PHOTOS} synthetic photos, {EPOCHS} epochs")
    for n in SIZES:
        p = curve_point(task, cfg, train, test, n, pool, rest)
        crack = int(p["new_city"]["crack_crops"])
        note = (f"{cfg.model.architecture} init {cfg.model.init}, fit {p['fit_s']} s; "
                f"new-city crops labelled: {n}; scored on {p['new_city']['crops']} other "
                f"{NEW_CITY} crops ({crack} cracks, {p['new_city']['negative_crops']} "
                f"markings) and {p['other_city']['crops']} {OTHER_CITY} crops")
        for key, label in (("new_city", NEW_CITY), ("other_city", OTHER_CITY)):
            b = p[key]
            rec.add(f"n={n}: {label} crack AUC", b["crack_auc"] or float("nan"), "AUC",
                    target=">= 0.90" if key == "other_city" else None,
                    note=note if key == "new_city" else "")
            rec.add(f"n={n}: {label} crack F1", b["crack_f1"], "F1",
                    note=f"all-crack F1 {b['all_crack_f1']}, markings flagged "
                         f"{b['negatives_flagged']}, per code {b['per_class']}")
        rec.add(f"n={n}: synthetic crack F1", p["synthetic_crack_f1"], "F1")
    rec.add("host load average (1 min) at end", os.getloadavg()[0], "procs")


if __name__ == "__main__":
    bench_main("road_onboarding", run)
