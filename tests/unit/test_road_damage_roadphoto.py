"""The photo-level road check (roadphoto.py): pooled features, the fitted classifier and its
cut, and what analyze does with a photo the check refuses."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from models.road_damage import roadphoto
from models.road_damage.analyze import NOT_ROAD_PHOTO, RoadCheck, road_verdict, summarise
from models.road_damage.labels import CLASSES
from models.road_damage.roadphoto import PhotoCheck, photo_features

CHECK = RoadCheck(min_share=0.15, low_share=0.35, familiar=2.0, unfamiliar_share=0.5, far=5.0)
D = 6  # feature width of the toy tile embeddings


def tiles(rng: np.random.Generator, road: bool, n: int = 16,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pavement (n,), distance (n,), embedding (n, D)) of a toy photo: road photos' tile
    features sit around +1 in the first direction, others around -1."""
    emb = rng.normal(0, 0.3, (n, D)).astype(np.float32)
    emb[:, 0] += 1.0 if road else -1.0
    return np.ones(n, np.float32), np.full(n, 1.2, np.float32), emb


def test_features_pool_the_road_surface_tiles() -> None:
    pav = np.array([0.9, 0.8, 0.1, 0.2], np.float32)
    emb = np.array([[1, 0], [3, 0], [100, 100], [100, 100]], np.float32)
    dist = np.array([1.0, 2.0, 9.0, 9.0], np.float32)
    f = photo_features(pav, dist, emb)
    assert f.shape == (2 * 2 + 2 + len(roadphoto.DISTANCE_QUANTILES),)
    assert f[:2].tolist() == [2.0, 0.0]  # mean over the two road-surface tiles
    assert f[2:4].tolist() == [1.0, 0.0]  # their spread
    assert f[4] == 0.5 and f[5] == pytest.approx(0.5)  # share and mean pavement probability
    assert 1.0 <= f[6] <= f[-1] <= 2.0  # distance quantiles of the road-surface tiles only
    with pytest.raises(ValueError, match="same number"):
        photo_features(pav, dist[:3], emb)


def test_fit_chooses_the_cut_on_out_of_fold_road_photos_and_separates_the_rest() -> None:
    rng = np.random.default_rng(0)
    examples = [(photo_features(*tiles(rng, road)), road, f"{'r' if road else 'n'}:{i}")
                for i in range(60) for road in (True, False)]
    check, report = roadphoto.fit(examples, keep=0.95)
    road = np.stack([x for x, r, _ in examples if r])
    other = np.stack([x for x, r, _ in examples if not r])
    assert (check.score(road) >= check.cut).mean() >= 0.95
    assert (check.score(other) < check.cut).mean() >= 0.95
    assert report["photos"] == {"road": 60, "non_road": 60, "trained_on": 120}
    assert report["cut"] == round(check.cut, 4)
    oof = report["out_of_fold"]
    assert oof["r:road"]["passed"] >= 0.9 and oof["n:not_road"]["passed"] <= 0.1
    assert [t["road_kept"] for t in report["tradeoff"]] == sorted(
        t["road_kept"] for t in report["tradeoff"])[::-1]
    with pytest.raises(ValueError, match="need both"):
        roadphoto.fit([e for e in examples if e[1]])


def test_only_photos_the_tile_rules_pass_set_the_cut() -> None:
    rng = np.random.default_rng(4)
    examples = [(photo_features(*tiles(rng, road)), road, f"g:{i}")
                for i in range(40) for road in (True, False)]
    # road photos that look like anything but road; the tile rules already refuse them
    odd = [(photo_features(*tiles(rng, False)), True, f"odd:{i}") for i in range(10)]
    judged = np.r_[np.ones(80, bool), np.zeros(10, bool)]
    check, report = roadphoto.fit(examples + odd, keep=0.95, judged=judged)
    assert report["photos"] == {"road": 40, "non_road": 40, "trained_on": 90}
    assert set(report["out_of_fold"]) == {"g:road", "g:not_road"}
    # counted, they would drag the cut down until non-road photos pass
    assert roadphoto.fit(examples + odd, keep=0.95)[0].cut < check.cut


