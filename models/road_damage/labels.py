"""Damage classes (RDD codes), tile labels from pixel masks, and MLIT 舗装点検要領 levels."""

from __future__ import annotations

import numpy as np

# Tile classes in model output order; "none" is on when no damage class is.
CLASSES = ("none", "D00", "D10", "D20", "D40")
DAMAGE = CLASSES[1:]
CRACKS = ("D00", "D10", "D20")  # the crack / no-crack headline counts these
LABELS_JA = {"none": "損傷なし", "D00": "縦ひび割れ", "D10": "横ひび割れ", "D20": "亀甲状ひび割れ",
             "D40": "ポットホール"}
# Bit of each damage class in the mask PNGs (one uint8 per pixel, classes can overlap).
MASK_BITS = {c: 1 << i for i, c in enumerate(DAMAGE)}
# A tile shows a class when at least this share of its pixels carry the class in the mask:
# a 1.5 px crack must run about 30 px (a third of a 96 px cell) to count; corner clips do not.
TILE_MASK_SHARE = 0.005
# RDD2018 damage codes (Maeda et al. 2018, Table 1) -> the tile classes above.
# Joint-crack decision (made once, used by the VOC importer, the real-crop evaluation and training
# on real crops): D01 / D11 are cracks that opened along a construction joint. They count as
# damage, as longitudinal (D00) and transverse (D10) cracks: the MLIT crack ratio counts every
# cell with a crack whatever caused it, and the crews who labelled RDD filed them as cracks. An
# intact, narrow and even joint line (the generator's render.joint look-alike) is not damage.
RDD_CLASSES = {"D00": "D00", "D01": "D00", "D10": "D10", "D11": "D10", "D20": "D20",
               "D40": "D40"}
# Documented RDD codes that are not damage: faded crosswalk (D43) and white line (D44) markings,
# manholes (D50), repairs. Real road texture with a line-like feature: the look-alike negatives.
RDD_NOT_DAMAGE = ("D43", "D44", "D50", "REPAIR", "BLUR")
LEVELS = ("I", "II", "III")
LEVELS_JA = {"I": "Ⅰ 健全", "II": "Ⅱ 表層機能保持段階", "III": "Ⅲ 修繕段階"}
LEVEL_RANK = {"I": 0, "II": 1, "III": 2}
# The model's outputs: the tile classes, then whether the tile is road surface at all (sky,
# buildings, vehicles, vegetation, kerb and sidewalk, people, the car's bonnet or wiper are not).
PAVEMENT = "pavement"
OUTPUTS = (*CLASSES, PAVEMENT)
NOT_PAVEMENT_JA = "路面以外"
# A tile is road surface when at least this share of its pixels are (the generator's truth).
PAVEMENT_TILE_SHARE = 0.5


def mlit_level(crack_ratio: float) -> str:
    """MLIT level from the crack ratio (share of cells with cracks): <20% I, <40% II, else III."""
    if crack_ratio < 0.2:
        return "I"
    return "II" if crack_ratio < 0.4 else "III"


def grid_cells(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Per-cell share of pixels of each damage class, shape (rows, cols, len(DAMAGE))."""
    h, w = mask.shape
    ys = np.linspace(0, h, rows + 1).round().astype(int)
    xs = np.linspace(0, w, cols + 1).round().astype(int)
    out = np.zeros((rows, cols, len(DAMAGE)))
    for k, c in enumerate(DAMAGE):
        hit = ((mask & MASK_BITS[c]) > 0).astype(np.float64)
        sums = np.add.reduceat(np.add.reduceat(hit, ys[:-1], axis=0), xs[:-1], axis=1)
        out[:, :, k] = sums / np.outer(np.diff(ys), np.diff(xs))
    return out


def tile_labels(mask: np.ndarray, rows: int, cols: int,
                share: float = TILE_MASK_SHARE) -> np.ndarray:
    """0/1 labels per tile in CLASSES order, shape (rows * cols, len(CLASSES)), row-major."""
    damage = (grid_cells(mask, rows, cols) >= share).reshape(rows * cols, len(DAMAGE))
    return np.column_stack([~damage.any(axis=1), damage]).astype(np.int8)


def crack_ratio(labels: np.ndarray, pavement: np.ndarray | None = None) -> float:
    """Share of road-surface tiles with any damage class (MLIT counts patch and pothole area as
    cracked). labels (n, len(CLASSES)); pavement (n,) bool, None = every tile is road surface;
    0.0 when no tile is."""
    if pavement is not None:
        labels = labels[np.asarray(pavement, bool)]
    return float(labels[:, 1:len(CLASSES)].any(axis=1).mean()) if len(labels) else 0.0


def pavement_tiles(pavement: np.ndarray, rows: int, cols: int,
                   share: float = PAVEMENT_TILE_SHARE) -> np.ndarray:
    """Per tile (row-major, rows * cols): True where at least `share` of its pixels are road
    surface in the boolean pixel map `pavement` (h, w)."""
    h, w = pavement.shape
    ys = np.linspace(0, h, rows + 1).round().astype(int)
    xs = np.linspace(0, w, cols + 1).round().astype(int)
    sums = np.add.reduceat(np.add.reduceat(pavement.astype(np.float64), ys[:-1], axis=0),
                           xs[:-1], axis=1)
    return (sums / np.outer(np.diff(ys), np.diff(xs)) >= share).reshape(rows * cols)
