"""road_damage on real road frames of a highway it never trained on (assets/road_frames, split
`val`: BR-386; training uses BR-290 only), through the package the way serving sends a photo
(photo_tiles -> the exported ONNX graph -> analyze.summarise with its road.json), judged
against the frames' pixel masks.

    python -m bench.road_frames                                  # build/road_damage/onnx
    python -m bench.road_frames /work/main/build/road_damage/onnx

Per frame: level given or withheld (and why), road-photo score, pavement share. Per sure tile
(frames.tile_labels: intact asphalt far from any marked crack; tiles at least 2% marked crack):
whether the product counted it damaged (damage head over its cut and called road surface),
whether the pavement head called it road surface. Also the crack ranking AUC over those tiles.
Every frame holds cracks or potholes (the source's selection), so no level is "right" here;
the figures that matter are the withheld share, intact tiles counted damaged, crack tiles found.
Writes reports/bench/road_frames.json.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.road_street import open_package, served
from models.road_damage import frames
from models.road_damage.analyze import CRACK
from models.road_damage.photo import Grid
from models.road_damage.real import auc
from models.road_damage.roadphoto import PhotoCheck, jpeg

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "bench" / "road_frames.json"


def run(model_dir: Path, split: str = "val") -> dict[str, Any]:
    """Every frame of the split through the package in model_dir (model.onnx + road.json)."""
    assets, session, scene_session = open_package(model_dir)
    grid, photo = Grid.of(assets), PhotoCheck.of(assets)
    per: dict[str, dict[str, Any]] = {}
    truth, score, counted, paved_sure = [], [], [], []
    for name, img, mask in frames.load(split):
        res, _, p, _, paved, flagged = served(session, assets, jpeg(img, 92), scene_session)
        lab = frames.tile_labels(mask, grid)
        sure = lab.any(axis=1)
        truth.append(lab[sure, 0] == 0)
        score.append(p[sure][:, CRACK].max(axis=1))
        counted.append((flagged & paved)[sure])
        paved_sure.append(paved[sure])
        per[name] = {"level": res["mlit_level"],
                     "warnings": [w["code"] for w in res["level_warnings"]],
                     "pavement_share": res["pavement_share"], "crack_ratio": res["crack_ratio"],
                     "road_photo_score": res["road_photo_score"],
                     "intact_tiles": int((lab[:, 0] == 1).sum()),
                     "crack_tiles": int((sure & (lab[:, 0] == 0)).sum())}
    t, s, c, p = (np.concatenate(v) for v in (truth, score, counted, paved_sure))
    rows_ = list(per.values())
    return {"model": str(model_dir), "split": split, "frames": len(rows_),
            "level_given": sum(r["level"] is not None for r in rows_),
            "levels": dict(Counter(r["level"] or "withheld" for r in rows_)),
            "withheld_by": dict(Counter(r["warnings"][0] if r["warnings"] else "?"
                                        for r in rows_ if r["level"] is None)),
            "median_pavement_share": round(float(np.median([r["pavement_share"]
                                                            for r in rows_])), 4),
            "median_road_photo_score": None if photo is None else round(float(np.median(
                [r["road_photo_score"] for r in rows_ if r["road_photo_score"] is not None]
                or [np.nan])), 4),
            "intact_tiles": {"tiles": int((~t).sum()),
                             "counted_damaged": round(float(c[~t].mean()), 4),
                             "called_road_surface": round(float(p[~t].mean()), 4)},
            "crack_tiles": {"tiles": int(t.sum()), "counted_damaged": round(float(c[t].mean()), 4),
                            "called_road_surface": round(float(p[t].mean()), 4)},
            "crack_auc": auc(t, s), "photos": per}


if __name__ == "__main__":
    report = run(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "road_damage" /
                 "onnx")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "photos"}, indent=1))