def test_check_round_trips_through_road_json() -> None:
    check = PhotoCheck(np.zeros(3), np.ones(3), np.array([1.0, -2.0, 0.5]), 0.25, 0.3)
    again = PhotoCheck.of({"road_photo": json.loads(json.dumps(check.to_dict()))})
    assert again is not None and again.cut == 0.3
    x = np.array([0.2, 0.1, -1.0])
    assert float(again.score(x)) == pytest.approx(float(check.score(x)), abs=1e-6)
    assert PhotoCheck.of({}) is None and PhotoCheck.of({"road_photo": None}) is None
    assert not again.image_stats  # a road.json from before the pixel statistics reads False
    stats = PhotoCheck(np.zeros(3), np.ones(3), np.ones(3), 0.0, 0.5, image_stats=True)
    assert PhotoCheck.of({"road_photo": json.loads(json.dumps(stats.to_dict()))}).image_stats


def test_image_statistics_tell_a_starfield_a_flat_field_and_asphalt_apart() -> None:
    rng = np.random.default_rng(5)
    asphalt = np.clip(rng.normal(110, 30, (16, 32, 32, 1)), 0, 255).repeat(3, -1)
    stars = np.zeros((16, 32, 32, 3))
    stars[:, ::9, ::7] = 230  # a few bright dots on black
    flat = np.full((16, 32, 32, 3), 128.0) + rng.normal(0, 1, (16, 32, 32, 1))
    a, s, f = (roadphoto.image_statistics(t.astype(np.uint8)) for t in (asphalt, stars, flat))
    k = {name: i for i, name in enumerate(roadphoto.IMAGE_STATS)}
    assert a.shape == (len(roadphoto.IMAGE_STATS),)
    assert s[k["dark_share"]] > 0.9 > 0.05 > a[k["dark_share"]]
    assert f[k["flat_tile_share"]] == 1.0 and a[k["flat_tile_share"]] == 0.0
    assert a[k["chroma"]] == 0.0  # grey tiles
    with pytest.raises(ValueError, match="need"):
        roadphoto.image_statistics(np.zeros((0, 8, 8, 3), np.uint8))


def test_a_check_fitted_on_pixel_statistics_reads_the_tiles() -> None:
    rng = np.random.default_rng(6)
    k = len(roadphoto.IMAGE_STATS)

    def photo(road: bool) -> tuple[np.ndarray, ...]:
        pav, dist, emb = tiles(rng, True)  # the tile features alike: only the pixels differ
        emb[:, 0] = 0.0
        px = np.clip(rng.normal(110, 30, (16, 16, 16, 1)), 0, 255).repeat(3, -1) if road \
            else np.zeros((16, 16, 16, 3))
        return pav, dist, emb, px.astype(np.uint8)

    examples = [(photo_features(p, d, e, 0.5, t), road, f"g{i}")
                for i in range(30) for road in (True, False) for p, d, e, t in [photo(road)]]
    check, _ = roadphoto.fit(examples, image_stats=True)
    assert check.image_stats and len(check.mean) == 2 * D + 2 + 4 + k
    pav, dist, emb, px = photo(False)
    res = summarise(grid(), 4, 4, 0.5, pav, dist, CHECK, emb, check, px)
    assert res["mlit_level"] is None and res["level_warnings"] == [NOT_ROAD_PHOTO]
    pav, dist, emb, px = photo(True)
    assert summarise(grid(), 4, 4, 0.5, pav, dist, CHECK, emb, check, px)["mlit_level"] == "I"
    with pytest.raises(ValueError, match="pass its tiles"):
        summarise(grid(), 4, 4, 0.5, pav, dist, CHECK, emb, check)


def grid(n: int = 16) -> np.ndarray:
    p = np.zeros((n, len(CLASSES)), np.float32)
    p[:, 0] = 1.0
    return p


