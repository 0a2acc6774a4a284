"""road_damage on real full-frame street views (dashcam, windscreen phone, street level): what
the product answers, against the curator's visual judgement (assets/road_street/DATA_CARD.md).

    python -m bench.road_street                                  # build/road_damage/onnx
    python -m bench.road_street /work/main/build/road_damage/onnx [--overlays DIR]

The photos go the way serving sends them (serving/road_damage.py _analyse): photo_tiles ->
the exported ONNX graph (models.onnx_session, one thread) -> analyze.summarise with the
package's road.json (threshold, road_check, road_photo). Per photo: the level given or withheld
and why, warnings, pavement_share, crack ratio, damage types, potholes, and what happened to
the tiles that hold no road surface: those wholly above `road_top` (sky, trees, buildings,
distant vehicles) and those mostly below `bonnet_top` (the own car's bonnet, dashboard, wiper),
both from the manifest. A check only: nothing is trained or tuned on these photos.
Writes reports/bench/road_street.json.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from models.road_damage import scene
from models.road_damage.analyze import (
    RoadCheck,
    overlay_png,
    run_onnx,
    summarise,
    tile_flags,
)
from models.road_damage.photo import Grid, photo_tiles
from models.road_damage.roadphoto import PhotoCheck

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets" / "road_street"
OUT = ROOT / "reports" / "bench" / "road_street.json"
LEVELS = ("I", "II", "III")
PAINT = 0.02  # a road tile holds a lane marking from this share of paint-like pixels on


def load_manifest(path: Path = ASSETS / "manifest.csv") -> list[dict[str, Any]]:
    """Manifest rows with road_top / bonnet_top as floats (ValueError naming the row and field
    when one is missing or outside [0, 1], or an expected answer is not understood)."""
    rows = []
    with open(path, newline="") as f:
        for n, raw in enumerate(csv.DictReader(f), start=2):
            row: dict[str, Any] = dict(raw)
            for key in ("road_top", "bonnet_top"):
                try:
                    value = float(row[key])
                except (TypeError, ValueError):
                    raise ValueError(f"{path.name} row {n} ({row.get('file')}): {key} "
                                     f"{row.get(key)!r} is not a number") from None
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{path.name} row {n} ({row['file']}): {key} "
                                     f"{value} is outside [0, 1]")
                row[key] = value
            expected_levels(row["expected_level"])  # raises on a typo
            if row["expected_pothole"] not in ("yes", "no", "unclear"):
                raise ValueError(f"{path.name} row {n} ({row['file']}): expected_pothole "
                                 f"{row['expected_pothole']!r} is not yes, no or unclear")
            rows.append(row)
    return rows


def expected_levels(text: str) -> frozenset[str | None] | None:
    """The answers counted right: "I|II" -> {"I", "II"}; "none" stands for a withheld level
    (None); "?" -> None (no expectation: the photo is left out of the level agreement).
    ValueError on anything else."""
    if text.strip() == "?":
        return None
    out: set[str | None] = set()
    for part in text.split("|"):
        part = part.strip()
        if part == "none":
            out.add(None)
        elif part in LEVELS:
            out.add(part)
        else:
            raise ValueError(f"expected_level {text!r}: {part!r} is not I, II, III, none or ?")
    return frozenset(out)


def tile_zones(rows: int, cols: int, road_top: float, bonnet_top: float) -> np.ndarray:
    """Per tile (row-major, rows * cols): "above" when the whole tile lies above road_top (no
    road surface in it), "bonnet" when its centre lies below bonnet_top (mostly the own car),
    else "road" (road surface or its surroundings: not judged tile by tile). Height shares,
    0 = top; a grid row r spans [r / rows, (r + 1) / rows] of the photo (photo.to_grid
    stretches the photo onto the grid)."""
    r = np.arange(rows)
    zone = np.where((r + 1) / rows <= road_top, "above",
                    np.where((r + 0.5) / rows >= bonnet_top, "bonnet", "road"))
    return np.repeat(zone, cols)


def zone_counts(zones: np.ndarray, paved: np.ndarray, counted: np.ndarray,
                flagged: np.ndarray, zone: str) -> dict[str, int]:
    """Tiles of one zone: how many, called road surface by the pavement head (paved), counted
    as damaged in the crack ratio (counted: paved and flagged) and flagged by the damage head
    alone, before the pavement mask (flagged)."""
    m = zones == zone
    return {"tiles": int(m.sum()), "called_pavement": int((paved & m).sum()),
            "counted_damaged": int((counted & m).sum()),
            "damage_head_flagged": int((flagged & m).sum())}


def paint_share(tile: np.ndarray) -> float:
    """Share of a tile's pixels (uint8 (h, w, 3) RGB) that look like road paint: white (all
    channels >= 180, spread <= 40) or yellow (R, G >= 150, B <= 0.6 G). A pixel heuristic for
    "this tile holds a lane marking", read only on tiles the product calls road surface."""
    t = tile.astype(np.int16)
    r, g, b = t[..., 0], t[..., 1], t[..., 2]
    white = (t.min(axis=-1) >= 180) & (t.max(axis=-1) - t.min(axis=-1) <= 40)
    yellow = (r >= 150) & (g >= 150) & (b <= 0.6 * g)
    return float((white | yellow).mean())


def grid_cells(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The grid image's tiles without context, row-major (rows * cols, h, w, 3)."""
    th, tw = image.shape[0] // rows, image.shape[1] // cols
    t = image[:rows * th, :cols * tw].reshape(rows, th, cols, tw, -1)
    return t.transpose(0, 2, 1, 3, 4).reshape(rows * cols, th, tw, -1)


