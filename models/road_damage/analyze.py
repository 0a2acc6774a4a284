"""Photo-level results from tile probabilities: damage types with confidence, crack ratio, MLIT
level, the tile grid and a heat-map overlay. numpy/Pillow only: serving and evaluation share it."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from models.road_damage.labels import (
    CLASSES,
    DAMAGE,
    LABELS_JA,
    LEVEL_RANK,
    LEVELS_JA,
    crack_ratio,
    mlit_level,
)
from models.road_damage.photo import normalise

OUTPUT = "tiles_probabilities"  # the combined ONNX model's output (training/export.py prefix)
CRACK = slice(1, 4)  # D00, D10, D20 in CLASSES order
# One cut, one per damage class, or {"class": [one per damage class], "crack": one cut}
Cuts = float | list[float] | dict[str, Any]


def tile_flags(probs: np.ndarray, threshold: Cuts) -> np.ndarray:
    """0/1 tile labels in CLASSES order from probabilities; 'none' when no damage is on.

    With a "crack" cut, whether a tile is cracked at all is decided once, on its most likely
    crack class (crack / no-crack is what the level counts, and the crack classes share their
    evidence); a cracked tile shows the crack classes over their own cut, or its most likely one.
    """
    if not isinstance(threshold, dict):
        damage = probs[:, 1:] >= np.asarray(threshold, np.float32)
        return np.column_stack([~damage.any(axis=1), damage]).astype(np.int8)
    damage = probs[:, 1:] >= np.asarray(threshold["class"], np.float32)
    crack = probs[:, CRACK].max(axis=1) >= threshold["crack"]
    damage[:, :3] &= crack[:, None]
    unnamed = crack & ~damage[:, :3].any(axis=1)
    damage[np.flatnonzero(unnamed), probs[unnamed, CRACK].argmax(axis=1)] = True
    return np.column_stack([~damage.any(axis=1), damage]).astype(np.int8)


def run_onnx(session: Any, tiles: np.ndarray, batch: int = 512) -> np.ndarray:
    """Probabilities (n, classes) of uint8 tiles in batched ONNX calls."""
    out = [session.run([OUTPUT], {"input": normalise(tiles[s:s + batch])})[0]
           for s in range(0, len(tiles), batch)]
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


def summarise(probs: np.ndarray, rows: int, cols: int, threshold: Cuts,
              ) -> dict[str, Any]:
    """Per photo: types found (confidence = the most certain tile), crack ratio, level, grid."""
    flags = tile_flags(probs, threshold)
    ratio = crack_ratio(flags)
    level = mlit_level(ratio)
    types: list[dict[str, Any]] = []
    for k, cls in enumerate(DAMAGE, start=1):
        conf = float(probs[:, k].max()) if len(probs) else 0.0
        tiles_on = int(flags[:, k].sum())
        if tiles_on:
            types.append({"type": cls, "label_ja": LABELS_JA[cls], "confidence": round(conf, 4),
                          "tiles": tiles_on})
    types.sort(key=lambda t: -t["confidence"])
    grid = [[{"labels": [c for c, f in zip(CLASSES, flags[r * cols + c_], strict=True) if f],
              "p": {c: round(float(p), 3) for c, p in zip(CLASSES, probs[r * cols + c_],
                                                           strict=True)}}
             for c_ in range(cols)] for r in range(rows)]
    return {"types": types, "crack_ratio": round(ratio, 4), "mlit_level": level,
            "mlit_level_ja": LEVELS_JA[level], "severity": severity(level, ratio),
            "rows": rows, "cols": cols, "grid": grid}


def severity(level: str, ratio: float) -> float:
    """Sort key, higher = worse: the level first, then the crack ratio within it."""
    return LEVEL_RANK[level] + ratio


def overlay_png(image: np.ndarray, probs: np.ndarray, rows: int, cols: int,
                threshold: Cuts) -> bytes:
    """The grid image with damaged tiles tinted by confidence (red cracks, purple potholes)."""
    base = Image.fromarray(image).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    th, tw = image.shape[0] // rows, image.shape[1] // cols
    flags = tile_flags(probs, threshold)
    for i, p in enumerate(probs):
        r, c = divmod(i, cols)
        box = [c * tw, r * th, (c + 1) * tw - 1, (r + 1) * th - 1]
        crack, hole = float(p[1:4].max()), float(p[4])
        if not flags[i, 0]:
            colour = (230, 30, 30) if flags[i, 1:4].any() else (150, 40, 200)
            draw.rectangle(box, fill=(*colour, int(30 + 90 * max(crack, hole))),
                           outline=(*colour, 255), width=2)
        else:
            draw.rectangle(box, outline=(255, 255, 255, 50), width=1)
    buf = io.BytesIO()
    Image.alpha_composite(base, layer).convert("RGB").save(buf, "PNG", compress_level=3)
    return buf.getvalue()
