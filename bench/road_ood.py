"""road_damage: the pavement mask and the out-of-domain rule, measured on photos the model never
trained on, through the serving path (photo_tiles -> the exported graph's outputs computed
natively (parity-gated equal to ONNX) -> analyze.summarise).

    python -m bench.road_ood /tmp/ws-ood 80 4        # photos, epochs (the fit is cached)

Sets: the synthetic held-out photos (close-ups, street views, off-road), fresh synthetic
off-road photos, the held-out cities' real RDD crops each sent as a photo (pavement close-ups
the model must keep a level for), and the real photos scikit-image ships in its wheel
(astronaut, coffee, chelsea, rocket, camera, ...: evaluation only; nothing is tuned on them).
Writes reports/bench/road_ood.json.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.road_real import workspace_split
from models.road_damage import real
from models.road_damage.analyze import RoadCheck, photo_distance, road_verdict, summarise
from models.road_damage.generate import PHOTO, effects
from models.road_damage.photo import Grid, photo_tiles
from models.road_damage.roadphoto import PhotoCheck, fit_model, greyscale, jpeg
from models.road_damage.street import off_road
from models.road_damage.task import _hash_share, familiarity, load_tiles

# The defaults (pretrained EfficientNet-Lite0 + real crops + 1,200 windows of the real non-road
# photos in assets/road_nonroad), spelled out so this bench measures that model whatever
# configs/road_damage.yaml says.
MODEL = {"architecture": "efficientnet_lite0", "init": "imagenet", "freeze_blocks": 10,
         "patience": 3, "batch_size": 64, "learning_rate": 0.001}
REAL = {"train": True, "repeat": 2, "nonroad_tiles": 1200}
# Photos from the scikit-image wheel (skimage/data/*): none is a road photo.
SKIMAGE = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
           "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
           "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
           "clock_motion.png", "horse.png", "cell.png", "microaneurysms.png", "color.png")
OUT = Path("reports/bench/road_ood.json")


def skimage_photos() -> dict[str, bytes]:
    """The wheel's photos as PNG bytes (ImportError without scikit-image: the dev extra)."""
    import skimage.data

    root = Path(skimage.data.__file__).parent
    out = {}
    for name in SKIMAGE:
        if (root / name).is_file():
            buf = io.BytesIO()
            Image.open(root / name).save(buf, "PNG")
            out[name] = buf.getvalue()
    return out


def off_road_photos(n: int, seed: int = 12345) -> dict[str, bytes]:
    """Fresh synthetic photos without road (seeds no training photo used), as JPEG."""
    out = {}
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        buf = io.BytesIO()
        effects(rng, off_road(rng, PHOTO)).save(buf, "JPEG", quality=85)
        out[f"off_road_{i}"] = buf.getvalue()
    return out


def nonroad_val_photos() -> dict[str, bytes]:
    """The real non-road photos marked val in assets/road_nonroad (never trained on), as JPEG."""
    from models.road_damage import nonroad

    out = {}
    for name, img in nonroad.load("val"):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=90)
        out[name] = buf.getvalue()
    return out


def crop_photos(grey: bool = False) -> tuple[dict[str, bytes], dict[str, str]]:
    """The held-out cities' real crops, each as a JPEG photo (in greyscale with grey), and
    their RDD codes."""
    _, test = real.split(real.load())
    photos, codes = {}, {}
    for i, (img, code) in enumerate(zip(test.images, test.rdd, strict=True)):
        photos[f"crop_{i}"] = jpeg(greyscale(img) if grey else img, 92)
        codes[f"crop_{i}"] = str(code)
    return photos, codes


def synthetic_test_photos(test: Any, min_share: float) -> tuple[dict[str, bytes], set[str]]:
    """The held-out synthetic photos as stored (JPEG) and the names of the road photos among
    them (at least min_share of their tiles road surface by the generator's truth)."""
    tiles = test["tiles"].groupby("photo_id")["pavement"].mean()
    photos = {r.photo_id: Path(r.file).read_bytes() for r in test["photos"].itertuples()}
    return photos, {k for k in photos if tiles.get(k, 0) >= min_share}


