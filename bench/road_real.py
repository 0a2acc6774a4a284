"""road_damage: short training runs on one synthetic workspace, scored on the synthetic held-out
photos and on the held-out cities' real crops (the `real` block). One JSON line per run.

    python -m bench.road_real /tmp/ws 100 8                       # synthetic only
    python -m bench.road_real /tmp/ws 100 8 '{"real": {"train": true, "repeat": 2}}'

The workspace (configs and generated photos) is made on the first call and reused. The last
argument overrides config sections; a "model" section replaces the epochs/patience given here.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from training import sandbox
from training.data import load_pooled, write_generated
from training.workspace import Workspace


def workspace_split(root: Path, base: dict[str, Any], overrides: dict[str, Any],
                    ) -> tuple[Any, Any, Any, Any]:
    """(task, cfg, train, test) of the road_damage workspace in root: made with `base` and
    generated on the first call, reused after; each section of `overrides` is merged into the
    workspace's config (not written to it, so runs with other overrides can share the
    workspace) before it is validated."""
    if not (root / "data").exists():
        sandbox.make_workspace(root, "road_damage", base)
        ws = Workspace.load(root)
        write_generated(ws, ws.task("road_damage"), progress=False)
    ws = Workspace.load(root)
    task = ws.task("road_damage")
    raw = ws.task_config(task).model_dump()
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value}
    cfg = task.Config.model_validate(raw)
    train, test = task.split(cfg, load_pooled(ws, task, progress=False))
    return task, cfg, train, test


def run(root: Path, photos: int, epochs: int, extra: dict[str, Any]) -> dict[str, Any]:
    """Fit once with the overrides; synthetic and real figures with the fit time."""
    base = {"generate": {"total_photos": photos, "min_test_photos": 0},
            "model": {"epochs": epochs, "patience": 3}}
    task, cfg, train, test = workspace_split(root, base, {**base, **extra})
    t0 = time.perf_counter()
    model = task.fit(cfg, train, seed=0)
    fit_s = time.perf_counter() - t0
    ev = task.evaluate(cfg, model, test)
    o, r = ev["overall"], ev["real"]
    return {"extra": extra, "fit_s": round(fit_s, 1), "epochs": o["epochs_run"],
            "syn_crack_f1": o["crack_f1"], "syn_mlit": o["mlit_accuracy"],
            "real_auc": r["crack_auc"], "real_f1": r["crack_f1"],
            "real_markings_flagged": r["negatives_flagged"], "real_recall": r["crack_recall"],
            "calibration": r["calibration"],
            "per_class_auc": {k: v["auc_vs_negatives"] for k, v in r["per_class"].items()}}


if __name__ == "__main__":
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    print(json.dumps(run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), extra)))
