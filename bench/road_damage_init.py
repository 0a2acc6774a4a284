"""road_damage: ImageNet-initialised EfficientNet-Lite0 vs the same network from scratch vs the
default small ResNet, trained alike on a subset and scored on the same held-out photos.

EfficientNet-Lite0 (3.4 M parameters) is far too slow to train in the 2-core demo, so this is a
one-off measurement (`python -m bench.road_damage_init [TRAIN_PHOTOS] [EPOCHS] [DATA_DIR]`), not a
stage;
results go to reports/bench/road_damage_init.json.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import Recorder, bench_main, say
from training import data as D
from training.sandbox import make_workspace
from training.workspace import Workspace

TASK = "road_damage"
CANDIDATES: dict[str, dict[str, Any]] = {
    "resnet (default), scratch": {"architecture": "resnet", "init": "scratch"},
    "efficientnet_lite0, scratch": {"architecture": "efficientnet_lite0", "init": "scratch"},
    "efficientnet_lite0, imagenet": {"architecture": "efficientnet_lite0", "init": "imagenet"},
}


def run(rec: Recorder, tmp: Path, photos: int = 60, epochs: int = 3,
        data: Path | None = None) -> None:
    """Generate the demo data (or copy a data folder made by `kyodo data generate`), train each
    candidate on `photos` training photos, score all on the held-out photos."""
    ws = Workspace.load(make_workspace(tmp / "ws", TASK, {}))
    task = ws.task(TASK)
    if data is None:
        D.write_generated(ws, task, progress=False)
    else:
        shutil.copytree(data, ws.path("data") / TASK)
    cfg = ws.task_config(task)
    train, test = task.split(cfg, D.load_pooled(ws, task, progress=False))
    keep = train["photos"]["photo_id"].sample(photos, random_state=0)
    subset = {f: train[f][train[f]["photo_id"].isin(keep)].reset_index(drop=True)
              for f in task.frames}
    for name, model in CANDIDATES.items():
        c = cfg.model_copy(update={"model": cfg.model.model_copy(
            update={**model, "epochs": epochs, "patience": epochs})})
        t0 = time.perf_counter()
        fitted = task.fit(c, subset, seed=ws.platform.seed)
        seconds = time.perf_counter() - t0
        ev = task.evaluate(c, fitted, test)["overall"]
        say(f"{name}: crack F1 {ev['crack_f1']}, MLIT {ev['mlit_accuracy']}, {seconds:.0f} s")
        rec.add(f"{name}: held-out tile crack F1", ev["crack_f1"], "F1",
                note=f"{photos} training photos, {epochs} epochs; {fitted.assets['parameters']:,} "
                     f"parameters; trained in {seconds:.0f} s")
        rec.add(f"{name}: held-out MLIT level accuracy", ev["mlit_accuracy"], "share")
        rec.add(f"{name}: training time", seconds, "s")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    folder = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    bench_main("road_damage_init", lambda rec, tmp: run(rec, tmp, *args, data=folder))
