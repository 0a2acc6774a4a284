"""bench/road_street.py's pure logic and assets/road_street's manifest (no model, no timing)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bench.road_street import (
    ASSETS,
    expected_levels,
    grid_cells,
    judge,
    load_manifest,
    paint_share,
    summary,
    tile_zones,
    zone_counts,
)

# licences that allow this use; nothing non-commercial (NC) or no-derivatives (ND)
ALLOWED = ("MIT", "Apache-2.0", "BSD", "CC BY 4.0", "CC BY-SA 4.0", "CC0", "public domain")


def test_expected_levels_parse_alternatives_withheld_and_unknown() -> None:
    assert expected_levels("I") == {"I"}
    assert expected_levels("II|III") == {"II", "III"}
    assert expected_levels("none|I|II") == {None, "I", "II"}
    assert expected_levels("?") is None
    with pytest.raises(ValueError, match="IV"):
        expected_levels("I|IV")


def test_tile_zones_above_road_top_and_below_bonnet() -> None:
    # 4 rows: rows 0-1 end at 0.25 and 0.5 <= 0.55 (no road in them); row 2 ends at 0.75
    z = tile_zones(4, 3, road_top=0.55, bonnet_top=1.0).reshape(4, 3)
    assert (z[:2] == "above").all() and (z[2:] == "road").all()
    # 8 rows: only the last row's centre (0.9375) is below a bonnet from 0.86
    z = tile_zones(8, 2, road_top=0.0, bonnet_top=0.86).reshape(8, 2)
    assert (z[7] == "bonnet").all() and (z[:7] == "road").all()


def test_zone_counts_separate_counted_from_flagged() -> None:
    zones = np.array(["above", "above", "road", "bonnet"])
    paved = np.array([True, False, True, True])
    flagged = np.array([True, True, True, False])
    got = zone_counts(zones, paved, flagged & paved, flagged, "above")
    assert got == {"tiles": 2, "called_pavement": 1, "counted_damaged": 1,
                   "damage_head_flagged": 2}


def test_judge_withheld_level_counts_only_where_expected() -> None:
    row = {"expected_level": "I", "expected_pothole": "no"}
    assert judge(row, "I", False) == {"level_ok": True, "pothole_false": False,
                                      "pothole_missed": None}
    assert judge(row, None, True)["level_ok"] is False
    assert judge(row, None, True)["pothole_false"] is True
    assert judge({"expected_level": "none|I", "expected_pothole": "unclear"}, None, True) == {
        "level_ok": True, "pothole_false": None, "pothole_missed": None}
    assert judge({"expected_level": "?", "expected_pothole": "yes"}, "III", False) == {
        "level_ok": None, "pothole_false": None, "pothole_missed": True}


def test_paint_share_white_and_yellow_not_asphalt() -> None:
    asphalt = np.full((8, 8, 3), 90, np.uint8)
    assert paint_share(asphalt) == 0.0
    asphalt[:2] = (235, 235, 230)  # a white line over a quarter of the tile
    assert paint_share(asphalt) == 0.25
    yellow = np.zeros((4, 4, 3), np.uint8)
    yellow[:] = (220, 180, 40)
    assert paint_share(yellow) == 1.0


def test_grid_cells_row_major() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    image[2:, 3:] = 7  # bottom-right cell of a 2 x 2 grid
    cells = grid_cells(image, 2, 2)
    assert cells.shape == (4, 2, 3, 3)
    assert (cells[3] == 7).all() and (cells[:3] == 0).all()


def _row(level: str | None, expected: str, share: float, ratio: float) -> dict:
    zone = {"tiles": 2, "called_pavement": 1, "counted_damaged": 1, "damage_head_flagged": 1}
    tiles = {"tiles": 4, "counted_damaged": 1}
    return {"level": level, "level_withheld": level is None,
            "warnings": [] if level else ["not_road_photo"], "pavement_share": share,
            "crack_ratio": ratio, "expected_level": expected, "above_road": zone,
            "bonnet": zone, "marked_road_tiles": tiles, "unmarked_road_tiles": tiles,
            **judge({"expected_level": expected, "expected_pothole": "no"}, level, False)}


def test_summary_sums_levels_agreement_and_zones() -> None:
    s = summary({"a": _row("I", "I", 0.5, 0.1), "b": _row(None, "I", 0.2, 0.4),
                 "c": _row("III", "II|III", 0.7, 0.5)})
    assert s["photos"] == 3 and s["level_given"] == 2
    assert s["withheld_by"] == {"not_road_photo": 1}
    assert s["level_agreement"] == {"judged": 3, "agree": 2, "share": 0.6667}
    assert s["intact_photos"] == {"photos": 2, "level_I": 1, "withheld": 1,
                                  "median_crack_ratio": 0.25}
    assert s["damaged_photos"] == {"photos": 1, "level_II_or_III": 1}
    assert s["above_road"]["tiles"] == 6 and s["above_road"]["share_counted_damaged"] == 0.5
    assert s["intact_marked_road_tiles"] == {"tiles": 8, "counted_damaged": 2,
                                             "share_counted_damaged": 0.25}


def test_manifest_sources_pinned_licensed_and_files_present() -> None:
    rows = load_manifest()
    assert 10 <= len(rows) <= 40
    for r in rows:
        assert (ASSETS / r["file"]).is_file(), r["file"]
        assert r["source"].startswith("github:"), r["file"]
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"]), r["file"]
        assert r["path"] and r["shows"] and r["view"], r["file"]
        assert r["licence"].startswith(ALLOWED), (r["file"], r["licence"])
        assert not re.search(r"\bNC\b|\bND\b|non-?commercial", r["licence"], re.I), r["file"]
    assert sum((ASSETS / r["file"]).stat().st_size for r in rows) < 5_000_000
    assert (ASSETS / "DATA_CARD.md").is_file()


def test_manifest_errors_name_row_and_field(tmp_path) -> None:
    bad = tmp_path / "manifest.csv"
    bad.write_text("file,expected_level,expected_pothole,road_top,bonnet_top\n"
                   "a.jpg,I,no,0.5,1.0\nb.jpg,I,no,1.5,1.0\n")
    with pytest.raises(ValueError, match=r"row 3 \(b.jpg\): road_top 1.5"):
        load_manifest(bad)
    bad.write_text("file,expected_level,expected_pothole,road_top,bonnet_top\n"
                   "a.jpg,I,maybe,0.5,1.0\n")
    with pytest.raises(ValueError, match="expected_pothole 'maybe'"):
        load_manifest(bad)


def training_code_naming(name: str) -> list[str]:
    """Files under models/, training/ or configs/ (code and config) whose text names `name`:
    a check set's folder must appear in none of them."""
    root = ASSETS.parents[1]
    return [str(f) for d in ("models", "training", "configs") for f in (root / d).rglob("*")
            if f.is_file() and f.suffix in (".py", ".yaml", ".yml", ".json")
            and name in f.read_text(errors="ignore")]


def test_no_training_code_reads_the_street_views() -> None:
    """A check set: nothing under models/, training/ or configs/ may name it."""
    assert training_code_naming("road_street") == []
