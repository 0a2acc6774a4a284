"""road_damage: is a change in the synthetic crack F1 real or seed noise? Short fits of the demo
config on the demo data, side by side over seeds, with every figure named by its split.

    python -m bench.road_synth /tmp/ws-synth 4 0,1,2 '{"with": {}, "without": {"real":
        {"nonroad_tiles": 0}}}'                  # epochs, seeds, variants (config overrides)

The workspace is made on the first call (configs/road_damage.yaml as is; its data copied from
$KYODO_ROOT/data/road_damage when that exists, else generated) and reused. Per variant and seed:
the crack cut tuned on the VALIDATION photos (training photos held back, as task.fit does), the
validation crack F1 at it, the TEST (held-out photos) crack F1 at that cut, the test F1 with the
pavement mask switched off (how many cracked tiles the pavement output throws away), the photo
bootstrap 95% interval of the test F1, and the real held-out crops' AUC / F1. Probabilities are
kept in <workspace>/runs/*.npz for further reading. Writes reports/bench/road_synth.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.road_real import workspace_split
from models.road_damage.analyze import tile_flags
from models.road_damage.baseline import f1
from models.road_damage.labels import CLASSES
from models.road_damage.photo import Grid
from models.road_damage.task import _cracked, _hash_share, load_tiles

OUT = Path("reports/bench/road_synth.json")
CRACK = [CLASSES.index(c) for c in ("D00", "D10", "D20")]


def workspace(root: Path, epochs: int) -> tuple[Any, Any, Any, Any]:
    """(task, cfg, train, test) of the demo config with `epochs`; the demo data is copied."""
    src = Path(os.environ.get("KYODO_ROOT", ".")) / "data" / "road_damage"
    if not (root / "data").exists() and (src / "tiles").is_dir():
        from training import sandbox

        sandbox.make_workspace(root, "road_damage", {})
        shutil.copytree(src, root / "data" / "road_damage")
    over = {"model": {"epochs": epochs, "threads": 1}}
    return workspace_split(root, {}, over)


def photo_bootstrap(truth: np.ndarray, pred: np.ndarray, photo: np.ndarray, n: int = 400,
                    seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of tile F1 with photos drawn with replacement."""
    rng = np.random.default_rng(seed)
    ids = np.unique(photo)
    by = {i: np.flatnonzero(photo == i) for i in ids}
    vals = []
    for _ in range(n):
        idx = np.concatenate([by[i] for i in rng.choice(ids, len(ids))])
        vals.append(f1(truth[idx], pred[idx]))
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def one(root: Path, epochs: int, seed: int, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Fit one variant with one seed; figures by split."""
    from models.road_damage import net

    task, cfg, train, test = workspace(root, epochs)
    raw = cfg.model_dump()
    for key, value in extra.items():
        raw[key] = {**raw[key], **value}
    cfg = task.Config.model_validate(raw)
    t0 = time.perf_counter()
    model = task.fit(cfg, train, seed=seed)
    fit_s = time.perf_counter() - t0
    grid = Grid(**cfg.grid.model_dump())
    photos = train["photos"]
    val = load_tiles(photos[_hash_share(photos["photo_id"], "val") < cfg.model.validation_share],
                     train["tiles"], grid)
    vp = net.predict_all(model.net, val.tiles)[0]
    ts = load_tiles(test["photos"], test["tiles"], grid)
    out = task.predict_outputs(model, ts.tiles)
    ev = task.evaluate(cfg, model, test)
    cut = model.assets["threshold"]
    paved = out["pavement"] >= model.assets["road_check"]["pavement_cut"]
    flags = tile_flags(out["probabilities"], cut)
    truth, pred = _cracked(ts.labels), _cracked(flags)
    vroad = val.pavement
    vtruth = _cracked(val.labels)[vroad]
    vpred = _cracked(tile_flags(vp[:, :len(CLASSES)], cut))[vroad]
    runs = root / "runs"
    runs.mkdir(exist_ok=True)
    np.savez_compressed(runs / f"{name}-s{seed}-e{epochs}.npz", val_probs=vp,
                        val_labels=val.labels, val_pavement=val.pavement, val_photo=val.photo,
                        test_probs=out["probabilities"], test_pavement_p=out["pavement"],
                        test_labels=ts.labels, test_pavement=ts.pavement, test_photo=ts.photo)
    o, r = ev["overall"], ev["real"]
    return {
        "variant": name, "seed": seed, "epochs": epochs, "extra": extra,
        "fit_s": round(fit_s, 1), "epochs_run": o["epochs_run"], "best_epoch": o["best_epoch"],
        "val_crack_cut": cut["crack"],
        "val_crack_f1": round(f1(vtruth, vpred), 4),
        "val_tiles_road": int(vroad.sum()), "val_cracked_tiles": int(vtruth.sum()),
        "test_crack_f1": o["crack_f1"],
        "test_crack_f1_ci95_photos": photo_bootstrap(truth, pred & paved, ts.photo),
        "test_crack_f1_no_pavement_mask": round(f1(truth, pred), 4),
        "test_cracked_tiles_called_not_road": int((truth & ~paved).sum()),
        "test_cracked_tiles": int(truth.sum()),
        "test_mlit_accuracy": o["mlit_accuracy"],
        "test_level_given_on_non_road": o["level_given_on_non_road"],
        "test_per_tenant_crack_f1": {k: v["crack_f1"] for k, v in ev["per_tenant"].items()},
        "real_crack_auc": r["crack_auc"], "real_crack_f1": r["crack_f1"],
        "real_markings_flagged": r["negatives_flagged"],
    }


def main(root: Path, epochs: int, seeds: list[int], variants: dict[str, dict[str, Any]],
         ) -> list[dict[str, Any]]:
    """Every (variant, seed) fit, one JSON line each as it finishes."""
    rows = []
    for seed in seeds:
        for name, extra in variants.items():
            row = one(root, epochs, seed, name, extra)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


if __name__ == "__main__":
    rows = main(Path(sys.argv[1]), int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")],
                json.loads(sys.argv[4]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(OUT.read_text()) if OUT.is_file() else []
    OUT.write_text(json.dumps([*old, *rows], indent=1) + "\n")
