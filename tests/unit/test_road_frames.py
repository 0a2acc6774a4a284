"""Real road frames (assets/road_frames): data card and manifest, disjointness from the street
view check set (assets/road_street), the split by highway, the sure-tile rule, and that the
frames reach the tile model's and the road-photo check's training inputs."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from models.road_damage import frames, roadphoto
from models.road_damage.labels import CLASSES
from models.road_damage.photo import Grid
from models.road_damage.task import RoadDamageConfig, with_real

GRID = Grid(512, 64, 16)
STREET = frames.ROOT.parent / "road_street"
NEAR = 40  # difference-hash bits (of 256): under this, the same photo (curate.py's cut)


def manifest() -> pd.DataFrame:
    return pd.read_csv(frames.ROOT / "manifest.csv")


def test_manifest_lists_every_committed_file_with_source_and_licence() -> None:
    m = manifest()
    files = {p.name for p in frames.ROOT.iterdir() if p.suffix in (".jpg", ".png")}
    assert set(m["file"]) | set(m["mask"]) == files
    assert m[["source", "commit", "path", "licence", "highway", "split"]].notna().all().all()
    assert (m["licence"].str.startswith("MIT")).all()
    assert (m["commit"] == "1f200541d2e88596fb9dcd91f4262c1ac5f6202e").all()
    assert sum((frames.ROOT / f).stat().st_size for f in files) < 20_000_000
    for f, mk, w, h in m[["file", "mask", "width", "height"]].itertuples(index=False):
        im, mask = Image.open(frames.ROOT / f), np.asarray(Image.open(frames.ROOT / mk))
        assert im.size == (w, h) and max(im.size) <= 600 and mask.shape == (h, w)
        assert set(np.unique(mask)) <= {0, 1, 2, 3}


def test_data_card_counts_match_the_manifest() -> None:
    """The card's table says how many frames each highway and split has: it must stay true."""
    card = (frames.ROOT / "DATA_CARD.md").read_text()
    m = manifest()
    for (highway, split), n in m.groupby(["highway", "split"]).size().items():
        assert re.search(rf"\| {highway} \| {split} \| {n} \|", card), (highway, split, n)
    assert f"{len(m)} frames" in card


def test_split_by_highway_and_the_val_highway_is_never_trained_on(monkeypatch) -> None:
    m = manifest()
    assert set(m.loc[m["split"] == "train", "highway"]).isdisjoint(
        m.loc[m["split"] == "val", "highway"])
    asked: list[str] = []
    real_load = frames.load

    def spy(split: str = "train", root=frames.ROOT):
        asked.append(split)
        return real_load(split, root)

    monkeypatch.setattr(frames, "load", spy)
    cfg = RoadDamageConfig.model_validate({"real": {"frames": True}, "grid": {"context": 16}})
    with_real(cfg, np.zeros((1, 96, 96, 3), np.uint8), np.zeros((1, len(CLASSES) + 1), np.int8),
              96)
    monkeypatch.setattr(roadphoto, "FIT_OFF_ROAD", 0)
    monkeypatch.setattr(roadphoto, "NONROAD_SPLITS", ())
    roadphoto.training_photos(None)
    assert asked and set(asked) == {"train"}


def test_no_road_street_photo_is_among_them() -> None:
    """The street views are a check set: no frame may be one of them, by name or by content
    (difference hash of the pixels, which survives resizing and re-encoding: shown on a
    street photo itself)."""
    m = manifest()
    street = sorted(STREET.glob("*.jpg"))
    assert len(street) == 30
    names = {p.stem.lower() for p in street}
    assert not names & {f.rsplit(".", 1)[0].lower() for f in m["file"]}
    hashes = [frames.image_hash(np.asarray(Image.open(p).convert("RGB"))) for p in street]
    # the check catches a copy: a street photo shrunk to 512 px and re-encoded at quality 85
    copy = Image.open(street[0]).convert("RGB")
    copy.thumbnail((512, 512))
    buf = io.BytesIO()
    copy.save(buf, "JPEG", quality=85)
    again = frames.image_hash(np.asarray(Image.open(buf).convert("RGB")))
    assert int((again != hashes[0]).sum()) < NEAR
    for f in m["file"]:
        h = frames.image_hash(np.asarray(Image.open(frames.ROOT / f).convert("RGB")))
        assert min(int((h != s).sum()) for s in hashes) >= NEAR, f


