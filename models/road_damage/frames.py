"""Real full-frame road photos with pixel masks (assets/road_frames, DATA_CARD.md): Brazilian
federal highways filmed from a survey vehicle (road ahead filling most of the frame, verges and
a little sky above), each with a mask of the vehicle's road, its cracks and its potholes.

What they teach (the view a road crew or a dashcam takes, which the real RDD crops lack):
- the photo-level road check (roadphoto.training_photos): whole frames are road photos;
- the tile model (task.with_real, cfg.real.frames): the frames' sure tiles (tile_labels):
  intact asphalt at survey distance ("no damage", road surface; only windows well inside the
  road mask with no crack or pothole pixel in them or within MARGIN px, and only in frames
  whose crack mask marks something: such masks miss faint cracks) and tiles whose own pixels
  are at least CRACK_SHARE marked crack (D00 / D10 / D20 by the mask importer's shape rule).
  Potholes and tiles with a few crack pixels are left out.

Split by highway (manifest `split`): BR-290 frames train, BR-386 frames are `val` (never trained
on: bench.road_frames measures them). Mask values: 0 not the vehicle's road, 1 road, 2 crack,
3 pothole (crack and pothole drawn over road).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from models.road_damage.photo import Grid

ROOT = Path(__file__).resolve().parents[2] / "assets" / "road_frames"
ROAD, CRACK, POTHOLE = 1, 2, 3
MARGIN = 16  # px (at the stored 512 px frame) kept clear of any crack/pothole pixel
MIN_ROAD = 0.95  # share of the window (tile and context) inside the road mask
CRACK_SHARE = 0.02  # share of a tile's pixels marked crack from which it is a real crack tile


@functools.cache
def _load(root: Path, split: str) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    manifest = pd.read_csv(root / "manifest.csv", dtype=str)
    rows = manifest[manifest["split"] == split]
    return tuple((f, np.asarray(Image.open(root / f).convert("RGB")),
                  np.asarray(Image.open(root / m))) for f, m in zip(rows["file"], rows["mask"],
                                                                   strict=True))


def load(split: str = "train", root: Path = ROOT) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, uint8 RGB (h, w, 3), uint8 mask (h, w) with values 0-3) of one split
    ("train" or "val"). FileNotFoundError when the folder or its manifest.csv is missing."""
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(f"{root / 'manifest.csv'}: the real road frames are missing")
    return list(_load(Path(root).resolve(), split))


def grid_mask(mask: np.ndarray, grid: Grid) -> np.ndarray:
    """The frame's mask resized onto its serving grid (photo.to_grid's size), nearest."""
    rows, cols = grid.shape(mask.shape[1], mask.shape[0])
    return np.asarray(Image.fromarray(mask).resize((cols * grid.tile, rows * grid.tile),
                                                   Image.Resampling.NEAREST))


def tile_labels(mask: np.ndarray, grid: Grid, margin: int = MARGIN, min_road: float = MIN_ROAD,
                crack_share: float = CRACK_SHARE, negatives: bool = True) -> np.ndarray:
    """Labels (rows * cols, len(CLASSES)) int8, row-major like photo.tiles, of the tiles of one
    frame (mask (h, w), values 0-3) on its serving grid that are sure enough to train or judge
    on; all zero for the others:
    - intact road ("none"; only with `negatives`): at least `min_road` of the window (tile and
      context) is road and no crack or pothole pixel lies in it or within `margin` px of it;
    - cracked road: at least `crack_share` of the tile's own pixels are crack, at least half of
      it is road and no pothole pixel is in the window; the class (D00 / D10 / D20) from the
      shape of its crack pixels (importers.crack_class, the mask importer's rule).
    A few crack pixels, potholes and off-road tiles are left out."""
    from models.road_damage.importers import crack_class
    from models.road_damage.labels import CLASSES

    m = grid_mask(mask, grid)
    rows, cols = m.shape[0] // grid.tile, m.shape[1] // grid.tile
    t, ctx, span = grid.tile, grid.context, grid.tile + 2 * grid.context
    damage = np.pad(m >= CRACK, ctx + margin)
    hole = np.pad(m == POTHOLE, ctx)
    road = np.pad(m >= ROAD, ctx)
    out = np.zeros((rows * cols, len(CLASSES)), np.int8)
    for r in range(rows):
        for c in range(cols):
            y, x = r * t, c * t
            own = m[y:y + t, x:x + t]
            if (negatives and road[y:y + span, x:x + span].mean() >= min_road
                    and not damage[y:y + span + 2 * margin, x:x + span + 2 * margin].any()):
                out[r * cols + c, 0] = 1
            elif ((own == CRACK).mean() >= crack_share and (own >= ROAD).mean() >= 0.5
                  and not hole[y:y + span, x:x + span].any()):
                ys, xs = np.nonzero(own == CRACK)
                out[r * cols + c, CLASSES.index(crack_class(ys, xs))] = 1
    return out


def labelled_windows(image: np.ndarray, mask: np.ndarray, grid: Grid, negatives: bool = True,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(windows (n, window, window, 3) uint8, labels (n, len(CLASSES)) int8) of one frame's
    sure tiles (tile_labels), the frame resized onto its serving grid as photo.to_grid does
    and tiled with context like photo.tiles."""
    from models.road_damage.photo import tiles as cut
    from models.road_damage.photo import to_grid

    img = to_grid(Image.fromarray(image), grid)
    lab = tile_labels(mask, grid, negatives=negatives)
    keep = lab.any(axis=1)
    return cut(img, grid.tile, grid.context)[keep], lab[keep]


def training_tiles(grid: Grid, split: str = "train", root: Path = ROOT,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """labelled_windows of every frame of the split, concatenated: (windows, labels). Intact
    tiles only from frames whose crack mask marks something (the annotator drew cracks there;
    a frame with none marked may hold unmarked ones)."""
    from models.road_damage.labels import CLASSES

    marked = set(pd.read_csv(root / "manifest.csv").query("crack_share > 0")["file"])
    wins = [np.zeros((0, grid.window, grid.window, 3), np.uint8)]
    labs = [np.zeros((0, len(CLASSES)), np.int8)]
    for name, img, mask in load(split, root):
        w, lab = labelled_windows(img, mask, grid, negatives=name in marked)
        wins.append(w)
        labs.append(lab)
    return np.concatenate(wins), np.concatenate(labs)


def image_hash(image: np.ndarray, size: int = 16) -> np.ndarray:
    """Difference hash (size * size bits, bool) of an RGB or grey image: the grey image shrunk
    to (size + 1) x size, each bit whether a pixel is brighter than its right neighbour.
    Re-encoding and resizing move few bits; different photos differ in about half."""
    g = Image.fromarray(np.asarray(image)).convert("L").resize((size + 1, size),
                                                               Image.Resampling.BILINEAR)
    a = np.asarray(g, np.int16)
    return (a[:, 1:] > a[:, :-1]).ravel()
