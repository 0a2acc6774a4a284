"""road_damage: generator determinism and truth, labels, preprocessing, baseline detector."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from models.road_damage import baseline as B
from models.road_damage.generate import PHOTO, Spec, generate
from models.road_damage.labels import CLASSES, MASK_BITS, crack_ratio, mlit_level, tile_labels
from models.road_damage.photo import Grid, PhotoError, normalise, open_photo, photo_tiles, tiles

TENANTS = [("121002", 980_000), ("012050", 78_000)]


@pytest.fixture(scope="module")
def generated() -> dict:
    return generate(TENANTS, Spec(6, 3, Grid(), 0.8), seed=7)


def test_generator_is_byte_deterministic(generated: dict) -> None:
    again = generate(TENANTS, Spec(6, 3, Grid(), 0.8), seed=7)
    for code, frames in generated.items():
        assert frames.files == again[code].files
        for name, df in frames.items():
            assert df.equals(again[code][name])
    other = generate(TENANTS, Spec(6, 3, Grid(), 0.8), seed=8)
    assert other["121002"].files != generated["121002"].files


def test_tile_labels_and_levels_follow_the_masks(generated: dict) -> None:
    for frames in generated.values():
        photos, tile_frame = frames["photos"], frames["tiles"]
        for row in photos.itertuples():
            mask = np.asarray(Image.open(io.BytesIO(frames.files[row.mask_file])))
            assert mask.shape == (PHOTO[1], PHOTO[0])
            labels = tile_labels(mask, row.rows, row.cols)
            mine = tile_frame[tile_frame.photo_id == row.photo_id].sort_values(["row", "col"])
            assert (mine[list(CLASSES)].to_numpy() == labels).all()
            assert row.crack_ratio == round(crack_ratio(labels), 4)
            assert row.mlit_level == mlit_level(row.crack_ratio)
            # a tile is 'none' exactly when no damage class is on
            assert (labels[:, 0] == (labels[:, 1:].sum(axis=1) == 0)).all()


@pytest.fixture(scope="module")
def many() -> dict:
    return generate([("012050", 1)], Spec(30, 30, Grid(), 0.8), seed=3)["012050"]


def test_generated_data_has_every_class_and_level(many: dict) -> None:
    frames = many
    assert frames["tiles"][list(CLASSES)].sum().min() > 0
    assert set(frames["photos"]["mlit_level"]) == {"I", "II", "III"}


def test_photos_carry_exif_position_time_and_orientation(generated: dict, many: dict) -> None:
    frames = generated["121002"]
    for row in frames["photos"].itertuples():
        raw = frames.files[row.file]
        img, facts = open_photo(raw)
        assert img.size == PHOTO  # upright whatever the stored orientation
        if row.lat:
            assert abs(facts["lat"] - float(row.lat)) < 1e-4
            assert abs(facts["lon"] - float(row.lon)) < 1e-4
            assert 35.3 < facts["lat"] < 35.9  # near Chiba
        assert facts["taken_at"] == row.taken_at
    assert any(Image.open(io.BytesIO(b)).size != PHOTO for k, b in many.files.items()
               if k.endswith(".jpg")), "some photos should be stored sideways with EXIF 6"


def test_mlit_levels_at_their_boundaries() -> None:
    assert [mlit_level(r) for r in (0.0, 0.199, 0.2, 0.399, 0.4, 1.0)] == [
        "I", "I", "II", "II", "III", "III"]


def test_tile_labels_use_the_share_threshold() -> None:
    mask = np.zeros((100, 200), np.uint8)
    mask[10:90, 20] = MASK_BITS["D00"]  # an 80 px line in the first of two cells: 0.8%
    mask[0:2, 150] = MASK_BITS["D10"]  # 2 px in the second: below 0.5%
    labels = tile_labels(mask, 1, 2)
    assert labels.tolist() == [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]


def _jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def test_grid_shape_tiles_and_normalise() -> None:
    g = Grid(512, 64)
    assert g.shape(4000, 3000) == (6, 8)
    assert g.shape(3000, 4000) == (8, 6)
    assert g.shape(640, 480) == (6, 8)
    arr = np.arange(2 * 64 * 3 * 64 * 3, dtype=np.uint32).reshape(128, 192, 3) % 251
    t = tiles(arr.astype(np.uint8), 64)
    assert t.shape == (6, 64, 64, 3)
    assert (t[4] == arr[64:128, 64:128]).all()  # row-major: second row, second column
    x = normalise(t)
    assert x.shape == (6, 3, 64, 64) and x.dtype == np.float32


def test_tiles_with_context_centre_on_the_tile_and_mirror_at_the_edge() -> None:
    arr = np.random.default_rng(0).integers(0, 255, (128, 192, 3), np.uint8)
    plain = tiles(arr, 64)
    wide = tiles(arr, 64, context=8)
    assert wide.shape == (6, 80, 80, 3)
    assert (wide[:, 8:72, 8:72] == plain).all()  # the centre is the tile itself
    assert (wide[4, :8, 8:72] == plain[1][-8:]).all()  # above row 1: the bottom of row 0
    assert (wide[0, 7, 8:72] == arr[0, :64]).all()  # the photo's edge is mirrored
    assert Grid.of({"long_side": 512, "tile": 64}).window == 64  # models without context
    assert Grid.of({"long_side": 512, "tile": 64, "context": 8}).window == 80


def test_one_crack_cut_decides_cracked_tiles_and_names_their_class() -> None:
    from models.road_damage.analyze import tile_flags

    probs = np.array([[0.1, 0.45, 0.40, 0.05, 0.0],   # cracked (max 0.45 >= 0.4): D00 named
                      [0.2, 0.90, 0.85, 0.00, 0.0],   # both classes over their own cuts
                      [0.9, 0.30, 0.10, 0.10, 0.7],   # not cracked; a pothole
                      [0.9, 0.35, 0.00, 0.00, 0.0]], np.float32)  # under the crack cut
    cuts = {"class": [0.6, 0.6, 0.6, 0.5], "crack": 0.4}
    assert tile_flags(probs, cuts).tolist() == [[0, 1, 0, 0, 0], [0, 1, 1, 0, 0],
                                                [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]]
    assert tile_flags(probs, [0.6, 0.6, 0.6, 0.5])[0].tolist() == [1, 0, 0, 0, 0]  # per class


def test_exif_orientation_is_honoured() -> None:
    upright = Image.new("RGB", (80, 40), (200, 200, 200))
    upright.paste((0, 0, 0), (0, 0, 10, 10))  # black top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = _jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes(), quality=95)
    img, _ = open_photo(raw)
    assert img.size == (80, 40)
    assert np.asarray(img)[:5, :5].mean() < 60


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A small PNG whose header claims width x height pixels."""
    raw = bytearray(_png(Image.new("L", (8, 8))))
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(raw[ihdr:ihdr + 17]))
    raw[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(raw)


@pytest.mark.parametrize("mode", ["L", "I;16", "P", "RGBA", "LA", "CMYK", "1"])
def test_unusual_modes_become_rgb(mode: str) -> None:
    base = Image.new("RGB", (120, 90), (90, 100, 110))
    if mode == "I;16":
        img = Image.fromarray(np.full((90, 120), 40000, np.uint16))
    else:
        img = base.convert(mode)
    raw = _jpeg(img) if mode == "CMYK" else _png(img)
    t, (rows, cols), _, _ = photo_tiles(raw, Grid(256, 64))
    assert (rows, cols) == (3, 4) and t.dtype == np.uint8 and t.shape[-1] == 3
    if mode == "I;16":
        assert 140 < t.mean() < 170  # scaled from 16 bits, not clipped to white


@pytest.mark.parametrize(("data", "message"), [
    (b"not an image at all", "not an image"),
    (bomb_png(), "pixels"),
    (_jpeg(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)))
     [:20000], "truncated"),
    (io.BytesIO().getvalue(), "not an image"),
])
def test_bad_files_raise_photo_error(data: bytes, message: str) -> None:
    with pytest.raises(PhotoError, match=message):
        photo_tiles(data, Grid())


