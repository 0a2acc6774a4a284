"""Real photos that are not road photos (assets/road_nonroad, DATA_CARD.md): animals, people,
rooms, beaches, fields, a temple, a painting. Their tiles are trained on as "not road surface"
(pavement 0, no damage) next to the generator's synthetic off-road scenes, so the pavement
output has seen real non-road texture, not only rendered walls and skies. Photos marked `val`
in manifest.csv are never trained on: they check the no-level rule (bench/road_ood.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from models.road_damage.photo import Grid, tiles

ROOT = Path(__file__).resolve().parents[2] / "assets" / "road_nonroad"
# The photo resized to these multiples of the serving grid's long side: the serving view and
# closer views, as a phone close-up of a surface would show it.
SCALES = (1.0, 1.6)


@functools.cache
def _load(root: Path, split: str) -> tuple[tuple[str, np.ndarray], ...]:
    manifest = pd.read_csv(root / "manifest.csv")
    rows = manifest[manifest["split"] == split]
    return tuple((f, np.asarray(Image.open(root / f).convert("RGB"))) for f in rows["file"])


def load(split: str = "train", root: Path = ROOT) -> list[tuple[str, np.ndarray]]:
    """(file name, uint8 RGB (h, w, 3)) of the photos of one split ("train" or "val").
    FileNotFoundError when the folder or its manifest.csv is missing."""
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(f"{root / 'manifest.csv'}: the non-road photos are missing")
    return list(_load(root, split))


def photo_windows(image: np.ndarray, grid: Grid, scales: tuple[float, ...] = SCALES,
                  ) -> np.ndarray:
    """Model-input windows of one photo at each scale, uint8 (n, window, window, 3): the photo
    resized so its long side is scale x grid.long_side (cut to whole tiles), then tiled with
    context exactly as serving tiles a photo (photo.tiles)."""
    h, w = image.shape[:2]
    out = []
    for s in scales:
        long = max(grid.tile, round(grid.long_side * s / grid.tile) * grid.tile)
        size = (long, max(grid.tile, round(h / w * long))) if w >= h else \
            (max(grid.tile, round(w / h * long)), long)
        arr = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        out.append(tiles(arr, grid.tile, grid.context))
    return np.concatenate(out)


def windows(grid: Grid, n: int, seed: int = 0, split: str = "train",
            root: Path = ROOT) -> np.ndarray:
    """n training windows (uint8 (n, window, window, 3)) drawn evenly from the split's photos
    at every scale (fewer when the photos hold fewer tiles; none when n is 0)."""
    if n <= 0:
        return np.zeros((0, grid.window, grid.window, 3), np.uint8)
    photos = load(split, root)
    rng = np.random.default_rng(seed)
    per = int(np.ceil(n / max(1, len(photos))))
    parts = []
    for _, img in photos:
        w = photo_windows(img, grid)
        parts.append(w[rng.choice(len(w), min(per, len(w)), replace=False)])
    out = np.concatenate(parts)
    return out[rng.permutation(len(out))[:n]]