def judge(row: dict[str, Any], level: str | None, pothole: bool) -> dict[str, bool | None]:
    """Whether the product's answer matches the expected one: level_ok (None when the manifest
    has no expectation, "?"), pothole_false (a pothole reported on a photo without one; None
    when the manifest says unclear or yes), pothole_missed (None unless it says yes)."""
    want = expected_levels(row["expected_level"])
    hole = row["expected_pothole"]
    return {"level_ok": None if want is None else level in want,
            "pothole_false": (pothole if hole == "no" else None),
            "pothole_missed": (not pothole if hole == "yes" else None)}


def served(session: Any, assets: dict[str, Any], data: bytes, scene_session: Any = None,
           ) -> tuple[dict[str, Any], dict[str, Any], np.ndarray, np.ndarray, np.ndarray,
                      np.ndarray]:
    """(the product's per-photo summary as serving computes it, photo_tiles' facts, the tile
    probabilities (n, classes), the grid image, per tile (n,) bool: called road surface, a
    damage label over its cut (counted damaged where both hold)) of one encoded photo.
    scene_session: the package's scene.onnx, which a road-photo check with scene classes reads
    (as serving's _scene does: the grid image's thumbnail); RuntimeError when it is needed and
    missing."""
    check, photo = RoadCheck.of(assets), PhotoCheck.of(assets)
    tiles, (rows, cols), facts, image = photo_tiles(data, Grid.of(assets))
    out = run_onnx(session, tiles)
    p = out["probabilities"]
    probs = None
    if photo is not None and photo.scene_classes is not None:
        if scene_session is None:
            raise RuntimeError("the package's road-photo check reads scene.onnx: pass it")
        probs = scene.run_onnx(scene_session, scene.thumbnail(image)[None])[0]
    res = summarise(p, rows, cols, assets["threshold"], out["pavement"], out["distance"],
                    check, out["embedding"], photo, tiles, probs)
    paved = np.array([c["pavement"] for line in res["grid"] for c in line], bool)
    flagged = np.asarray(tile_flags(p, assets["threshold"])[:, 1:].any(axis=1), bool)
    return res, facts, p, image, paved, flagged