def test_broken_exif_is_ignored() -> None:
    raw = _jpeg(Image.new("RGB", (200, 150), (100, 100, 100)), exif=b"Exif\x00\x00garbage!!")
    img, facts = open_photo(raw)
    assert img.size == (200, 150) and facts["lat"] is None


def test_baseline_finds_a_dark_line_and_not_a_flat_tile() -> None:
    rng = np.random.default_rng(0)
    flat = np.clip(rng.normal(120, 6, (20, 64, 64, 3)), 0, 255).astype(np.uint8)
    cracked = flat.copy()
    cracked[:, 10:54, 30:32] = 40
    tiles_ = np.concatenate([flat, cracked])
    truth = np.r_[np.zeros(20, bool), np.ones(20, bool)]
    det = B.calibrate(tiles_, truth)
    assert B.f1(truth, det.predict(tiles_)) == 1.0
    assert B.f1(truth, np.zeros(40, bool)) == 0.0


def test_holdout_photos_fill_each_small_holdout_and_never_train() -> None:
    """generate.min_test_photos: holdout-only photos top each tenant's holdout up to the
    floor; the regular photos stay byte-identical and split never trains on the new ones."""
    from models.road_damage.generate import counts
    from models.road_damage.task import RoadDamage, RoadDamageConfig, holdout_photos

    cfg = RoadDamageConfig.model_validate({"generate": {"min_test_photos": 5}})
    per = counts(TENANTS, 6, 3)
    extra = holdout_photos(cfg, per)
    out = generate(TENANTS, Spec(6, 3, Grid(), 0.8), seed=7, holdout=extra)
    plain = generate(TENANTS, Spec(6, 3, Grid(), 0.8), seed=7)
    task = RoadDamage()
    for code, frames in out.items():
        photos = frames["photos"]
        held = photos[photos["source"].str.endswith(":holdout")]
        assert len(held) == extra[code] > 0 and held["photo_id"].str.contains("-H").all()
        regular = photos[~photos["photo_id"].isin(held["photo_id"])].reset_index(drop=True)
        assert regular.equals(plain[code]["photos"])
        assert all(frames.files[f] == plain[code].files[f] for f in plain[code].files)
        train, test = task.split(cfg, {"photos": photos, "tiles": frames["tiles"]})
        assert len(test["photos"]) == 5  # the floor exactly: hash-held regular + holdout-only
        assert not train["photos"]["photo_id"].isin(held["photo_id"]).any()
        assert set(test["tiles"]["photo_id"]) == set(test["photos"]["photo_id"])
    assert holdout_photos(RoadDamageConfig(), per) == {c: 0 for c in per}  # default: none