def fitted_check(rng: np.random.Generator, groups: int) -> roadphoto.PhotoCheck:
    """A check fitted on `groups` road and `groups` non-road synthetic photos' features."""
    examples = [(photo_features(*tiles(rng, road)), road, f"g{i}")
                for i in range(groups) for road in (True, False)]
    return roadphoto.fit(examples)[0]


def test_a_photo_the_check_refuses_gets_no_level_and_a_japanese_warning() -> None:
    rng = np.random.default_rng(1)
    check = fitted_check(rng, 40)
    pav, dist, emb = tiles(rng, road=False)
    res = summarise(grid(), 4, 4, 0.5, pav, dist, CHECK, emb, check)
    assert res["mlit_level"] is None and res["level_warnings"] == [NOT_ROAD_PHOTO]
    assert "診断区分を出していません" in NOT_ROAD_PHOTO["ja"] and res["severity"] < 0
    assert res["road_photo_score"] < check.cut
    pav, dist, emb = tiles(rng, road=True)
    res = summarise(grid(), 4, 4, 0.5, pav, dist, CHECK, emb, check)
    assert res["mlit_level"] == "I" and res["level_warnings"] == []
    assert res["road_photo_score"] >= check.cut
    # a model exported without the check (or without the features) keeps the tile rules only
    assert road_verdict(pav, dist, CHECK)[1] and road_verdict(pav, dist, CHECK, None, check)[1]
    assert summarise(grid(), 4, 4, 0.5, pav, dist, CHECK)["road_photo_score"] is None


def test_the_tile_rules_come_first() -> None:
    rng = np.random.default_rng(2)
    check = fitted_check(rng, 30)
    _, dist, emb = tiles(rng, road=True)
    _, levelled, notes = road_verdict(np.zeros(16, np.float32), dist, CHECK, emb, check)
    assert not levelled and [n["code"] for n in notes] == ["not_road"]


def test_a_close_up_the_check_vouches_for_keeps_its_level_under_min_share() -> None:
    # a pavement close-up whose tiles the pavement head doubts (2 of 16 = 12.5% road surface,
    # under min_share 0.15): the photo check decides, and the level comes with a warning
    rng = np.random.default_rng(7)
    check = fitted_check(rng, 40)
    _, dist, emb = tiles(rng, road=True)
    few = np.r_[np.ones(2), np.zeros(14)].astype(np.float32)
    paved, levelled, notes = road_verdict(few, dist, CHECK, emb, check)
    assert levelled and [n["code"] for n in notes] == ["low_pavement_share"]
    assert paved.sum() == 2
    # ... but not one the check refuses, nor without a check, nor under floor_share
    _, dist_n, emb_n = tiles(rng, road=False)
    assert [n["code"] for n in road_verdict(few, dist_n, CHECK, emb_n, check)[2]] == ["not_road"]
    assert not road_verdict(few, dist, CHECK)[1]
    one = np.r_[np.ones(1), np.zeros(15)].astype(np.float32)  # 6.25%
    assert not road_verdict(one, dist, replace(CHECK, floor_share=0.1), emb, check)[1]
    assert road_verdict(one, dist, CHECK, emb, check)[1]  # default floor_share 0.05


def test_views_and_greyscale_keep_the_photo_usable() -> None:
    from models.road_damage.photo import Grid, photo_tiles

    rng = np.random.default_rng(3)
    img = (rng.random((300, 400, 3)) * 255).astype(np.uint8)
    grey = roadphoto.greyscale(img)
    assert grey.shape == img.shape and (grey[..., 0] == grey[..., 2]).all()
    for _ in range(5):
        t, (rows, cols), _, _ = photo_tiles(roadphoto.view(img, rng), Grid(256, 64))
        assert len(t) == rows * cols >= 1


def test_no_check_when_switched_off_or_without_feature_statistics() -> None:
    from models.road_damage.task import RoadDamageConfig

    assert RoadDamageConfig().road_check.road_photo  # on by default
    check, report = roadphoto.fit_model(None, None, [], None, 0.5, 0.15)
    assert check is None and "road_check.road_photo" in report["skipped"]
