"""Real RDD crops: the curated folder, the split by city and the `real` evaluation block."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.road_damage import real
from models.road_damage.labels import CLASSES, RDD_CLASSES
from models.road_damage.net import build, predict
from models.task import registry

CUTS = {"class": [0.5] * 4, "crack": 0.5}


def test_curated_folder_matches_its_manifest_and_size_limits() -> None:
    manifest = pd.read_csv(real.ROOT / "manifest.csv", dtype=str)
    assert list(manifest.columns) == ["file", "rdd_class", "city", "source_path"]
    assert len(manifest) == 1187 and manifest["file"].is_unique
    sizes = [(real.ROOT / f).stat().st_size for f in manifest["file"]]
    assert max(sizes) < 2_000_000 and sum(sizes) < 20_000_000
    assert (manifest["source_path"].str.startswith("croppedDataset-resized/")).all()
    assert set(manifest["city"]) == {"adachi", "chiba", "ichihara", "konan", "matsudo",
                                     "muroran", "nagakute"}
    assert (real.ROOT / "DATA_CARD.md").read_text().count("CC BY-SA 4.0") >= 1


def test_joint_cracks_are_damage_and_markings_are_negatives() -> None:
    lab = real.rdd_labels(np.array(["D01", "D11", "D43", "D44", "D99"]))
    assert lab[0, CLASSES.index("D00")] == 1 and lab[1, CLASSES.index("D10")] == 1
    assert (lab[2:4, 0] == 1).all() and lab[2:4, 1:].sum() == 0
    assert lab[4].sum() == 0  # an undocumented code is neither
    assert RDD_CLASSES["D01"] == "D00" and RDD_CLASSES["D11"] == "D10"


def test_split_keeps_every_city_on_one_side() -> None:
    train, test = real.split(real.load())
    assert set(test.city) == set(real.HELD_OUT_CITIES)
    assert not set(train.city) & set(test.city)
    assert len(train.rdd) + len(test.rdd) == 1187 and len(test.rdd) == 296


def _fake(cities: list[str], codes: list[str], shade: list[int]) -> real.RealCrops:
    images = np.stack([np.full((128, 128, 3), s, np.uint8) for s in shade])
    return real.RealCrops(images, np.array(codes), np.array(cities),
                          real.rdd_labels(np.array(codes)))


def test_real_block_scores_held_out_cities_only() -> None:
    # training cities' crops are white, held-out ones dark: the model must only see dark ones
    crops = _fake(["chiba", "muroran", "muroran", "ichihara", "konan"],
                  ["D00", "D00", "D43", "D20", "D44"], [255, 40, 60, 80, 255])
    seen: list[np.ndarray] = []

    def model(w: np.ndarray) -> np.ndarray:
        seen.append(w)
        p = np.zeros((len(w), len(CLASSES)), np.float32)
        p[:, 1] = 1 - w[:, 0, 0, 0] / 255  # darker = more cracked
        return p

    block = real.evaluate(model, 96, CUTS, crops)
    assert len(seen) == 1 and seen[0].shape == (3, 96, 96, 3) and seen[0].max() < 255
    assert block["held_out_cities"] == ["muroran", "ichihara"]
    assert block["train_cities"] == ["chiba", "konan"]
    assert (block["crops"], block["crack_crops"], block["negative_crops"]) == (3, 2, 1)
    assert block["crack_auc"] == 0.5  # D00 at 40 ranks above the marking at 60, D20 at 80 below
    assert block["calibration"]["brier"] > 0


def test_real_block_changes_with_the_model() -> None:
    cfg = registry()["road_damage"].Config.model_validate(
        {"model": {"hidden_sizes": [8, 16, 16, 16], "embedding_size": 8}}).model
    crops = real.load()
    blocks = []
    for seed in (0, 1):
        net, _ = build(cfg, seed)  # build seeds torch's initial weights
        blocks.append(real.evaluate(lambda w, n=net: predict(n, w), 96, CUTS, crops))
    a, b = blocks
    assert a["crops"] == b["crops"] == 296 and a["crack_crops"] == 239
    assert a["crack_auc"] is not None and 0 <= a["crack_auc"] <= 1
    assert (a["crack_auc"], a["calibration"]) != (b["crack_auc"], b["calibration"])
    assert set(a["per_class"]) <= {"D00", "D01", "D20"} and "D00" in a["per_class"]


@pytest.mark.parametrize("truth,score,expected", [
    ([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2], 1.0), ([1, 0], [0.1, 0.9], 0.0),
    ([1, 0], [0.5, 0.5], 0.5), ([1, 1], [0.1, 0.2], None)])
def test_auc(truth: list[int], score: list[float], expected: float | None) -> None:
    assert real.auc(np.array(truth, bool), np.array(score)) == expected


def test_calibration_is_zero_for_perfect_and_large_for_confident_wrong() -> None:
    t = np.array([1.0, 0.0])
    assert real.calibration(t, np.array([1.0, 0.0])) == {"brier": 0.0, "ece": 0.0}
    assert real.calibration(t, np.array([0.0, 1.0]))["brier"] == 1.0


def test_training_adds_only_the_training_cities_crops() -> None:
    from models.road_damage.task import with_real

    task = registry()["road_damage"]
    tiles = np.zeros((5, 96, 96, 3), np.uint8)
    labels = np.tile(np.eye(len(CLASSES), dtype=np.int8)[0], (5, 1))
    off = task.Config()
    assert with_real(off, tiles, labels, 96)[3] == 0
    on = task.Config.model_validate({"real": {"train": True, "repeat": 2}})
    X, Y, hard, n = with_real(on, tiles, labels, 96)
    train, test = real.split(real.load())
    assert n == len(train.rdd) == 891 and len(X) == len(Y) == 5 + 2 * 891
    assert hard is not None and hard.sum() == 2 * int(train.negative.sum()) and not hard[:5].any()
    # no held-out crop is among the added ones
    held = {im.tobytes() for im in real.windows(test.images, 96)}
    assert not held & {x.tobytes() for x in X[5:]}


def test_pooling_metric_is_the_headline_without_the_real_block(monkeypatch) -> None:
    from models.road_damage.task import RoadDamage

    task = RoadDamage()
    calls: list[str] = []
    head = {"headline": {"metric": "tile_crack_f1", "value": 0.5}}
    monkeypatch.setattr(task, "evaluate_synthetic", lambda *a: calls.append("syn") or head)
    monkeypatch.setattr(task, "evaluate_real", lambda *a: calls.append("real") or {})
    assert task.pooling_metric(None, None, None) == ("tile_crack_f1", 0.5)
    assert calls == ["syn"]
    assert task.evaluate(None, None, None)["real"] == {} and calls[1:] == ["syn", "real"]


def test_model_card_attributes_the_real_crops_only_when_trained_on() -> None:
    from models.road_damage.net import build
    from models.road_damage.task import make_assets

    task = registry()["road_damage"]
    small = {"hidden_sizes": [8, 8, 8, 8], "embedding_size": 8}
    off = task.Config.model_validate({"model": small})
    on = task.Config.model_validate({"model": small, "real": {"train": True}})
    net, _ = build(off.model)
    assert make_assets(off, "scratch", net, 0.5)["real_data"] is None
    assert "CC BY-SA 4.0" in make_assets(on, "scratch", net, 0.5)["real_data"]
    assert make_assets(on, "scratch", net, 0.5)["nonroad_data"] is None
    nr = task.Config.model_validate({"model": small, "real": {"nonroad_tiles": 10}})
    assert "CC BY 2.0" in make_assets(nr, "scratch", net, 0.5)["nonroad_data"]


def test_fit_with_real_train_never_sees_the_crops_its_real_block_scores(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 7 end to end: task.fit with real.train on, then task.evaluate. Every tile that
    reaches net.train is recorded, and so is every window the real block scores: the two never
    share an image, and the scored ones are exactly the held-out cities' crops."""
    from models.road_damage import net
    from tests.conftest import SMALL_ROAD
    from training import sandbox
    from training.data import load_pooled, write_generated
    from training.workspace import Workspace

    small = {**SMALL_ROAD, "generate": {"total_photos": 8, "min_photos": 2, "min_test_photos": 0},
             "model": {**SMALL_ROAD["model"], "epochs": 1},
             "real": {"train": True, "repeat": 1}}
    ws = Workspace.load(sandbox.make_workspace(tmp_path, "road_damage", small))
    task = ws.task("road_damage")
    write_generated(ws, task, progress=False)
    cfg = ws.task_config(task)
    train, test = task.split(cfg, load_pooled(ws, task, progress=False))
    trained: list[np.ndarray] = []
    scored: list[np.ndarray] = []
    real_train = net.train
    monkeypatch.setattr(net, "train", lambda model, X, *a, **k: trained.append(X) or
                        real_train(model, X, *a, **k))
    model = task.fit(cfg, train)
    assert model.history["train_real_crops"] == 891
    predict = task.predict_tiles
    monkeypatch.setattr(task, "predict_tiles", lambda m, w: scored.append(w) or predict(m, w))
    block = task.evaluate(cfg, model, test)["real"]
    window = 64 + 2 * 16
    held = real.windows(real.split(real.load())[1].images, window)
    assert len(scored) >= 1 and any(np.array_equal(s, held) for s in scored)
    assert block["crops"] == len(held) == 296 and block["crack_auc"] is not None
    seen = {x.tobytes() for x in trained[0]}
    assert not seen & {w.tobytes() for w in held}
    # the training cities' crops did reach training (the spy would see a leak)
    own = real.windows(real.split(real.load())[0].images, window)
    assert {w.tobytes() for w in own} <= seen


def test_onboarding_curve_never_scores_a_crop_it_may_label() -> None:
    from bench.road_onboarding import NEW_CITY, OTHER_CITY, SIZES, new_city_split

    pool, rest = new_city_split()
    assert len(pool.rdd) == max(SIZES) and len(pool.rdd) + len(rest.rdd) == 181
    assert set(pool.city) == set(rest.city) == {NEW_CITY} and OTHER_CITY != NEW_CITY
    assert not {im.tobytes() for im in pool.images} & {im.tobytes() for im in rest.images}
    assert pool.labels.any(axis=1).all() and rest.labels.any(axis=1).all()
    both = real.concat([pool, rest])
    assert len(both.rdd) == 181 and (both.images[:len(pool.rdd)] == pool.images).all()