def analyse(session: Any, assets: dict[str, Any], data: bytes, row: dict[str, Any],
            scene_session: Any = None,
            ) -> tuple[dict[str, Any], dict[str, Any], np.ndarray, np.ndarray]:
    """(the product's per-photo summary as serving computes it (served), this bench's row, the
    tile probabilities (n, classes), the grid image) of one encoded photo."""
    res, facts, p, image, paved, flagged = served(session, assets, data, scene_session)
    rows, cols, counted = res["rows"], res["cols"], flagged & paved
    zones = tile_zones(rows, cols, row["road_top"], row["bonnet_top"])
    # road-surface tiles of the road zone with a lane marking (>= PAINT of paint-like pixels)
    road = paved & (zones == "road")
    paint = np.array([paint_share(c) for c in grid_cells(image, rows, cols)]) >= PAINT
    pothole_tiles = int(sum(t["tiles"] for t in res["types"] if t["type"] == "D40"))
    level = res["mlit_level"]
    return res, {
        "level": level, "level_withheld": level is None,
        "warnings": [w["code"] for w in res["level_warnings"]] + [
            w["code"] for w in facts.get("warnings", [])],
        "pavement_share": res["pavement_share"], "crack_ratio": res["crack_ratio"],
        "road_photo_score": res["road_photo_score"],
        "types": {t["type"]: t["tiles"] for t in res["types"]},
        "pothole_tiles": pothole_tiles, "grid": [rows, cols],
        "expected_level": row["expected_level"], "expected_pothole": row["expected_pothole"],
        "above_road": zone_counts(zones, paved, counted, flagged, "above"),
        "bonnet": zone_counts(zones, paved, counted, flagged, "bonnet"),
        "road_zone": zone_counts(zones, paved, counted, flagged, "road"),
        "marked_road_tiles": {"tiles": int((road & paint).sum()),
                              "counted_damaged": int((road & paint & counted).sum())},
        "unmarked_road_tiles": {"tiles": int((road & ~paint).sum()),
                                "counted_damaged": int((road & ~paint & counted).sum())},
        **judge(row, level, pothole_tiles > 0),
    }, p, image


