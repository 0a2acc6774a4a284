"""Phone photos as they arrive: HEIC, broken timestamps, GPS without a fix, far-away positions."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from models.configs import Area, ConfigError, TenantsConfig, load_config
from models.road_damage.photo import open_photo
from models.road_damage.position import distance_km, outside_warning

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES = FIXTURES / "cases"
REPO = Path(__file__).resolve().parents[2]
CHIBA = Area(lat=35.607, lon=140.106, radius_km=20)


def with_stamp(stamp: str | None, gps: tuple | None = ((35.0, 36.0, 26.28), (140.0, 6.0, 22.68)),
               ) -> bytes:
    """A small JPEG with the given DateTimeOriginal and GPS (degrees, minutes, seconds)."""
    exif = Image.Exif()
    if stamp is not None:
        exif.get_ifd(0x8769)[36867] = stamp
    if gps is not None:
        exif.get_ifd(0x8825).update({1: "N", 2: gps[0], 3: "E", 4: gps[1]})
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 120, 120)).save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_zero_timestamp_keeps_gps() -> None:  # cases/g5_dto_zeros_valid_gps.jpg
    _, facts = open_photo((CASES / "g5_dto_zeros_valid_gps.jpg").read_bytes())
    assert facts["lat"] == pytest.approx(35.607300, abs=1e-5)
    assert facts["lon"] == pytest.approx(140.106300, abs=1e-5)
    assert facts["taken_at"] is None
    assert [w["code"] for w in facts["warnings"]] == ["taken_at_unreadable"]
    assert "0000:00:00" in facts["warnings"][0]["ja"]


@pytest.mark.parametrize(("stamp", "taken_at", "codes"), [
    ("2026-04-05 10:15:30", "2026-04-05T10:15:30", []),
    ("2026:04:05 10:15:30", "2026-04-05T10:15:30", []),
    ("yesterday", None, ["taken_at_unreadable"]),
    ("2026:13:45 99:00:00", None, ["taken_at_unreadable"]),
])
def test_any_timestamp_keeps_gps(stamp: str, taken_at: str | None, codes: list[str]) -> None:
    _, facts = open_photo(with_stamp(stamp))
    assert facts["taken_at"] == taken_at
    assert facts["lat"] == pytest.approx(35.6073, abs=1e-4) and facts["lon"] > 140
    assert [w["code"] for w in facts["warnings"]] == codes


def test_null_island_is_no_gps() -> None:  # cases/g7_null_island.jpg
    _, facts = open_photo((CASES / "g7_null_island.jpg").read_bytes())
    assert facts["lat"] is None and facts["lon"] is None
    assert facts["taken_at"] == "2026-04-05T10:15:30"
    assert [w["code"] for w in facts["warnings"]] == ["gps_zero"]
    assert "測位" in facts["warnings"][0]["ja"]


def test_no_gps_at_all_is_no_warning() -> None:
    _, facts = open_photo(with_stamp("2026:04:05 10:15:30", gps=None))
    assert facts["lat"] is None and facts["warnings"] == []


def test_heic_from_an_iphone_is_read_with_its_exif() -> None:
    """tests/fixtures/road_iphone.heic: 128 x 96, made with pillow-heif's encoder (not a
    dependency: pi-heif only decodes), GPS near 千葉市役所, taken 2026-04-05 10:15:30."""
    img, facts = open_photo((FIXTURES / "road_iphone.heic").read_bytes())
    assert img.size == (128, 96) and img.mode == "RGB"
    assert img.getpixel((5, 42))[0] < 60  # the dark line across the middle survived decoding
    assert facts["lat"] == pytest.approx(35.6073, abs=1e-4)
    assert facts["taken_at"] == "2026-04-05T10:15:30" and facts["warnings"] == []


def test_distance_and_outside_warning() -> None:
    assert distance_km(35.607, 140.106, 42.315, 140.974) == pytest.approx(749, abs=10)
    assert outside_warning(35.65, 140.05, CHIBA, "千葉市") is None
    far = outside_warning(42.315, 140.974, CHIBA, "千葉市")
    assert far is not None and far["code"] == "outside_municipality"
    assert "千葉市" in far["ja"] and "km" in far["ja"] and "radius 20 km" in far["en"]
    assert outside_warning(None, None, CHIBA, "千葉市") is None
    assert outside_warning(42.3, 141.0, None, "千葉市") is None


def test_every_tenant_has_an_area_and_road_needs_one(tmp_path: Path) -> None:
    tenants = load_config(REPO / "configs" / "tenants.yaml", TenantsConfig).tenants
    assert all(t.area is not None for t in tenants)
    muroran = next(t for t in tenants if t.code == "012050")
    assert distance_km(muroran.area.lat, muroran.area.lon, 42.3152, 140.9737) < 1
    text = (REPO / "configs" / "tenants.yaml").read_text(encoding="utf-8")
    no_area = "\n".join(ln for ln in text.splitlines() if "area:" not in ln)
    (tmp_path / "tenants.yaml").write_text(no_area, encoding="utf-8")
    with pytest.raises(ConfigError, match="road_damage"):
        load_config(tmp_path / "tenants.yaml", TenantsConfig)
    bad = text.replace("lat: 35.607", "lat: 135.607")
    (tmp_path / "tenants.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError, match="lat"):
        load_config(tmp_path / "tenants.yaml", TenantsConfig)
