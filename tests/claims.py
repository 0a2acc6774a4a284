"""Tiny hand-written claims for unit tests."""

from __future__ import annotations

import pandas as pd

from models.claim_screening.codes import DRUG_BY_CODE, PROCEDURE_BY_CODE
from models.claim_screening.generate import LINE_COLUMNS


def claim(claim_id: str, lines: list[tuple], *, patient: str = "p1", age: int = 60, sex: int = 1,
          month: str = "2026-01", provider: str = "C1", ctype: str = "医科入院外",
          until: str = "", tenant: str = "402303") -> list[tuple]:
    """Rows of one claim; lines are (kind, code, count, days). Points follow the code table."""
    rows = []
    pts = [_points(kind, code, count, days) for kind, code, count, days in lines]
    for no, ((kind, code, count, days), p) in enumerate(zip(lines, pts, strict=True), start=1):
        rows.append((claim_id, tenant, patient, age, sex, month, provider, ctype, sum(pts), until,
                     no, kind, code, count, days, p))
    return rows


def frame(*claims: list[tuple]) -> pd.DataFrame:
    """Concatenate claims into the flat line table."""
    return pd.DataFrame([r for c in claims for r in c], columns=LINE_COLUMNS)


UNLISTED_POINTS = 50  # per count (procedures) or per day (drugs) for codes outside the table


def _points(kind: str, code: str, count: int, days: int) -> int:
    if code not in PROCEDURE_BY_CODE and code not in DRUG_BY_CODE and kind != "diagnosis":
        return UNLISTED_POINTS * count * (days if kind == "drug" else 1)
    if kind == "procedure":
        return count * PROCEDURE_BY_CODE[code].points
    if kind == "drug":
        return round(DRUG_BY_CODE[code].points_per_day * count * days)
    return 0


CLEAN = [("diagnosis", "E11", 0, 0), ("procedure", "112007410", 1, 0),
         ("procedure", "160010010", 1, 0), ("drug", "622421201", 2, 28)]
