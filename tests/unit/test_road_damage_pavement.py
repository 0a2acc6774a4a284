"""The pavement mask and the out-of-domain rule: street and off-road synthetic photos, the level
over road-surface tiles only, the greyed overlay, and the familiarity statistics."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from models.road_damage import ood
from models.road_damage.analyze import (
    NOT_ROAD,
    UNFAMILIAR,
    UNLIKE,
    RoadCheck,
    overlay_png,
    summarise,
)
from models.road_damage.generate import NOT_PAVEMENT_BIT, Spec, photo
from models.road_damage.labels import CLASSES, crack_ratio
from models.road_damage.photo import Grid
from models.road_damage.schema import validate

CUT = 0.5
CHECK = RoadCheck(min_share=0.15, low_share=0.35, familiar=2.0, unfamiliar_share=0.5, far=5.0)


def grid_probs(cracked: list[int], n: int = 16) -> np.ndarray:
    """Probabilities (n, classes): the listed tiles are surely a longitudinal crack."""
    p = np.zeros((n, len(CLASSES)), np.float32)
    p[:, 0] = 1.0
    p[cracked, 0], p[cracked, 1] = 0.0, 0.99
    return p


def test_level_and_crack_ratio_ignore_tiles_that_are_not_road_surface() -> None:
    # 4 x 4: the top half is sky and a building, every one of its tiles looks "cracked";
    # the road half has one cracked tile in eight
    probs = grid_probs([0, 1, 2, 3, 4, 5, 6, 7, 12])
    pavement = np.r_[np.zeros(8), np.ones(8)].astype(np.float32)
    res = summarise(probs, 4, 4, CUT, pavement, np.ones(16, np.float32), CHECK)
    assert res["pavement_share"] == 0.5
    assert res["crack_ratio"] == 0.125 and res["mlit_level"] == "I"
    assert res["types"] == [{"type": "D00", "label_ja": "縦ひび割れ", "confidence": 0.99,
                             "tiles": 1}]
    top, bottom = res["grid"][0][0], res["grid"][3][0]
    assert top["pavement"] is False and top["labels"] == []
    assert bottom["pavement"] is True and bottom["labels"] == ["D00"]
    # the same probabilities without a pavement mask would call the photo level III
    assert summarise(probs, 4, 4, CUT)["mlit_level"] == "III"


def test_photo_with_almost_no_road_gets_no_level_and_says_why() -> None:
    pavement = np.zeros(16, np.float32)
    pavement[15] = 1.0  # one tile in 16 (6%) is road surface: under min_share
    res = summarise(grid_probs([15]), 4, 4, CUT, pavement, np.ones(16, np.float32), CHECK)
    assert res["mlit_level"] is None and res["mlit_level_ja"] is None
    assert res["level_warnings"] == [NOT_ROAD] and "路面" in NOT_ROAD["ja"]
    assert res["severity"] < 0  # sorts after every photo with a level


def test_unlike_training_gets_no_level_unfamiliar_pavement_keeps_it_with_a_warning() -> None:
    pavement = np.ones(16, np.float32)
    far = summarise(grid_probs([]), 4, 4, CUT, pavement, np.full(16, 6.0, np.float32), CHECK)
    assert far["mlit_level"] is None and far["level_warnings"] == [UNLIKE]
    odd = summarise(grid_probs([]), 4, 4, CUT, pavement, np.full(16, 3.0, np.float32), CHECK)
    assert odd["mlit_level"] == "I" and odd["level_warnings"] == [UNFAMILIAR]
    known = summarise(grid_probs([]), 4, 4, CUT, pavement, np.full(16, 1.0, np.float32), CHECK)
    assert known["mlit_level"] == "I" and known["level_warnings"] == []


def test_overlay_greys_tiles_that_are_not_road_surface() -> None:
    image = np.zeros((128, 128, 3), np.uint8)
    image[..., 0] = 200  # a red photo: grey shows as a loss of red and a gain of blue
    pavement = np.array([False, True, True, True])
    png = overlay_png(image, grid_probs([], 4), 2, 2, CUT, pavement)
    out = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    masked, kept = out[32, 32], out[32, 96]
    assert masked[0] < 160 and masked[2] > 60  # greyed
    assert abs(kept[0] - 200) <= 2 and kept[2] <= 2  # untouched (no damage on it)


def spec(street: float, off_road: float) -> Spec:
    return Spec(4, 2, Grid(512, 64, 16), 1.0, street, off_road)


def test_street_view_has_road_below_and_no_road_at_the_top() -> None:
    tops, bottoms = [], []
    for i in range(6):
        row, labels, _, mask_png = photo(np.random.default_rng([3, i]), "121002", i,
                                         spec(1.0, 0.0))
        assert row["source"] == "synthetic:street"
        paved = labels[:, -1].reshape(row["rows"], row["cols"]).astype(bool)
        tops.append(paved[0].mean())
        bottoms.append(paved[-3:].mean())
        # damage only on road surface, and the crack ratio counts road-surface tiles only
        assert not labels[~paved.ravel(), 1:len(CLASSES)].any()
        assert row["crack_ratio"] == round(crack_ratio(labels[:, :len(CLASSES)],
                                                       paved.ravel()), 4)
        mask = np.asarray(Image.open(io.BytesIO(mask_png)))
        assert (mask & NOT_PAVEMENT_BIT).any() and not (mask & NOT_PAVEMENT_BIT).all()
    assert np.mean(tops) < 0.2 and np.mean(bottoms) > 0.3


def test_off_road_photo_has_no_road_surface_and_no_level() -> None:
    for i in range(3):
        row, labels, _, _ = photo(np.random.default_rng([4, i]), "121002", i, spec(0.0, 1.0))
        assert row["source"] == "synthetic:off_road" and row["mlit_level"] == ""
        assert not labels[:, -1].any() and (labels[:, 0] == 1).all()


def test_close_up_is_all_road_surface() -> None:
    row, labels, _, _ = photo(np.random.default_rng([5, 0]), "121002", 0, spec(0.0, 0.0))
    assert row["source"] == "synthetic:close" and labels[:, -1].all()
    assert row["mlit_level"] in ("I", "II", "III")


def test_tiles_without_a_pavement_column_are_road_surface() -> None:
    tiles = pd.DataFrame({"photo_id": ["a", "a"], "tenant_code": ["121002"] * 2,
                          "row": [0, 0], "col": [0, 1], "none": [1, 0], "D00": [0, 1],
                          "D10": [0, 0], "D20": [0, 0], "D40": [0, 0]})
    assert validate("tiles", tiles)["pavement"].tolist() == [1, 1]
    tiles["pavement"] = ["", "0"]  # CSV cells: empty = an import without the column
    assert validate("tiles", tiles)["pavement"].tolist() == [1, 0]


def test_familiarity_scores_training_features_near_one_and_others_far() -> None:
    from models.road_damage.net import Familiarity

    rng = np.random.default_rng(0)
    mix = rng.normal(size=(24, 24)) * np.r_[np.ones(4) * 5, np.ones(20) * 0.3][:, None]
    train = rng.normal(size=(3000, 24)) @ mix + 2.0
    stats = ood.fit_ppca(train, k=4)
    d_train = ood.distance(train, stats)
    assert 0.8 < float(np.mean(d_train ** 2)) < 1.2
    other = rng.normal(size=(200, 24)) * 3 + 2.0  # spread along the minor directions
    assert np.median(ood.distance(other, stats)) > 1.8 * np.median(d_train)
    torch_d = Familiarity(stats)(torch.as_tensor(other, dtype=torch.float32)).numpy()
    assert np.abs(torch_d - ood.distance(other, stats)).max() < 1e-3


def test_familiarity_needs_some_tiles() -> None:
    with pytest.raises(ValueError, match="need 8"):
        ood.fit_ppca(np.zeros((3, 5)))


def test_tuned_cuts_keep_real_crops_and_validation_photos_levelled() -> None:
    cuts = ood.tune(np.linspace(0.5, 1.5, 100), np.array([0.9, 1.1, 1.3]),
                    np.linspace(1.0, 3.0, 100))
    assert cuts["familiar"] == pytest.approx(1.49, abs=0.01)
    assert cuts["far"] > 3.0 and cuts["far"] == pytest.approx(1.1 * cuts["real_crops_p99"])
