"""Real non-road photos (assets/road_nonroad) in training, and the photo-level pothole cut."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from models.road_damage import nonroad
from models.road_damage.labels import CLASSES
from models.road_damage.photo import Grid
from models.road_damage.task import (
    RoadDamageConfig,
    TileSet,
    pothole_photo_cut,
    with_real,
)

GRID = Grid(512, 64, 16)


def test_manifest_lists_every_committed_photo_with_source_and_licence() -> None:
    m = pd.read_csv(nonroad.ROOT / "manifest.csv")
    files = {p.name for p in nonroad.ROOT.glob("*.jpg")}
    assert set(m["file"]) == files and len(files) >= 12
    assert set(m["split"]) == {"train", "val", "photo"}  # photo: the road-photo check only
    assert m[["source", "commit", "path", "licence"]].notna().all().all()
    assert sum((nonroad.ROOT / f).stat().st_size for f in files) < 3_000_000
    for f in files:
        assert max(Image.open(nonroad.ROOT / f).size) <= 640


def test_no_evaluation_photo_is_among_them() -> None:
    """scikit-image's photos are the non-road evaluation set: none may be trained on (compared
    as 16 x 16 grey thumbnails, so a re-encoded or resized copy is caught too)."""
    data = pytest.importorskip("skimage.data")
    from pathlib import Path

    from bench.road_ood import SKIMAGE

    def thumb(img: Image.Image) -> np.ndarray:
        return np.asarray(img.convert("L").resize((16, 16)), float)

    root = Path(data.__file__).parent
    ours = [thumb(Image.fromarray(im)) for s in ("train", "val", "photo")
            for _, im in nonroad.load(s)]
    for name in SKIMAGE:
        if (root / name).is_file():
            theirs = thumb(Image.open(root / name))
            assert min(np.abs(o - theirs).mean() for o in ours) > 10, name


def test_photo_windows_tile_each_scale_like_serving() -> None:
    img = np.random.default_rng(0).integers(0, 255, (427, 640, 3), dtype=np.uint8)
    w = nonroad.photo_windows(img, GRID, (1.0, 2.0))
    # 512 x 320 -> 8 x 5 tiles (to_grid rounds 5.3 rows); 1024 x 683 -> 16 x 10
    assert w.shape == (8 * 5 + 16 * 10, 96, 96, 3) and w.dtype == np.uint8


def test_training_adds_non_road_windows_as_not_road_surface_and_never_val_photos() -> None:
    tiles = np.zeros((5, 96, 96, 3), np.uint8)
    labels = np.zeros((5, len(CLASSES) + 1), np.int8)
    labels[:, 0] = labels[:, -1] = 1
    cfg = RoadDamageConfig.model_validate({"real": {"nonroad_tiles": 300},
                                         "grid": {"context": 16}})
    X, Y, hard, n = with_real(cfg, tiles, labels, 96)
    assert len(X) == 305 and n == 0 and hard is not None and not hard.any()
    assert (Y[5:, 0] == 1).all() and (Y[5:, 1:] == 0).all()  # no damage, not road surface
    assert (Y[:5] == labels).all()
    val = {hashlib.sha1(w.tobytes()).digest()
           for _, im in nonroad.load("val") for w in nonroad.photo_windows(im, GRID)}
    assert not val & {hashlib.sha1(x.tobytes()).digest() for x in X[5:]}
    off = RoadDamageConfig()
    assert off.real.nonroad_tiles == 0 and with_real(off, tiles, labels, 96)[2] is None


def _tileset(holes: list[bool], per: int = 4) -> TileSet:
    n = len(holes) * per
    labels = np.zeros((n, len(CLASSES)), np.int8)
    labels[:, 0] = 1
    k = CLASSES.index("D40")
    for i, h in enumerate(holes):
        if h:
            labels[i * per, [0, k]] = [0, 1]
    return TileSet(np.zeros((n, 8, 8, 3), np.uint8), labels, np.repeat(np.arange(len(holes)), per),
                   pd.DataFrame({"photo_id": range(len(holes))}), np.ones(n, bool))


def test_pothole_cut_rises_until_few_sound_photos_show_a_pothole() -> None:
    ts = _tileset([False] * 20 + [True] * 5)
    p = np.full(len(ts.tiles), 0.1)
    p[::4][:20] = np.linspace(0.3, 0.9, 20)  # one odd tile on each sound photo
    paved = np.ones(len(p), bool)
    cut = pothole_photo_cut(p, paved, ts, 0.4, share=0.1)
    flagged = [p[ts.photo == i].max() >= cut for i in range(20)]
    assert np.mean(flagged) <= 0.1 and cut > 0.4
    # never below the tile cut, never above the ceiling; tiles off the road do not count
    assert pothole_photo_cut(np.full(len(p), 0.1), paved, ts, 0.5) == 0.5
    assert pothole_photo_cut(np.full(len(p), 0.99), paved, ts, 0.5) == 0.95
    assert pothole_photo_cut(p, np.zeros(len(p), bool), ts, 0.4) == 0.4
