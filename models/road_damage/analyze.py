"""Photo-level results from tile probabilities: damage types with confidence, crack ratio, MLIT
level, the tile grid and a heat-map overlay. numpy/Pillow only: serving and evaluation share it.

Only road-surface tiles count: a tile the model calls not pavement (sky, building, vehicle,
vegetation, sidewalk, person, the car's bonnet or wiper) is greyed in the overlay and left out of
the crack ratio, the level and the damage types. A photo with too little road surface, or whose
road-surface tiles look unlike anything the model trained on (RoadCheck), gets no level and a
warning saying why; an unfamiliar but plausible pavement photo keeps its level with a warning.
A photo that passes these tile rules is then judged as a whole (roadphoto.PhotoCheck: is it a
road photo at all?): one that does not look like a road photo gets no level either; one it
calls a road photo keeps its level even with little road surface (down to
RoadCheck.floor_share), with a warning: the pavement head doubts the tiles of unfamiliar
close-ups more than the photo check does."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
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
from models.road_damage.photo import normalise, warning
from models.road_damage.roadphoto import PhotoCheck, photo_features

OUTPUT = "tiles_probabilities"  # the combined ONNX model's output (training/export.py prefix)
PAVEMENT_OUTPUT = "tiles_pavement"
DISTANCE_OUTPUT = "tiles_distance"
EMBEDDING_OUTPUT = "tiles_embedding"
NOT_PAVEMENT_GREY = (128, 128, 128, 170)  # overlay fill of tiles that are not road surface
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


@dataclass(frozen=True)
class RoadCheck:
    """When a photo gets a level (road.json "road_check"; cuts tuned at training, ood.tune).

    pavement_cut: a tile is road surface when its pavement probability reaches this.
    min_share: below this share of road-surface tiles the photo is not a road photo: no level,
    unless a road-photo check (roadphoto.PhotoCheck) calls the whole photo a road photo and at
    least floor_share of its tiles are road surface: then it keeps its level with the
    low_pavement_share warning (a close-up of an unfamiliar pavement whose tiles the pavement
    head doubts; bench/road_ood.py).
    floor_share: below this share no photo gets a level, whatever the road-photo check says.
    low_share: below this share, a warning (the level rests on few tiles).
    familiar: per-tile feature distance beyond which a road-surface tile is unfamiliar.
    unfamiliar_share: above this share of unfamiliar road-surface tiles, a warning.
    far: above this distance of its road-surface tiles (photo_distance), the photo is unlike
    the training data: no level. None (a model without statistics): no distance rule.
    """

    pavement_cut: float = 0.5
    min_share: float = 0.15
    floor_share: float = 0.05
    low_share: float = 0.35
    familiar: float | None = None
    unfamiliar_share: float = 0.5
    far: float | None = None

    @classmethod
    def of(cls, assets: dict[str, Any]) -> RoadCheck:
        """The rule a model was exported with (defaults for a model from before it)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (assets.get("road_check") or {}).items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """JSON form for road.json."""
        return asdict(self)


NOT_ROAD = warning("not_road", "路面がほとんど写っていないため、診断区分を出していません。"
                               "路面を撮った写真か確認してください",
                   "too little road surface in this photo: no MLIT level")
UNLIKE = warning("unlike_training", "学習した路面写真と大きく異なる画像のため、診断区分を出して"
                                    "いません。路面の写真か確認してください",
                 "this image is unlike the road photos the model learned from: no MLIT level")
UNFAMILIAR = warning("unfamiliar_pavement", "見慣れない路面のため判定が不確かです。"
                                            "結果を確認し、誤りは訂正してください",
                     "unfamiliar pavement: the result is uncertain, please check it")
NOT_ROAD_PHOTO = warning("not_road_photo", "道路・路面の写真ではないと判断したため、診断区分を"
                                           "出していません。路面を撮った写真か確認してください",
                         "this does not look like a road or pavement photo: no MLIT level")
LOW_SHARE = warning("low_pavement_share", "路面の写っている範囲が少ないため、診断区分は少ない"
                                          "マスに基づく目安です",
                    "little road surface in this photo: the level rests on few tiles")
# the codes of the road verdict (the rest of a photo's warnings come from its file and EXIF)
VERDICT_CODES = frozenset(w["code"] for w in (NOT_ROAD, UNLIKE, UNFAMILIAR, LOW_SHARE,
                                              NOT_ROAD_PHOTO))