def analyse(task: Any, model: Any, photos: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Per photo: level, pavement share, warning codes, damage types (the serving summary)."""
    grid, check = Grid.of(model.assets), RoadCheck.of(model.assets)
    photo = PhotoCheck.of(model.assets)
    out = {}
    for name, data in photos.items():
        tiles, (rows, cols), _, _ = photo_tiles(data, grid)
        o = task.predict_outputs(model, tiles)
        res = summarise(o["probabilities"], rows, cols, model.assets["threshold"],
                        o["pavement"], o["distance"], check, o["embedding"], photo)
        paved = o["pavement"] >= check.pavement_cut
        out[name] = {"level": res["mlit_level"], "pavement_share": res["pavement_share"],
                     "road_photo_score": res["road_photo_score"],
                     # the verdict of the tile rules alone (for the trade-off of the cut)
                     "tile_rules_level": road_verdict(o["pavement"], o["distance"], check)[1],
                     "warnings": [w["code"] for w in res["level_warnings"]],
                     "types": [t["type"] for t in res["types"]],
                     "distance": round(photo_distance(o["distance"][paved]), 3)
                     if paved.any() else None}
    return out


def share(rows: dict[str, dict[str, Any]], test: Any) -> float:
    """Share of photos for which test(row) holds."""
    return round(float(np.mean([bool(test(r)) for r in rows.values()])), 4) if rows else 0.0


def fit(root: Path, photos: int, epochs: int) -> tuple[Any, Any, Any, Any]:
    """(task, cfg, model, test frames): the cached fit in root/model.pkl, or a new one."""
    base = {"generate": {"total_photos": photos, "min_photos": max(2, photos // 7),
                         "min_test_photos": 0},
            "model": {**MODEL, "epochs": epochs}, "real": REAL}
    task, cfg, train, test = workspace_split(root, base, base)
    cache = root / "model.pkl"
    if cache.is_file():  # the network as trained; the familiarity statistics fitted anew
        model = pickle.loads(cache.read_bytes())
        photos_ = train["photos"]
        val = _hash_share(photos_["photo_id"], "val") < cfg.model.validation_share
        grid = Grid(**cfg.grid.model_dump())
        fit_set = load_tiles(photos_[~val], train["tiles"], grid)
        val_set = load_tiles(photos_[val], train["tiles"], grid)
        model.familiarity, model.assets["road_check"] = familiarity(
            cfg, model.net, fit_set, val_set, grid.window, 0)
        # the road-photo check of this code, cached apart (delete road_photo.json to refit)
        cached = root / "road_photo.json"
        if not cached.is_file():
            t0 = time.perf_counter()
            check, rep = fit_model(model.net, model.familiarity, [fit_set, val_set], grid,
                                   cfg.road_check.pavement_cut, cfg.road_check.min_share, 0)
            rep["fit_s"] = round(time.perf_counter() - t0, 1)
            cached.write_text(json.dumps({"road_photo": check, "report": rep}))
        saved = json.loads(cached.read_text())
        model.assets["road_photo"], model.history["road_photo"] = (saved["road_photo"],
                                                                   saved["report"])
        return task, cfg, model, test
    t0 = time.perf_counter()
    model = task.fit(cfg, train, progress=True, seed=0)
    model.history["fit_s"] = round(time.perf_counter() - t0, 1)
    cache.write_bytes(pickle.dumps(model))
    return task, cfg, model, test


def run(root: Path, photos: int, epochs: int) -> dict[str, Any]:
    """Every figure of the report."""
    task, cfg, model, test = fit(root, photos, epochs)
    syn = task.evaluate_synthetic(cfg, model, test)["overall"]
    block = task.evaluate_real(cfg, model)
    sk = analyse(task, model, skimage_photos())
    off = analyse(task, model, off_road_photos(30))
    nr = analyse(task, model, nonroad_val_photos())
    crops, codes = crop_photos()
    cr = analyse(task, model, crops)
    grey = analyse(task, model, crop_photos(grey=True)[0])
    syn_photos, syn_road = synthetic_test_photos(test, cfg.road_check.min_share)
    st = analyse(task, model, syn_photos)
    st_road = {k: v for k, v in st.items() if k in syn_road}
    st_off = {k: v for k, v in st.items() if k not in syn_road}
    no_hole = {k: v for k, v in cr.items() if codes[k] != "D40"}
    warned = lambda r: bool(r["warnings"])  # noqa: E731
    levelled = lambda r: r["level"] is not None  # noqa: E731
    sets = {"real_crops_held_out": cr, "real_crops_held_out_grey": grey,
            "synthetic_test_road": st_road, "synthetic_test_off_road": st_off,
            "synthetic_off_road_fresh": off, "real_nonroad_val": nr, "skimage": sk}
    report = model.history.get("road_photo") or {}
    # the cut's trade-off on these evaluation sets, at the cuts of the fit's own validation
    # curve (reported, never used to choose the cut: that is the out-of-fold curve's job)
    curve = [{"cut": t["cut"], "validation_road_kept": t["road_kept"],
              "validation_non_road_refused": t["non_road_refused"],
              **{name: share(rows, lambda r, q=t["cut"]: r["tile_rules_level"] and (
                  r["road_photo_score"] is None or r["road_photo_score"] >= q))
                 for name, rows in sets.items()}} for t in report.get("tradeoff", [])]
    return {
        "model": {**MODEL, "epochs": epochs, "real": REAL, "photos": photos,
                  "fit_s": model.history.get("fit_s"), "road_check": model.assets["road_check"],
                  "road_photo": {k: v for k, v in report.items() if k != "tradeoff"}},
        "level_given": {name: share(rows, levelled) for name, rows in sets.items()},
        "level_given_without_photo_check": {
            name: share(rows, lambda r: r["tile_rules_level"]) for name, rows in sets.items()},
        "tradeoff": curve,
        "skimage_levelled": sorted(k for k, v in sk.items() if v["level"] is not None),
        "synthetic_held_out": {k: syn[k] for k in (
            "photos", "road_photos", "non_road_photos", "crack_f1", "baseline_crack_f1",
            "mlit_accuracy", "level_withheld_on_road", "level_given_on_non_road",
            "pothole_on_photos_without", "pavement")},
        "real_held_out_crops_as_tiles": {k: block[k] for k in (
            "crops", "crack_auc", "crack_f1", "negatives_flagged", "potholes_found",
            "potholes_flagged_without")},
        "real_held_out_crops_as_photos": {
            "photos": len(cr), "level_given": share(cr, lambda r: r["level"] is not None),
            "warned": share(cr, warned),
            "median_pavement_share": float(np.median([r["pavement_share"] for r in cr.values()])),
            "pothole_on_photos_without": share(no_hole, lambda r: "D40" in r["types"])},
        "real_held_out_crops_grey_as_photos": {
            "photos": len(grey), "level_given": share(grey, levelled),
            "warned": share(grey, warned)},
        "synthetic_test_photos": {
            "road_photos": len(st_road), "road_level_given": share(st_road, levelled),
            "off_road_photos": len(st_off), "off_road_level_given": share(st_off, levelled)},
        "synthetic_off_road_fresh": {
            "photos": len(off), "level_given": share(off, lambda r: r["level"] is not None),
            "warned": share(off, warned)},
        "real_nonroad_val_photos": {
            "photos": len(nr), "level_given": share(nr, lambda r: r["level"] is not None),
            "warned": share(nr, warned), "each": nr},
        "skimage_photos": {
            "photos": len(sk), "level_given": share(sk, lambda r: r["level"] is not None),
            "warned": share(sk, warned), "each": sk},
    }


if __name__ == "__main__":
    report = run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items()
                      if k not in ("skimage_photos", "real_nonroad_val_photos")}, indent=1))
    print("skimage: level given", sum(v["level"] is not None
                                      for v in report["skimage_photos"]["each"].values()),
          "of", report["skimage_photos"]["photos"])
    print(json.dumps({k: (v["level"], v["pavement_share"], v["warnings"], v["distance"],
                          v["road_photo_score"])
                      for k, v in report["skimage_photos"]["each"].items()}))
