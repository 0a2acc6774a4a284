"""Real non-road photos (assets/road_nonroad) in training, and the photo-level pothole cut."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
from collections import Counter
from typing import Any

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


def _curate() -> Any:
    """assets/road_nonroad/curate.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("road_nonroad_curate",
                                                  nonroad.ROOT / "curate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_manifest_lists_every_committed_photo_with_source_and_licence() -> None:
    m = pd.read_csv(nonroad.ROOT / "manifest.csv")
    files = {p.name for p in nonroad.ROOT.glob("*.jpg")}
    assert set(m["file"]) == files and len(files) >= 12 and m["file"].is_unique
    assert set(m["split"]) == {"train", "val", "photo"}  # photo: the road-photo check only
    assert m[["source", "commit", "path", "licence", "shows"]].notna().all().all()
    assert sum((nonroad.ROOT / f).stat().st_size for f in files) < 4_000_000
    for f in m.itertuples():
        with Image.open(nonroad.ROOT / f.file) as im:
            assert max(im.size) <= 640 and im.size == (f.width, f.height), f.file
    # curate.py rebuilds exactly these rows
    assert [r[:7] for r in _curate().SOURCES] == \
        [tuple(r) for r in m[["file", "split", "source", "commit", "path", "licence",
                              "shows"]].itertuples(index=False)]


def test_data_card_counts_and_sources_match_the_manifest() -> None:
    """DATA_CARD.md states the photo count per split and names every source repository or
    wheel of manifest.csv, with its pinned commit."""
    m = pd.read_csv(nonroad.ROOT / "manifest.csv")
    card = (nonroad.ROOT / "DATA_CARD.md").read_text(encoding="utf-8")
    assert re.search(rf"\*\*What\*\*: {len(m)}\s+real\s+photos", card)
    for split, n in m["split"].value_counts().items():
        assert re.search(rf"\*\*{split}\*\* \({n}\s+photos", card), split
    for source, commit in m[["source", "commit"]].drop_duplicates().itertuples(index=False):
        name = source.split(":", 1)[1]
        assert name in card, source
        assert commit == "wheel" or commit in card, (source, commit)


def test_no_evaluation_photo_is_among_them() -> None:
    """scikit-image's photos are the non-road evaluation set (imageio and other packages
    re-ship the same files): none of the committed photos is one of them, the same pixels or a
    resized, re-encoded copy, for every image file of skimage/data (curate.skimage_twin, which
    curate.py also applies before writing)."""
    pytest.importorskip("skimage.data")
    curate = _curate()
    theirs = curate.skimage_photos()
    assert len(theirs) >= 21
    for split in ("train", "val", "photo"):
        for name, img in nonroad.load(split):
            assert curate.skimage_twin(Image.fromarray(img), theirs) is None, name


def test_the_duplicate_check_catches_a_copy_and_passes_distinct_photos() -> None:
    """The check fails when it should: a scikit-image photo put through curate.py's resize
    and JPEG (or mirrored, the same pixels) is caught; a crop of one is a different photo."""
    pytest.importorskip("skimage.data")
    curate = _curate()
    theirs = curate.skimage_photos()
    moon = theirs["moon.png"]
    copy = moon.copy()
    copy.thumbnail((300, 300))
    buf = io.BytesIO()
    copy.save(buf, "JPEG", quality=85)
    assert curate.skimage_twin(Image.open(buf), theirs) == "moon.png"
    assert curate.skimage_twin(moon, theirs) == "moon.png"
    assert curate.skimage_twin(Image.new("RGB", (640, 480), (30, 90, 200)), theirs) is None


def test_photo_split_reaches_the_road_photo_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every photo of the splits the road-photo check trains on (roadphoto.NONROAD_SPLITS)
    reaches its fit as FIT_VIEWS non-road views; no `val` photo does."""
    from models.road_damage import roadphoto

    monkeypatch.setattr(roadphoto, "FIT_OFF_ROAD", 0)
    monkeypatch.setattr(roadphoto, "FIT_FRAMES", 0)  # the real road frames: road photos
    m = pd.read_csv(nonroad.ROOT / "manifest.csv")
    out = roadphoto.training_photos(None)
    groups = Counter(g for _, road, g in out if not road)
    assert not any(road for _, road, _ in out)
    want = m[m["split"].isin(roadphoto.NONROAD_SPLITS)]["file"]
    assert groups == {f"nonroad:{f}": roadphoto.FIT_VIEWS for f in want}
    assert {"nasa_moon.jpg", "nci_cells_2303.jpg", "tess_phototest.jpg"} <= set(want)
    assert not set(m[m["split"] == "val"]["file"]) & set(want)
    assert all(Image.open(io.BytesIO(data)).format == "JPEG" for data, _, _ in out[:3])


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