def photo_distance(distance: np.ndarray) -> float:
    """A photo's feature distance: the 75th percentile over its road-surface tiles (a quarter
    of odd tiles is enough to call the photo odd; one odd tile is not)."""
    return float(np.percentile(distance, 75)) if len(distance) else 0.0


def road_verdict(pavement: np.ndarray, distance: np.ndarray | None, check: RoadCheck,
                 embedding: np.ndarray | None = None, photo: PhotoCheck | None = None,
                 tiles: np.ndarray | None = None, scene: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, bool, list[dict[str, str]]]:
    """(road-surface tiles (n,) bool, whether the photo gets a level, warnings) from the
    per-tile pavement probabilities (n,) and feature distances (n,; None: no distance rule),
    and with the tiles' features (n, d) and a fitted PhotoCheck, whether it is a road photo
    at all (road_photo_score; a check with image statistics also needs the uint8 tiles
    (n, h, w, 3), one with scene classes the photo's ImageNet probabilities `scene`
    (scene.CLASSES,)). Order: road-surface share (RoadCheck.min_share, or floor_share
    for a photo the check passes), the photo check, then the distance rule."""
    paved = np.asarray(pavement) >= check.pavement_cut
    share = float(paved.mean()) if len(paved) else 0.0
    score = road_photo_score(pavement, distance, embedding, photo, check.pavement_cut, tiles,
                             scene)
    # None: no photo check to ask (no fitted check, or no embedding)
    is_road = None if photo is None or score is None else bool(score >= photo.cut)
    # too little road surface: no level, unless the photo check vouches for the whole photo
    if share < check.floor_share or (share < check.min_share and not is_road):
        return paved, False, [NOT_ROAD]
    if is_road is False:
        return paved, False, [NOT_ROAD_PHOTO]
    notes = [LOW_SHARE] if share < check.low_share else []
    if distance is not None and check.far is not None and check.familiar is not None:
        d = np.asarray(distance)[paved]
        if photo_distance(d) > check.far:
            return paved, False, [UNLIKE]
        if float((d > check.familiar).mean()) > check.unfamiliar_share:
            notes.append(UNFAMILIAR)
    return paved, True, notes


def road_photo_score(pavement: np.ndarray, distance: np.ndarray | None,
                     embedding: np.ndarray | None, photo: PhotoCheck | None,
                     pavement_cut: float = 0.5, tiles: np.ndarray | None = None,
                     scene: np.ndarray | None = None) -> float | None:
    """The probability that the photo is a road photo (roadphoto.PhotoCheck on its tiles'
    pooled features, their pixel statistics and its thumbnail's ImageNet probabilities `scene`
    (scene.CLASSES,) for a check fitted with them), or None when the model has no such check
    or no features. ValueError when the check needs the tiles (uint8 (n, h, w, 3)) or the
    scene probabilities and they are not given: a check silently skipped would level any
    photo."""
    if photo is None or embedding is None or distance is None or not len(pavement):
        return None
    if photo.image_stats and tiles is None:
        raise ValueError("road_photo_score: this road-photo check reads the photo's pixel "
                         "statistics: pass its tiles")
    base = photo_features(pavement, distance, embedding, pavement_cut,
                          tiles if photo.image_stats else None)
    return float(photo.score(photo.features(base, scene)))


def run_onnx(session: Any, tiles: np.ndarray, batch: int = 512) -> dict[str, np.ndarray]:
    """{"probabilities" (n, classes), "pavement" (n,), "distance" (n,), "embedding" (n, d)} of
    uint8 tiles in batched ONNX calls (None: a model exported before that output)."""
    names = [o.name for o in session.get_outputs()]
    keys = {PAVEMENT_OUTPUT: "pavement", DISTANCE_OUTPUT: "distance",
            EMBEDDING_OUTPUT: "embedding"}
    wanted = [OUTPUT, *(o for o in keys if o in names)]
    parts = [session.run(wanted, {"input": normalise(tiles[s:s + batch])})
             for s in range(0, len(tiles), batch)]
    out: dict[str, Any] = {"probabilities": np.concatenate([p[0] for p in parts]) if parts
                           else np.zeros((0, len(CLASSES)), np.float32),
                           "pavement": None, "distance": None, "embedding": None}
    for i, name in enumerate(wanted[1:], start=1):
        out[keys[name]] = (np.concatenate([p[i] for p in parts]) if parts
                           else np.zeros(0, np.float32))
    return out


