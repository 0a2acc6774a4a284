"""road_damage on real pavement photos with pixel crack masks, scored per grid cell the way the
independent check of issue 13 scores it (assets/road_masks/DATA_CARD.md: 200 Brazilian highway
lane crops, pavement only, split by survey segment into `check` and `onboard`).

    python -m bench.road_masks [MODEL_DIR]               # zero-shot; build/road_damage/onnx
    python -m bench.road_masks --onboard [N]             # import N `onboard` photos (all 100
                                                         # without N), retrain, score `check`
    python -m bench.road_masks --control                 # the same retrain without the import
    python -m bench.road_masks --onboard 25 --frames     # ... keeping the config's real.frames
    python -m bench.road_masks --onboard 10 --pick-seed 1  # another draw of 10 photos
    python -m bench.road_masks --onboard 100 --full      # the config's own schedule (the
                                                         # documented retrain as shipped)

Zero-shot: every photo goes through serving's own analysis (serving/road_damage.py _analyse:
photo_tiles -> the exported ONNX graph -> the scene graph -> analyze.summarise with the
package's road.json), exactly what POST /v1/road_damage/analyze answers, minus HTTP. Per grid
cell of the answer: truth from the mask (crack = at least CRACK_SHARE of the cell's pixels,
none = no crack pixel, cells in between are left out); score = the cell's highest damage
probability (AUC); flagged = the cell carries a damage label in the answer (F1; a cell the
product calls not road surface carries none). Per photo: the MLIT level against the level of
the mask's crack ratio (share of cells with at least CRACK_SHARE crack pixels, by the product's
own rule labels.mlit_level; a withheld level is a disagreement), and whether a pothole (D40)
is reported (no photo of the set has one).

Onboarding (--onboard): a scratch workspace with the repo's configs on a short schedule
(bench.road_onboarding.OVERRIDES, one torch thread: 2 shared cores; --full keeps the config's
synthetic photos, epochs and threads: what `kyodo retrain` does on a municipality's machine) and
real.frames off (the repo config trains on assets/road_frames, other highways of this very
survey: with them the photos are no new camera; --frames keeps them), its synthetic data
generated, the first N `onboard` photos of pick_onboard's fixed order (nested: the 10 are
inside the 25, inside the 50, inside the 100) imported with `kyodo road import masks ...
--tenant 012050 --append` (the documented path, default --share), then `kyodo retrain road_damage`
(training.retrain.retrain: train, export, gate; the gate holds a fifth of the imported photos
out) and the candidate's exported package scored on `check` like the champion. The
candidate is a scratch model, never the shipped one. Beside `check` (other survey segments) a
point reports `imported_held_out`: the imported photos the gate held out (the same segments as
the training photos: "more photos of roads we labelled"), and `diagnostics`: the best cut on
`check`'s own cells (an oracle: how much of the F1 gap a cut could close at all), per segment
figures, and how often cells the check leaves out (0 < crack pixels < CRACK_SHARE) are flagged
(they count as not cracked in the check's level, as cracked by the product's 0.5% tile rule).

Zero-shot writes reports/bench/road_masks.json; an onboarding or control run is a point of the
learning curve (issue 13 item 6): it skips the zero-shot pass and replaces the point with the
same (n, frames, pick seed) in reports/bench/road_masks_curve.json (`learning_curve`), so one
process per point (one retrain per process: onboard() isolates the stores once). A check only:
the shipped model is never trained or tuned on these photos.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.road_damage.labels import MASK_BITS, grid_cells, mlit_level

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets" / "road_masks"
OUT = ROOT / "reports" / "bench" / "road_masks.json"
SPLITS = ("check", "onboard")
CURVE_OUT = OUT.with_name("road_masks_curve.json")
PICK_SEED = 0  # pick_onboard's shuffle
CRACK_SHARE = 0.01  # a cell is a crack cell from 1% crack pixels (the independent check's rule)
TENANT = "012050"  # 室蘭市: the onboarding municipality (a tenant of configs/tenants.yaml)


def load_manifest(path: Path = ASSETS / "manifest.csv") -> list[dict[str, str]]:
    """Manifest rows; ValueError naming the row and field for an unknown split or a photo or
    mask file that is missing."""
    rows = []
    with open(path, newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            if row.get("split") not in SPLITS:
                raise ValueError(f"{path.name} row {n} ({row.get('file')}): split "
                                 f"{row.get('split')!r} is not one of {', '.join(SPLITS)}")
            for key in ("file", "mask"):
                if not (path.parent / row[key]).is_file():
                    raise ValueError(f"{path.name} row {n}: {key} {row[key]!r} is missing")
            rows.append(row)
    return rows


def read_mask(path: Path) -> np.ndarray:
    """A mask PNG as bool (h, w): crack where the pixel is set."""
    return np.asarray(Image.open(path).convert("L")) > 127


def cell_truth(mask: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(crack share of each cell, row-major (rows * cols,); the cell's truth: 1 crack (share
    >= CRACK_SHARE), 0 none (no crack pixel), -1 left out (a few crack pixels)). The cells are
    the product's grid over the photo (labels.grid_cells: photo.to_grid stretches the photo
    onto rows x cols tiles)."""
    share = grid_cells(mask.astype(np.uint8) * MASK_BITS["D00"], rows, cols)[:, :, 0].ravel()
    truth = np.where(share >= CRACK_SHARE, 1, np.where(share == 0, 0, -1))
    return share, truth


