"""Photo and tile frames (pandera): photos name their image and mask files, tiles hold labels.

File paths are relative to data/road_damage/ in the CSV files (so the data is relocatable and
its checksum reproducible); training/data.py makes them absolute when it reads them.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from models.road_damage.labels import CLASSES, LEVELS, PAVEMENT

TENANT = pa.Column(str, pa.Check.str_matches(r"^\d{6}$"))
BINARY = pa.Check.isin([0, 1])
PHOTOS = pa.DataFrameSchema({
    "photo_id": pa.Column(str, pa.Check.str_length(1, 200), unique=True),
    "tenant_code": TENANT,
    "file": pa.Column(str, pa.Check.str_length(1, 1000)),
    "mask_file": pa.Column(str),  # empty when only tile labels exist (class-folder imports)
    "taken_at": pa.Column(str),
    "lat": pa.Column(float, pa.Check.in_range(-90, 90), nullable=True),
    "lon": pa.Column(float, pa.Check.in_range(-180, 180), nullable=True),
    "rows": pa.Column(int, pa.Check.ge(1)),
    "cols": pa.Column(int, pa.Check.ge(1)),
    "crack_ratio": pa.Column(float, pa.Check.in_range(0, 1)),
    # "" for a photo with no road surface (the generator's wall, room and sky photos)
    "mlit_level": pa.Column(str, pa.Check.isin([*LEVELS, ""])),
    "source": pa.Column(str),
}, strict=True, coerce=True)
TILES = pa.DataFrameSchema({
    "photo_id": pa.Column(str, pa.Check.str_length(1, 200)),
    "tenant_code": TENANT,
    "row": pa.Column(int, pa.Check.ge(0)),
    "col": pa.Column(int, pa.Check.ge(0)),
    **{c: pa.Column(int, BINARY) for c in CLASSES},
    # 1 when the tile is road surface; imports and corrections without it are all road surface
    PAVEMENT: pa.Column(int, BINARY),
}, strict=True, coerce=True)
SCHEMAS = {"photos": PHOTOS, "tiles": TILES}


def validate(frame: str, df: pd.DataFrame) -> pd.DataFrame:
    """The typed frame, or ValueError naming the column and first bad row (CSV line)."""
    df = df.copy()
    if frame == "tiles":
        df[PAVEMENT] = df[PAVEMENT].replace("", 1).fillna(1) if PAVEMENT in df else 1
    for col in ("lat", "lon"):
        if col in df:
            df[col] = df[col].replace("", None)
    try:
        return SCHEMAS[frame].validate(df, lazy=False)
    except pa.errors.SchemaError as exc:
        col = getattr(exc, "column_name", None) or "?"
        cases = getattr(exc, "failure_cases", None)
        where = ""
        if cases is not None and "index" in cases and len(cases):
            idx = cases["index"].iloc[0]
            where = f", line {int(idx) + 2}" if isinstance(idx, int | float) else ""
        raise ValueError(f"{frame}: column {col!r}{where}: {str(exc).splitlines()[0]}") from None
