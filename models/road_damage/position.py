"""Where a photo was taken against where its municipality is (configs/tenants.yaml `area`)."""

from __future__ import annotations

import math

from models.configs import Area
from models.road_damage.photo import warning

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in km between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def outside_warning(lat: float | None, lon: float | None, area: Area | None,
                    name: str) -> dict[str, str] | None:
    """A warning when the position lies beyond the municipality's radius; None when it is
    inside, or there is no position or no configured area.

    The point stays in the exports (it is a real reading): a photo from a neighbouring town or
    a phone with a stale fix is for staff to judge, not to drop.
    """
    if lat is None or lon is None or area is None:
        return None
    km = distance_km(area.lat, area.lon, lat, lon)
    if km <= area.radius_km:
        return None
    at = f"({lat:.5f}, {lon:.5f})"
    return warning("outside_municipality",
                   f"撮影位置 {at} は{name}の中心から約 {km:,.0f} km 離れています"
                   f"（想定範囲 {area.radius_km:g} km）。位置情報を確認してください",
                   f"position {at} is about {km:,.0f} km from the centre of {name} "
                   f"(radius {area.radius_km:g} km); check the GPS")
