"""road_damage: refit only the photo-level road check (roadphoto.fit_model) on a trained model's
network, and measure it on the sets that need no scikit-image photo.

    python -m bench.road_photo_refit build/road_damage/model.pkl /tmp/refit.pkl [WORKSPACE]
    python -m bench.road_photo_refit build/road_damage/model.pkl -         # measure as shipped

Minutes instead of `make train`'s ~17: the tile network, its familiarity statistics and its
tile road check stay as trained; the check's synthetic training photos are the workspace's
pooled training split cut into fit and validation photos exactly as task.fit cuts them, and
roadphoto.fit_model runs with the platform seed, so this code's check (its features, its
non-road photos) is what `make train` would fit on that network. OUT gets the model with the
new check; OUT.json (or reports/bench/road_photo_refit.json with "-") the fit's out-of-fold
report and: the held-out cities' real crops sent as photos (colour, grey: the share that keeps
a level), 30 fresh synthetic off-road scenes, the `val` non-road photos (never trained on) and
the workspace's synthetic held-out photos (road, off-road). scikit-image's photos are left to
`python -m bench.road_ood --model OUT` (the evaluation set: look once, at the end).
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

from bench.road_ood import (
    analyse,
    crop_photos,
    nonroad_val_photos,
    off_road_photos,
    share,
    summary,
    synthetic_test_photos,
)
from models.road_damage import roadphoto
from models.road_damage.photo import Grid
from models.road_damage.task import RoadDamage, fit_and_validation
from training.data import load_pooled
from training.workspace import Workspace


def refit(model: Any, ws: Workspace, cache: Path | None = None) -> tuple[Any, Any, Any]:
    """(model with this code's photo check fitted on its network, cfg, held-out frames);
    `cache`: where to pickle the check's training examples (roadphoto.collect: features, road
    or not, group; judged; ImageNet probabilities) for comparing feature sets out of fold."""
    task = ws.task("road_damage")
    cfg = ws.task_config(task)
    train, test = task.split(cfg, load_pooled(ws, task, progress=False))
    grid = Grid(**cfg.grid.model_dump())
    fit_set, val_set = fit_and_validation(cfg, train)
    rc = cfg.road_check
    t0 = time.perf_counter()
    if cache is not None:  # what fit_model does, with the examples kept
        collected = roadphoto.collect(model.net, model.familiarity, [fit_set, val_set], grid,
                                      rc.pavement_cut, rc.min_share, ws.platform.seed, None,
                                      rc.floor_share)
        cache.write_bytes(pickle.dumps(collected))
        check, report = roadphoto.fit_collected(collected, roadphoto.IMAGE_STATS_ON)
    else:
        check, report = roadphoto.fit_model(model.net, model.familiarity, [fit_set, val_set],
                                            grid, rc.pavement_cut, rc.min_share,
                                            ws.platform.seed, None, rc.floor_share)
    report["refit_s"] = round(time.perf_counter() - t0, 1)
    model.assets["road_photo"], model.history["road_photo"] = check, report
    return model, cfg, test


def measure(model: Any, cfg: Any, test: Any) -> dict[str, Any]:
    """The check's figures on every set but scikit-image's."""
    task = RoadDamage()
    sets = {"real_crops_colour": analyse(task, model, crop_photos()[0]),
            "real_crops_grey": analyse(task, model, crop_photos(grey=True)[0]),
            "synthetic_off_road_fresh": analyse(task, model, off_road_photos(30)),
            "real_nonroad_val": analyse(task, model, nonroad_val_photos())}
    photos, road = synthetic_test_photos(test, cfg.road_check.min_share)
    held = analyse(task, model, photos)
    sets["synthetic_holdout_road"] = {k: v for k, v in held.items() if k in road}
    sets["synthetic_holdout_off_road"] = {k: v for k, v in held.items() if k not in road}
    rep = model.history.get("road_photo") or {}
    return {"road_photo": {k: rep.get(k) for k in ("photos", "cut", "out_of_fold",
                                                    "refit_s")},
            **{name: {**summary(rows), "levelled": sum(r["level"] is not None
                                                        for r in rows.values())}
               for name, rows in sets.items()},
            "real_nonroad_val_levelled": sorted(k for k, v in sets["real_nonroad_val"].items()
                                                if v["level"] is not None),
            "real_crops_grey_under_check": share(
                sets["real_crops_grey"], lambda r: "not_road_photo" in r["warnings"])}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # a shared machine: one core
    src, out = Path(sys.argv[1]), sys.argv[2]
    ws = Workspace.load(sys.argv[3] if len(sys.argv) > 3 else None)
    model = pickle.loads(src.read_bytes())
    if out == "-":
        task = ws.task("road_damage")
        cfg = ws.task_config(task)
        test = task.split(cfg, load_pooled(ws, task, progress=False))[1]
        dest = Path("reports/bench/road_photo_refit.json")
    else:
        model, cfg, test = refit(model, ws, Path(out).with_suffix(".examples.pkl"))
        Path(out).write_bytes(pickle.dumps(model))
        dest = Path(out).with_suffix(".json")
    report = {"model": str(src), "refitted": out != "-", **measure(model, cfg, test)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    print(json.dumps(report, ensure_ascii=False, indent=1))