def test_no_rdd_photo_and_no_held_out_city() -> None:
    """These are not Road Damage Dataset photos: nothing of the held-out cities (室蘭, 市原) or
    of RDD's Japanese frames can be among them."""
    m = manifest()
    text = " ".join(m["file"]) + " ".join(m["path"]) + " ".join(m["source"])
    assert not re.search(r"muroran|ichihara|japan|rdd", text, re.I)
    assert set(m["state"]) == {"RS"}


def test_tile_labels_keep_only_sure_tiles() -> None:
    """Intact road far from any crack is "none"; a tile with a vertical crack line is D00; a
    tile next to a crack, off the road or with a pothole is left out."""
    mask = np.zeros((320, 512), np.uint8)
    mask[:, 64:448] = frames.ROAD
    mask[64:192, 290:293] = frames.CRACK  # vertical crack in tile (row 1..2, col 4)
    mask[256:300, 100:140] = frames.POTHOLE
    lab = frames.tile_labels(mask, GRID).reshape(5, 8, len(CLASSES))
    d00 = CLASSES.index("D00")
    assert lab[1, 4, d00] == 1 and lab[1, 4, 0] == 0
    assert lab[0, 0].sum() == 0 and lab[2, 7].sum() == 0  # off the road
    assert lab[1, 5].sum() == 0  # within reach of the crack and none of its own: unsure
    assert lab[4, 1].sum() == 0  # pothole
    assert lab[1, 2, 0] == 1 and lab[1, 2].sum() == 1  # road, far from any damage: intact
    assert lab[1, 1].sum() == 0  # its window reaches off the road
    # a frame whose crack mask marks nothing gives no intact tile (negatives=False)
    clean = np.where(mask == frames.CRACK, frames.ROAD, mask).astype(np.uint8)
    assert frames.tile_labels(clean, GRID, negatives=False).sum() == 0


def test_frames_reach_the_tile_training_set() -> None:
    """real.frames adds the frames' sure tiles as road surface: as many crack tiles as intact
    ones, the intact ones flagged hard; without it nothing is added."""
    base = np.zeros((3, 96, 96, 3), np.uint8)
    labels = np.zeros((3, len(CLASSES) + 1), np.int8)
    off = RoadDamageConfig.model_validate({"grid": {"context": 16}})
    assert not off.real.frames and with_real(off, base, labels, 96)[0] is base
    cfg = RoadDamageConfig.model_validate({"real": {"frames": True}, "grid": {"context": 16}})
    X, Y, hard, _ = with_real(cfg, base, labels, 96)
    win, lab = frames.training_tiles(GRID)
    intact = int((lab[:, 0] == 1).sum())
    assert intact >= 100
    assert len(X) == 3 + 2 * intact and hard is not None
    added = Y[3:]
    assert (added[:, -1] == 1).all()  # road surface
    assert (added[:, 0] == 1).sum() == intact == hard.sum()
    assert (added[:, 1:len(CLASSES)].any(axis=1)).sum() == intact
    # the intact windows are the frames' pixels, not something else
    assert any(np.array_equal(X[3 + i], win[np.flatnonzero(lab[:, 0] == 1)[0]])
               for i in range(len(added)))


def test_frames_are_road_photos_of_the_photo_check(monkeypatch) -> None:
    monkeypatch.setattr(roadphoto, "FIT_OFF_ROAD", 0)
    monkeypatch.setattr(roadphoto, "NONROAD_SPLITS", ())
    photos = roadphoto.training_photos(None)
    mine = [(road, group) for _, road, group in photos if group.startswith("frames:")]
    assert len(mine) == roadphoto.FIT_FRAMES and all(road for road, _ in mine)
    assert len({g for _, g in mine}) >= 5  # runs of frames spread over the folds
    img = Image.open(io.BytesIO(photos[0][0]))
    assert max(img.size) <= 512


@pytest.mark.parametrize("split", ["train", "val"])
def test_every_split_holds_sure_tiles_of_both_kinds(split: str) -> None:
    _, lab = frames.training_tiles(GRID, split)
    assert (lab[:, 0] == 1).sum() >= 50 and (lab[:, 0] == 0).sum() >= 50