def summarise(probs: np.ndarray, rows: int, cols: int, threshold: Cuts,
              pavement: np.ndarray | None = None, distance: np.ndarray | None = None,
              check: RoadCheck | None = None, embedding: np.ndarray | None = None,
              photo: PhotoCheck | None = None, tiles: np.ndarray | None = None,
              scene: np.ndarray | None = None) -> dict[str, Any]:
    """Per photo: types found on road-surface tiles (confidence = the most certain one), crack
    ratio over road-surface tiles, pavement_share, road_photo_score (None without a photo
    check), level (None when the photo gets none, with `level_warnings` saying why), grid (each
    cell: labels, p, pavement). tiles: the photo's uint8 tiles (n, h, w, 3), which a photo
    check with image statistics reads; scene: its thumbnail's ImageNet probabilities
    (scene.CLASSES,), which a check with scene classes reads."""
    notes: list[dict[str, str]] = []
    score = None
    if pavement is None:
        paved, levelled = np.ones(len(probs), bool), True
    else:
        check = check or RoadCheck()
        paved, levelled, notes = road_verdict(pavement, distance, check, embedding, photo, tiles,
                                              scene)
        score = road_photo_score(pavement, distance, embedding, photo, check.pavement_cut,
                                 tiles, scene)
    flags = tile_flags(probs, threshold)
    flags[~paved] = np.eye(len(CLASSES), dtype=flags.dtype)[0]
    ratio = crack_ratio(flags, paved)
    level = mlit_level(ratio) if levelled else None
    types: list[dict[str, Any]] = []
    for k, cls in enumerate(DAMAGE, start=1):
        tiles_on = int(flags[:, k].sum())
        if tiles_on:
            conf = float(probs[paved, k].max())
            types.append({"type": cls, "label_ja": LABELS_JA[cls], "confidence": round(conf, 4),
                          "tiles": tiles_on})
    types.sort(key=lambda t: -t["confidence"])
    pav = np.ones(len(probs)) if pavement is None else np.asarray(pavement, float)
    grid = [[{"labels": [c for c, f in zip(CLASSES, flags[i], strict=True) if f] if paved[i]
              else [],
              "p": {c: round(float(p), 3) for c, p in zip(CLASSES, probs[i], strict=True)},
              "pavement": bool(paved[i]), "p_pavement": round(float(pav[i]), 3)}
             for i in range(r * cols, (r + 1) * cols)] for r in range(rows)]
    return {"types": types, "crack_ratio": round(ratio, 4), "mlit_level": level,
            "mlit_level_ja": LEVELS_JA[level] if level else None,
            "severity": severity(level, ratio),
            "pavement_share": round(float(paved.mean()), 4) if len(paved) else 0.0,
            "road_photo_score": None if score is None else round(score, 4),
            "level_warnings": notes, "rows": rows, "cols": cols, "grid": grid}


def severity(level: str | None, ratio: float) -> float:
    """Sort key, higher = worse: the level first, then the crack ratio within it; a photo
    without a level sorts last."""
    return -1.0 if level is None else LEVEL_RANK[level] + ratio


def overlay_png(image: np.ndarray, probs: np.ndarray, rows: int, cols: int,
                threshold: Cuts, pavement: np.ndarray | None = None) -> bytes:
    """The grid image with damaged tiles tinted by confidence (red cracks, purple potholes) and
    tiles that are not road surface greyed out (`pavement`: (n,) bool, None = all are)."""
    base = Image.fromarray(image).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    th, tw = image.shape[0] // rows, image.shape[1] // cols
    flags = tile_flags(probs, threshold)
    for i, p in enumerate(probs):
        r, c = divmod(i, cols)
        box = [c * tw, r * th, (c + 1) * tw - 1, (r + 1) * th - 1]
        crack, hole = float(p[1:4].max()), float(p[4])
        if pavement is not None and not pavement[i]:
            draw.rectangle(box, fill=NOT_PAVEMENT_GREY)
        elif not flags[i, 0]:
            colour = (230, 30, 30) if flags[i, 1:4].any() else (150, 40, 200)
            draw.rectangle(box, fill=(*colour, int(30 + 90 * max(crack, hole))),
                           outline=(*colour, 255), width=2)
        else:
            draw.rectangle(box, outline=(255, 255, 255, 50), width=1)
    buf = io.BytesIO()
    Image.alpha_composite(base, layer).convert("RGB").save(buf, "PNG", compress_level=3)
    return buf.getvalue()