def truth_level(truth: np.ndarray) -> str:
    """The MLIT level of the mask: the crack ratio is the share of the photo's cells that are
    crack cells (cells left out count as not cracked), by the product's rule."""
    return mlit_level(float((truth == 1).mean()) if len(truth) else 0.0)


def answer_cells(res: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(score: each cell's highest damage probability, flagged: the cell carries a damage
    label) from one photo's answer, row-major."""
    cells = [c for line in res["grid"] for c in line]
    score = np.array([max(v for k, v in c["p"].items() if k != "none") for c in cells])
    flagged = np.array([any(lab != "none" for lab in c["labels"]) for c in cells])
    return score, flagged


def photo_row(row: dict[str, str], res: dict[str, Any], dark: np.ndarray) -> dict[str, Any]:
    """This bench's per-photo record of one answer (cells kept for the pooled metrics); dark:
    the dark-line baseline's score of each cell (row-major)."""
    _, truth = cell_truth(read_mask(ASSETS / row["mask"]), res["rows"], res["cols"])
    score, flagged = answer_cells(res)
    want = truth_level(truth)
    return {"split": row["split"], "segment": row["segment"], "grid": [res["rows"], res["cols"]],
            "truth": truth.tolist(), "score": np.round(score, 4).tolist(),
            "flagged": flagged.astype(int).tolist(), "dark": np.round(dark, 4).tolist(),
            "level": res["mlit_level"], "truth_level": want,
            "level_ok": res["mlit_level"] == want,
            "crack_ratio": res["crack_ratio"],
            "truth_crack_ratio": round(float((truth == 1).mean()), 4),
            "pavement_share": res["pavement_share"],
            "warnings": [w["code"] for w in res.get("warnings", [])],
            "pothole": any(t["type"] == "D40" for t in res["types"]),
            "types": {t["type"]: t["tiles"] for t in res["types"]}}


def _f1(truth: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    tp = int((truth & pred).sum())
    p = tp / int(pred.sum()) if pred.sum() else None
    r = tp / int(truth.sum()) if truth.sum() else None
    f1 = 2 * tp / int(truth.sum() + pred.sum()) if truth.sum() + pred.sum() else None
    return {"f1": None if f1 is None else round(f1, 4),
            "precision": None if p is None else round(p, 4),
            "recall": None if r is None else round(r, 4)}


def _stacked(photos: list[dict[str, Any]], key: str, dtype: Any = None) -> np.ndarray:
    """The photos' per-cell `key` lists as one array (cells of every photo in turn; empty for
    no photos)."""
    if not photos:
        return np.zeros(0, dtype or float)
    return np.concatenate([np.asarray(p[key], dtype) for p in photos])


def summary(photos: list[dict[str, Any]]) -> dict[str, Any]:
    """The independent check's figures over the photos: cell AUC, F1 (and what flagging every
    cell scores; the AUC of the product's non-learned dark-line baseline, baseline.py, on the
    same cells), MLIT level agreement, potholes reported, crack-ratio error."""
    from sklearn.metrics import roc_auc_score

    truth, score, dark = (_stacked(photos, k) for k in ("truth", "score", "dark"))
    flag = _stacked(photos, "flagged", bool)
    kept = truth >= 0
    t, s, f = truth[kept] == 1, score[kept], flag[kept]
    ranked = 0 < t.sum() < len(t)
    auc = float(roc_auc_score(t, s)) if ranked else None
    dark_auc = float(roc_auc_score(t, dark[kept])) if ranked else None
    levels = [p["level"] or "withheld" for p in photos]
    return {
        "photos": len(photos),
        "cells": int(kept.sum()), "cells_left_out": int((~kept).sum()),
        "crack_cells": int(t.sum()), "crack_cell_share": round(float(t.mean()), 4) if len(t)
        else None,
        "flagged_share": round(float(f.mean()), 4) if len(f) else None,
        "cell_auc": None if auc is None else round(auc, 4),
        **{f"cell_{k}": v for k, v in _f1(t, f).items()},
        "all_cracked_f1": _f1(t, np.ones_like(t))["f1"],
        "dark_line_auc": None if dark_auc is None else round(dark_auc, 4),
        "level_agreement": round(float(np.mean([p["level_ok"] for p in photos])), 4)
        if photos else None,
        "levels": {k: levels.count(k) for k in ("I", "II", "III", "withheld")},
        "truth_levels": {k: sum(p["truth_level"] == k for p in photos)
                         for k in ("I", "II", "III")},
        "pothole_photo_share": round(float(np.mean([p["pothole"] for p in photos])), 4)
        if photos else None,
        "crack_ratio_mae": round(float(np.mean([abs(p["crack_ratio"] - p["truth_crack_ratio"])
                                                for p in photos])), 4) if photos else None,
        "median_pavement_share": round(float(np.median([p["pavement_share"] for p in photos])),
                                       4) if photos else None,
    }


def _cells(photos: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(crack truth, the photos' per-cell `key` values) over the kept cells."""
    truth, value = _stacked(photos, "truth"), _stacked(photos, key, float)
    return truth[truth >= 0] == 1, value[truth >= 0]


def transfer_cut(fit: list[dict[str, Any]], score: list[dict[str, Any]], key: str,
                 ) -> dict[str, float | None]:
    """A diagnostic, not the product: the cut on a cell score (`score`: the model's highest
    damage probability; `dark`: the dark-line baseline) with the best cell F1 on the `fit`
    photos, and the F1 it gives on the `score` photos. Says how much of the F1 gap is the
    product's cut rather than its ranking."""
    t, v = _cells(fit, key)
    cuts = np.unique(np.quantile(v, np.linspace(0.0, 0.99, 100)))
    f1s = [_f1(t, v >= c)["f1"] or 0.0 for c in cuts]
    cut = float(cuts[int(np.argmax(f1s))])
    t2, v2 = _cells(score, key)
    return {"cut": round(cut, 4), "fit_f1": round(max(f1s), 4),
            **{f"scored_{k}": v for k, v in _f1(t2, v2 >= cut).items()}}


def analyse_all(model_dir: Path, rows: list[dict[str, str]], batch: int = 8,
                ) -> list[dict[str, Any]]:
    """Each photo through serving's analysis (serving/road_damage.py _analyse) with the package
    in model_dir (model.onnx, road.json, scene.onnx when the package has one)."""
    from bench.road_street import grid_cells as cells_of
    from bench.road_street import open_package, package_meta
    from models.configs import TenantsConfig, load_config
    from models.road_damage.baseline import DarkLineDetector
    from models.road_damage.photo import Grid, photo_tiles
    from serving.road_damage import ASSETS as ROAD_JSON
    from serving.road_damage import TASK, _analyse
    from serving.runtime import LoadedModel

    assets, session, scene_session = open_package(model_dir)
    meta = package_meta(model_dir)
    model = LoadedModel(task=TASK, version=str(meta.get("version", "?")), tag="bench",
                        session=session, assets={ROAD_JSON: assets}, meta=meta,
                        extra={"scene": scene_session} if scene_session is not None else {})
    tenants = load_config(ROOT / "configs" / "tenants.yaml", TenantsConfig)
    tenant = next(t for t in tenants.tenants if t.code == TENANT)
    grid, detector = Grid.of(model.assets[ROAD_JSON]), DarkLineDetector()
    out = []
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]
        raw = [(Path(r["file"]).name, (ASSETS / r["file"]).read_bytes()) for r in part]
        for r, (_, data), res in zip(part, raw, _analyse(model, raw, tenant), strict=True):
            _, _, _, image = photo_tiles(data, grid)  # the grid image the answer is about
            dark = detector.scores(cells_of(image, res["rows"], res["cols"]))
            out.append(photo_row(r, res, dark))
    return out


def pick_onboard(rows: list[dict[str, str]], n: int | None = None, seed: int = PICK_SEED,
                 ) -> list[dict[str, str]]:
    """The first n `onboard` rows of one fixed order (all of them for None): each survey
    segment's photos (sorted by file: the manifest's row order does not matter) shuffled with
    numpy default_rng(seed), the segments in a shuffled order, then dealt round-robin (the 1st
    photo of every segment, then the 2nd, ...; a segment that runs out drops out). So the
    picks are nested (n = 10 is the start of n = 25) and spread over the segments (counts per
    segment differ by at most 1 while every segment has photos left).
    ValueError when n is outside 0..len(onboard)."""
    mine = sorted((r for r in rows if r["split"] == "onboard"), key=lambda r: r["file"])
    if n is None:
        n = len(mine)
    if not 0 <= n <= len(mine):
        raise ValueError(f"--onboard {n}: pick 0 to {len(mine)} of the onboard photos")
    rng = np.random.default_rng(seed)
    segments = sorted({r["segment"] for r in mine})
    queues = [[mine[i] for i in rng.permutation([i for i, r in enumerate(mine)
                                                 if r["segment"] == s])] for s in segments]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    order = [q[k] for k in range(max(map(len, queues))) for q in queues if k < len(q)]
    return order[:n]


def scratch_overrides(frames: bool = False, full: bool = False) -> dict[str, Any]:
    """The onboarding workspace's overrides of configs/road_damage.yaml (make_workspace merges
    them 2 levels deep): real.frames = frames (the other `real` keys stay the config's); unless
    `full`, bench.road_onboarding's short schedule and one torch thread (2 shared cores)."""
    from bench.road_onboarding import OVERRIDES

    if full:
        return {"real": {"frames": frames}}
    return {**OVERRIDES, "model": {**OVERRIDES["model"], "threads": 1},
            "real": {"frames": frames}}


def onboard(rows: list[dict[str, str]], tmp: Path, n: int | None = None, frames: bool = False,
            pick_seed: int = PICK_SEED, full: bool = False) -> dict[str, Any]:
    """Import the first n `onboard` photos (pick_onboard; None: all) into a scratch workspace
    with real.frames set to `frames`, retrain, score `check`. n=0: the control, the same
    workspace and retrain without the import (what the schedule alone gives). full: the
    config's schedule (scratch_overrides).
    RuntimeError when the workspace's config does not hold real.frames == frames."""
    from typer.testing import CliRunner

    from bench import isolate_stores, say
    from bench.road_street import model_info
    from training.cli import app
    from training.data import write_generated
    from training.retrain import retrain
    from training.sandbox import make_workspace
    from training.workspace import Workspace

    load0 = os.getloadavg()[0]
    isolate_stores(tmp)
    overrides = scratch_overrides(frames, full)
    root = make_workspace(tmp / "ws", "road_damage", overrides)
    ws = Workspace.load(root)
    task = ws.task("road_damage")
    if ws.task_config(task).real.frames is not frames:  # the 2-level merge kept real's keys
        raise RuntimeError(f"scratch workspace: real.frames is not {frames}")
    t0 = time.perf_counter()
    write_generated(ws, task, progress=False)
    say(f"scratch workspace generated in {time.perf_counter() - t0:.0f} s")
    images, masks = tmp / "images", tmp / "masks"
    images.mkdir()
    masks.mkdir()
    mine = pick_onboard(rows, n, pick_seed)
    imported = bool(mine)
    for r in mine:
        (images / Path(r["file"]).name).symlink_to(ASSETS / r["file"])
        (masks / Path(r["mask"]).name).symlink_to(ASSETS / r["mask"])
    os.environ["KYODO_ROOT"] = str(root)
    if imported:
        res = CliRunner().invoke(app, ["road", "import", "masks", str(images), str(masks),
                                       "--tenant", TENANT, "--append"])
        if res.exit_code != 0:
            raise RuntimeError(f"kyodo road import masks failed: {res.output}")
        say(res.output.strip())
    t0 = time.perf_counter()
    summary_ = retrain(ws, task, progress=False)
    fit_s = time.perf_counter() - t0
    say(f"retrain done in {fit_s:.0f} s: {summary_['decision']}")
    package = root / "build" / "road_damage" / "onnx"
    check = analyse_all(package, [r for r in rows if r["split"] == "check"])
    held = gate_held_out(ws, task, mine)
    own = analyse_all(package, held) if held else []
    metrics_path = root / "reports" / "road_damage" / "metrics.json"
    overall = json.loads(metrics_path.read_text()).get("overall", {}) \
        if metrics_path.is_file() else {}
    road_json = json.loads((package / "road.json").read_text())
    trained = {  # what the fit saw: no frame tiles in the damage head when frames is False
        "real_frames_config": frames, "train_tiles": overall.get("train_tiles"),
        "train_real_crops": overall.get("train_real_crops"),
        "road_photo_check_frames": (overall.get("road_photo") or {}).get("frames"),
        "frames_data_credited": road_json.get("frames_data") is not None}
    return {"n": len(mine), "frames": frames, "pick_seed": pick_seed, "full": full,
            "imported": [Path(r["file"]).stem for r in mine], "tenant": TENANT,
            "overrides": overrides, "trained": trained, "retrain_s": round(fit_s, 1),
            "load_average_start": load0, "load_average_end": os.getloadavg()[0],
            "decision": summary_["decision"], "headline": summary_["headline"],
            "model": model_info(package), "check": summary(check),
            "imported_held_out": summary(own) if own else None,
            "diagnostics": diagnostics(check)}


def gate_held_out(ws: Any, task: Any, mine: list[dict[str, str]]) -> list[dict[str, str]]:
    """The imported rows (manifest rows of `mine`) that the task's split holds out of training
    (task.split on the photo ids the importer gives them, `<tenant>-<file stem>`): never
    trained on, but of the same survey segments as the imported photos that were."""
    import pandas as pd

    ids = {f"{TENANT}-{Path(r['file']).stem}": r for r in mine}
    if not ids:
        return []
    photos = pd.DataFrame({"photo_id": list(ids)})
    _, test = task.split(ws.task_config(task), {"photos": photos,
                                                "tiles": pd.DataFrame({"photo_id": []})})
    return [ids[i] for i in test["photos"]["photo_id"]]


def diagnostics(photos: list[dict[str, Any]]) -> dict[str, Any]:
    """Where a cell F1 comes from (not the product's figures): the best single cut on these
    photos' own cells (transfer_cut onto themselves: an oracle, so an upper bound for any
    cut), the summary per survey segment, and the share of left-out cells (0 < crack share <
    CRACK_SHARE) that the answer flags, with the mean crack ratio answered vs the check's."""
    segments = sorted({p["segment"] for p in photos})
    truth, flag = _stacked(photos, "truth"), _stacked(photos, "flagged", bool)
    out = truth == -1
    return {
        "oracle_cut": transfer_cut(photos, photos, "score") if photos else None,
        "left_out_cells_flagged": round(float(flag[out].mean()), 4) if out.any() else None,
        "mean_crack_ratio": round(float(np.mean([p["crack_ratio"] for p in photos])), 4)
        if photos else None,
        "mean_truth_crack_ratio": round(float(np.mean([p["truth_crack_ratio"]
                                                       for p in photos])), 4) if photos else None,
        "per_segment": {s: {k: v for k, v in summary([p for p in photos if p["segment"] == s])
                            .items() if k in ("photos", "cell_f1", "cell_auc", "level_agreement",
                                              "crack_cell_share", "flagged_share")}
                        for s in segments}}


def run(model_dir: Path) -> dict[str, Any]:
    """Zero-shot figures of the package in model_dir (check, onboard, all photos)."""
    from bench.road_street import model_info

    rows = load_manifest()
    t0 = time.perf_counter()
    photos = analyse_all(model_dir, rows)
    report: dict[str, Any] = {
        "model": model_info(model_dir), "crack_share": CRACK_SHARE,
        "zero_shot": {"seconds": round(time.perf_counter() - t0, 1),
                      **{s: summary([p for p in photos if p["split"] == s]) for s in SPLITS},
                      "all": summary(photos)},
        "photos": {Path(r["file"]).stem: p for r, p in zip(rows, photos, strict=True)},
    }
    fit, scored = ([p for p in photos if p["split"] == s] for s in ("onboard", "check"))
    report["zero_shot"]["cut_from_onboard_on_check"] = {
        "note": "diagnostic only: one cut on the cell score picked on `onboard`, F1 on `check`",
        "model": transfer_cut(fit, scored, "score"), "dark_line": transfer_cut(fit, scored,
                                                                               "dark")}
    return report


def curve_point(n: int | None, frames: bool = False, pick_seed: int = PICK_SEED,
                full: bool = False) -> dict[str, Any]:
    """One point of the learning curve: onboard() with the first n photos (None: all, 0: the
    control) in a scratch directory, its headline figures on `check` up front. One per process
    (isolate_stores)."""
    rows = load_manifest()
    with tempfile.TemporaryDirectory() as tmp:
        run = onboard(rows, Path(tmp), n, frames, pick_seed, full)
    check, own = run["check"], run["imported_held_out"] or {}
    return {"n": run["n"], "frames": frames, "pick_seed": pick_seed, "full": full,
            "cell_f1": check["cell_f1"],
            "cell_auc": check["cell_auc"], "precision": check["cell_precision"],
            "recall": check["cell_recall"], "flagged_share": check["flagged_share"],
            "level_agreement": check["level_agreement"],
            "pothole_photo_share": check["pothole_photo_share"],
            "oracle_cut_f1": run["diagnostics"]["oracle_cut"]["scored_f1"],
            "imported_held_out": {k: own.get(k) for k in ("photos", "cell_f1", "cell_auc",
                                                          "level_agreement")},
            "train_tiles": run["trained"]["train_tiles"],
            "retrain_s": run["retrain_s"], "load_average_start": run["load_average_start"],
            "load_average_end": run["load_average_end"],
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run": run}


def merge_point(curve: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """curve (road_masks_curve.json's content, {} for none) with point in `learning_curve`,
    replacing a point of the same (n, frames, pick_seed, full); sorted by (full, frames,
    pick_seed, n)."""
    def key(p: dict[str, Any]) -> tuple[bool, bool, int, int]:
        return p.get("full", False), p["frames"], p.get("pick_seed", PICK_SEED), p["n"]

    points = [p for p in curve.get("learning_curve", []) if key(p) != key(point)]
    points = sorted([*points, point], key=key)
    return {**curve, "check": "the 100 `check` photos (survey segments never imported)",
            "learning_curve": points}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (module docstring). onboard: None (no onboarding), -1 (all photos) or
    the number to import; SystemExit (argparse's usage error) for --onboard with --control, a
    negative N, or --frames without a retrain."""
    parser = argparse.ArgumentParser(prog="python -m bench.road_masks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", type=Path,
                        default=ROOT / "build" / "road_damage" / "onnx")
    parser.add_argument("--onboard", nargs="?", type=int, const=-1, metavar="N",
                        help="import the first N onboard photos (all without N), retrain, score")
    parser.add_argument("--control", action="store_true",
                        help="the same retrain without the import (the curve's n = 0)")
    parser.add_argument("--pick-seed", type=int, default=PICK_SEED, metavar="S",
                        help="pick_onboard's seed (another draw of the same n photos)")
    parser.add_argument("--frames", action="store_true",
                        help="keep the config's real.frames in the scratch workspace")
    parser.add_argument("--full", action="store_true",
                        help="the config's own schedule (synthetic photos, epochs, threads) "
                             "instead of the short one")
    args = parser.parse_args(argv)
    if args.onboard is not None and args.control:
        parser.error("--onboard and --control: run them one at a time (one retrain a process)")
    if args.onboard is not None and args.onboard < -1:
        parser.error(f"--onboard {args.onboard}: N must be 0 or more")
    for flag in ("frames", "full"):
        if getattr(args, flag) and args.onboard is None and not args.control:
            parser.error(f"--{flag} goes with --onboard or --control")
    return args


def main(argv: list[str]) -> None:
    """Zero-shot -> OUT; an onboarding or control run -> a point merged into CURVE_OUT."""
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.onboard is None and not args.control:
        out = run(args.model_dir)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        print(json.dumps({k: v for k, v in out.items() if k != "photos"}, ensure_ascii=False,
                         indent=1))
        return
    n = 0 if args.control else (None if args.onboard == -1 else args.onboard)
    point = curve_point(n, args.frames, args.pick_seed, args.full)
    curve = json.loads(CURVE_OUT.read_text()) if CURVE_OUT.is_file() else {}
    CURVE_OUT.parent.mkdir(parents=True, exist_ok=True)
    CURVE_OUT.write_text(json.dumps(merge_point(curve, point), ensure_ascii=False, indent=1)
                         + "\n")
    print(json.dumps({k: v for k, v in point.items() if k != "run"}, ensure_ascii=False,
                     indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
