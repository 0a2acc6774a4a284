"""The ImageNet scene features of the road-photo check (scene.py): thumbnails, the features,
the class choice, the ONNX graph serving runs, and what they do on real photos that neither
the class choice nor the check was fitted on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.road_damage import nonroad, real, roadphoto, scene
from models.road_damage.analyze import RoadCheck, road_verdict
from models.road_damage.photo import tiles
from models.road_damage.roadphoto import PhotoCheck


def test_grid_image_puts_the_tiles_back_together() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (3 * 64, 4 * 64, 3), dtype=np.uint8)
    assert (scene.grid_image(tiles(arr, 64, 16), 3, 4, 16) == arr).all()
    assert (scene.grid_image(tiles(arr, 64), 3, 4, 0) == arr).all()
    with pytest.raises(ValueError, match="3 x 3 grid"):
        scene.grid_image(tiles(arr, 64, 16), 3, 3, 16)


def test_thumbnail_is_the_whole_photo_squashed() -> None:
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 150:] = 255  # right half white: stays the right half after squashing
    t = scene.thumbnail(img)
    assert t.shape == (scene.SIZE, scene.SIZE, 3) and t.dtype == np.uint8
    assert t[:, :100].max() == 0 and t[:, -100:].min() == 255
    with pytest.raises(ValueError, match="uint8"):
        scene.thumbnail(img.astype(np.float32))


def test_features_are_class_masses_entropy_and_top_probability() -> None:
    uniform = np.full(scene.CLASSES, 1 / scene.CLASSES)
    one = np.eye(scene.CLASSES)[7]
    f = scene.features(np.stack([uniform, one]), ((7, 8), (1, 2, 3)))
    assert f.shape == (2, 2 + 2)  # a mass per class set, entropy, top probability
    assert f[0].tolist() == pytest.approx([np.log(2 / scene.CLASSES), np.log(3 / scene.CLASSES),
                                          1.0, np.log(1 / scene.CLASSES)], abs=1e-3)
    assert f[1].tolist() == pytest.approx([0.0, np.log(1e-6), 0.0, 0.0], abs=1e-4)
    assert scene.features(one, ((1, 2),)).shape == (3,)  # one photo


def test_road_classes_are_chosen_per_source() -> None:
    p = np.zeros((11, scene.CLASSES))
    p[:10, 3], p[:10, 4] = 0.9, 0.1  # ten real crops on classes 3 and 4
    p[10, 5], p[10, 6] = 0.7, 0.3  # one synthetic photo on 5 and 6: its own set all the same
    src = np.array(["city"] * 10 + ["synthetic"])
    assert scene.road_classes(p, src, k=2) == ((3, 4), (5, 6))
    with pytest.raises(ValueError, match="no road photos"):
        scene.road_classes(p[:0], src[:0])


def test_scene_onnx_gives_what_torch_gives() -> None:
    """Serving's scene.onnx and the torch network that fitted the check agree."""
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    thumbs = rng.integers(0, 256, (3, scene.SIZE, scene.SIZE, 3), dtype=np.uint8)
    session = ort.InferenceSession(scene.to_onnx(scene.OPSET),
                                   providers=["CPUExecutionProvider"])
    exported, native = scene.run_onnx(session, thumbs), scene.torch_probabilities(thumbs)
    assert exported.shape == (3, scene.CLASSES)
    assert np.allclose(exported.sum(1), 1, atol=1e-4)
    assert np.abs(exported - native).max() < 1e-4
    assert np.abs(scene.probabilities(thumbs) - native).max() < 1e-4  # what training uses


def test_check_keeps_held_out_real_crops_and_refuses_held_out_non_road_photos() -> None:
    """Fitted on scene features only (the other features constant) with the training cities'
    real crops as road photos and the trained-on non-road photos (splits train, photo), the
    check keeps the crops of the held-out cities (室蘭, 市原: never trained on), in colour and
    in grey, and refuses the held-back non-road photos (split val): the ImageNet classes the
    training crops favour carry over to cities and photos it never saw."""
    rng = np.random.default_rng(0)
    own, held_out = real.split(real.load())
    road = [own.images[i] for i in rng.choice(len(own.images), 40, replace=False)]
    others = [img for s in roadphoto.NONROAD_SPLITS for _, img in nonroad.load(s)]
    probs = scene.of_images(road + others)
    groups = [f"city:{i % 5}" for i in range(len(road))] + [f"nonroad:{i}"
                                                              for i in range(len(others))]
    examples = [(np.zeros(1, np.float32), g.startswith("city"), g) for g in groups]
    check, report = roadphoto.fit(examples, keep=0.95, scene_probs=probs)
    assert check.scene_classes is not None and len(check.scene_classes) == 1  # "city" only
    assert len(check.scene_classes[0]) == scene.ROAD_CLASSES
    assert report["scene_classes"] == [list(c) for c in check.scene_classes]
    pick = rng.choice(len(held_out.images), 40, replace=False)
    colour = scene.of_images([held_out.images[i] for i in pick])
    grey = scene.of_images([roadphoto.greyscale(held_out.images[i]) for i in pick])
    val = scene.of_images([img for _, img in nonroad.load("val")])

    def kept(p: np.ndarray) -> float:
        return float(np.mean([check.score(check.features(np.zeros(1), q)) >= check.cut
                              for q in p]))

    assert kept(colour) >= 0.9 and kept(grey) >= 0.85
    assert kept(val) <= 0.25


def test_a_scene_check_round_trips_and_refuses_to_run_without_its_input() -> None:
    check = PhotoCheck(np.zeros(4), np.ones(4), np.array([0, 0, 0, 1.0]), 0.0, 0.5, False,
                       ((3, 9),))
    again = PhotoCheck.of({"road_photo": json.loads(json.dumps(check.to_dict()))})
    assert again is not None and again.scene_classes == ((3, 9),)
    p = np.full(scene.CLASSES, 1e-4)
    p[3] = 1 - p.sum() + p[3]
    assert check.features(np.zeros(1), p).shape == (4,)
    with pytest.raises(ValueError, match="ImageNet"):
        check.features(np.zeros(1))
    pav, dist = np.ones(4, np.float32), np.ones(4, np.float32)
    emb = np.zeros((4, 1), np.float32)
    base = PhotoCheck(np.zeros(11), np.ones(11), np.zeros(11), 0.0, 0.5, False, ((3,),))
    with pytest.raises(ValueError, match="ImageNet"):
        road_verdict(pav, dist, RoadCheck(), emb, base)
    assert road_verdict(pav, dist, RoadCheck(), emb, base, None, p)[1]