def _share(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def summary(per: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The sums over photos: levels given and withheld (and why), agreement with the expected
    level (a withheld level counts as a disagreement unless "none" is expected), potholes on
    photos without one, and the share of non-road tiles (above road_top; bonnet) that the
    product counted as damaged, called road surface, or that the damage head flagged."""
    rows = list(per.values())
    judged = [r for r in rows if r["level_ok"] is not None]
    intact = [r for r in rows if r["expected_level"] == "I"]
    damaged = [r for r in rows if r["expected_level"] == "II|III"]
    no_hole = [r for r in rows if r["pothole_false"] is not None]
    out: dict[str, Any] = {
        "photos": len(rows),
        "level_given": sum(not r["level_withheld"] for r in rows),
        "levels": dict(Counter(r["level"] or "withheld" for r in rows)),
        "withheld_by": dict(Counter(r["warnings"][0] if r["warnings"] else "?"
                                    for r in rows if r["level_withheld"])),
        "warned": sum(bool(r["warnings"]) for r in rows),
        "level_agreement": {"judged": len(judged), "agree": sum(r["level_ok"] for r in judged),
                            "share": _share(sum(r["level_ok"] for r in judged), len(judged))},
        "intact_photos": {"photos": len(intact),
                          "level_I": sum(r["level"] == "I" for r in intact),
                          "withheld": sum(r["level_withheld"] for r in intact),
                          "median_crack_ratio": (round(float(np.median(
                              [r["crack_ratio"] for r in intact])), 4) if intact else None)},
        "damaged_photos": {"photos": len(damaged),
                           "level_II_or_III": sum(r["level"] in ("II", "III") for r in damaged)},
        "pothole_on_photos_without": {"photos": len(no_hole),
                                      "reported": sum(r["pothole_false"] for r in no_hole)},
        "median_pavement_share": round(float(np.median([r["pavement_share"] for r in rows])), 4)
        if rows else None,
    }
    # on photos expected level I every counted tile is a false alarm: markings or not?
    for key in ("marked_road_tiles", "unmarked_road_tiles"):
        n = sum(r[key]["tiles"] for r in intact)
        bad = sum(r[key]["counted_damaged"] for r in intact)
        out[f"intact_{key}"] = {"tiles": n, "counted_damaged": bad,
                                "share_counted_damaged": _share(bad, n)}
    for zone in ("above_road", "bonnet"):
        tot = {k: sum(r[zone][k] for r in rows) for k in rows[0][zone]} if rows else {}
        n = tot.get("tiles", 0)
        out[zone] = {**tot, "share_counted_damaged": _share(tot.get("counted_damaged", 0), n),
                     "share_called_pavement": _share(tot.get("called_pavement", 0), n),
                     "share_damage_head_flagged": _share(tot.get("damage_head_flagged", 0), n),
                     "photos_with_one_counted": sum(r[zone]["counted_damaged"] > 0
                                                    for r in rows)}
    return out


def open_package(model_dir: Path) -> tuple[dict[str, Any], Any, Any]:
    """(road.json, model.onnx's session, scene.onnx's session or None) of a road package."""
    from models.onnx_session import open_session

    scene_path = model_dir / "scene.onnx"
    return (json.loads((model_dir / "road.json").read_text()),
            open_session(model_dir / "model.onnx"),
            open_session(scene_path) if scene_path.is_file() else None)


def package_meta(model_dir: Path) -> dict[str, Any]:
    """A road package's meta.json ({} for a package without one)."""
    path = model_dir / "meta.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def model_info(model_dir: Path, assets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Which package a bench scored: its folder, training time and run, architecture and cuts
    (assets: its road.json, read from model_dir when not given)."""
    meta = package_meta(model_dir)
    if assets is None:
        assets = json.loads((model_dir / "road.json").read_text())
    return {"dir": str(model_dir), "trained_at": meta.get("trained_at"),
            "run_id": meta.get("run_id"), "architecture": assets.get("architecture"),
            "threshold": assets.get("threshold")}


def run(model_dir: Path, overlays: Path | None = None) -> dict[str, Any]:
    """Every photo of the manifest through the package in model_dir (model.onnx + road.json)."""
    assets, session, scene_session = open_package(model_dir)
    per = {}
    for row in load_manifest():
        data = (ASSETS / row["file"]).read_bytes()
        res, per[row["file"]], probs, image = analyse(session, assets, data, row,
                                                      scene_session)
        if overlays is not None:  # the overlay serving returns: damage tinted, not-road grey
            paved = np.array([c["pavement"] for line in res["grid"] for c in line], bool)
            overlays.mkdir(parents=True, exist_ok=True)
            (overlays / f"{Path(row['file']).stem}.png").write_bytes(overlay_png(
                image, probs, res["rows"], res["cols"], assets["threshold"], paved))
    return {"model": {**model_info(model_dir, assets), "road_check": assets.get("road_check")},
            "summary": summary(per), "photos": per}


if __name__ == "__main__":
    args = sys.argv[1:]
    ov = None
    if "--overlays" in args:
        i = args.index("--overlays")
        ov = Path(args[i + 1])
        del args[i:i + 2]
    report = run(Path(args[0]) if args else ROOT / "build" / "road_damage" / "onnx", ov)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    for name, r in report["photos"].items():
        print(f"{name:40s} {r['level']!s:8s} exp={r['expected_level']:9s} "
              f"pav={r['pavement_share']:.2f} cr={r['crack_ratio']:.2f} "
              f"hole={r['pothole_tiles']} above={r['above_road']['counted_damaged']}/"
              f"{r['above_road']['tiles']} bonnet={r['bonnet']['counted_damaged']}/"
              f"{r['bonnet']['tiles']} {','.join(r['warnings'])}")
