"""road_damage end to end on tiny data: evaluation shape, ONNX parity, packaged assets."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from models.road_damage.analyze import run_onnx, tile_flags
from models.road_damage.labels import CLASSES
from models.road_damage.photo import Grid, photo_tiles
from training.workspace import Workspace


def test_evaluation_reports_tiles_levels_baseline_and_pooling(road_root: Path) -> None:
    ev = json.loads((road_root / "build" / "road_damage" / "evaluation.json").read_text())
    h = ev["headline"]
    assert h["metric"] == "tile_crack_f1" and h["oracle"] == 1.0
    assert 0 <= h["value"] <= 1 and 0 <= h["baseline"] <= 1
    o = ev["overall"]
    assert set(o["f1"]) == set(CLASSES) and 0 <= o["mlit_accuracy"] <= 1
    assert o["init"] == "scratch" and o["epochs_run"] >= 1 and len(o["thresholds"]["class"]) == 4
    assert 0.2 <= o["thresholds"]["crack"] <= 0.8
    assert o["tiles"] == o["photos"] * 12  # 4 x 3 tiles per photo in the tiny workspace
    assert set(ev["per_tenant"]) <= {"121002", "012050", "182079", "012084"}
    assert set(ev["pooling"]) == set(ev["per_tenant"])
    assert ev["pooling"]["121002"]["local"] is not None
    # generate.min_test_photos: every tenant's holdout holds at least 3 photos, and the
    # pooled vs local-only row says on how many it was judged
    for code, row in ev["pooling"].items():
        assert row["held_out"] == ev["per_tenant"][code]["photos"] >= 3
        assert ev["per_tenant"][code]["cracked_tiles"] >= 0


def test_exported_onnx_matches_torch_through_shared_preprocessing(road_root: Path) -> None:
    import onnxruntime as ort

    meta = json.loads((road_root / "build" / "road_damage" / "onnx" / "meta.json").read_text())
    assert meta["parity"]["passed"] and meta["parity"]["rows"] > 0
    model = pickle.loads((road_root / "build" / "road_damage" / "model.pkl").read_bytes())
    session = ort.InferenceSession(str(road_root / "build" / "road_damage" / "onnx" /
                                       "model.onnx"), providers=["CPUExecutionProvider"])
    photo = sorted((road_root / "data" / "road_damage" / "images").rglob("*.jpg"))[0]
    tiles, (rows, cols), _, _ = photo_tiles(photo.read_bytes(), Grid.of(model.assets))
    assert (rows, cols) == (3, 4) and tiles.shape[1:] == (96, 96, 3)  # 64 px + 16 px context
    from models.road_damage.net import outputs

    native, exported = outputs(model.net, model.familiarity, tiles), run_onnx(session, tiles)
    for key in ("probabilities", "pavement", "distance", "embedding"):
        assert np.abs(native[key] - exported[key]).max() < 1e-4, key
    assert exported["distance"].min() > 0  # the familiarity statistics are in the graph
    cut = model.assets["threshold"]
    assert (tile_flags(native["probabilities"], cut)
            == tile_flags(exported["probabilities"], cut)).all()


def test_road_assets_tell_serving_the_grid(road_root: Path) -> None:
    assets = json.loads((road_root / "build" / "road_damage" / "onnx" / "road.json").read_text())
    assert assets["classes"] == list(CLASSES)
    assert (assets["long_side"], assets["tile"], assets["context"]) == (256, 64, 16)
    assert assets["architecture"] == "resnet" and assets["parameters"] > 1000
    ws = Workspace.load(road_root)
    assert ws.task_config(ws.task("road_damage")).grid.long_side == 256


def test_real_block_is_in_evaluation_and_metrics_on_held_out_cities(road_root: Path) -> None:
    from models.road_damage.real import HELD_OUT_CITIES

    ev = json.loads((road_root / "build" / "road_damage" / "evaluation.json").read_text())
    metrics = json.loads((road_root / "reports" / "road_damage" / "metrics.json").read_text())
    assert metrics["real"] == ev["real"]
    block = ev["real"]
    assert block["held_out_cities"] == list(HELD_OUT_CITIES)
    assert not set(block["train_cities"]) & set(HELD_OUT_CITIES)
    assert block["crops"] == 296 and block["crack_crops"] + block["negative_crops"] == 292
    assert 0 <= block["crack_auc"] <= 1 and 0 <= block["crack_f1"] <= 1
    assert {"brier", "ece"} <= set(block["calibration"]) and "D00" in block["per_class"]


def test_road_photo_check_ships_in_road_json_and_is_measured(road_root: Path) -> None:
    """The photo-level road check (roadphoto.py) is fitted with the tile model, exported as
    plain numbers in road.json, and the held-out cities' crops sent as photos are scored with
    it in metrics.json (real.as_photos)."""
    import onnxruntime as ort

    from models.road_damage import scene
    from models.road_damage.roadphoto import IMAGE_STATS, PhotoCheck

    package = road_root / "build" / "road_damage" / "onnx"
    assets = json.loads((package / "road.json").read_text())
    check = PhotoCheck.of(assets)
    assert check is not None and check.image_stats
    # a class set per road-photo source: real crops ("city"), synthetic photos, real frames
    assert check.scene_classes is not None and len(check.scene_classes) == 3
    assert all(len(c) == scene.ROAD_CLASSES for c in check.scene_classes)
    # ResNet d=16: mean and spread, share, mean pavement, 4 distance quantiles, pixel
    # statistics, the scene features (ImageNet class mass per set, entropy, top probability)
    assert len(check.coef) == len(check.mean) == len(check.scale) == \
        2 * 16 + 6 + len(IMAGE_STATS) + len(check.scene_classes) + 2
    # serving's scene.onnx ships beside model.onnx and gives what torch gave at fit time
    session = ort.InferenceSession(str(package / "scene.onnx"),
                                   providers=["CPUExecutionProvider"])
    photo = sorted((road_root / "data" / "road_damage" / "images").rglob("*.jpg"))[0]
    image = photo_tiles(photo.read_bytes(), Grid.of(assets))[3]
    thumbs = scene.thumbnail(image)[None]
    assert np.abs(scene.run_onnx(session, thumbs) - scene.torch_probabilities(thumbs)).max() < 1e-4
    ev = json.loads((road_root / "build" / "road_damage" / "evaluation.json").read_text())
    report = ev["overall"]["road_photo"]
    # the shipped cut is the one the out-of-fold curve chose (a probability: the tiny model may
    # separate its few photos so well that the 1st percentile rounds to 0 or 1)
    assert 0 <= check.cut <= 1 and check.cut == report["cut"]
    assert report["photos"]["road"] > 0 and report["photos"]["non_road"] > 0
    assert report["real_crops"] > 0 and report["tradeoff"]
    photos = ev["real"]["as_photos"]
    assert photos["crops"] == 99 and photos["road_photo_check"]
    for kind in ("colour", "grey"):
        assert 0 <= photos[kind]["level_given"] <= 1
