"""Resident roster, campaign log and oracle schemas (pandera), and the roster reader for uploads.

Rows are reported as CSV line numbers (header = line 1), so staff can find them in Excel.
Districts are free categories (a tenant's own names): the model encodes them through the
district table learned in training (nudge.json), and an unseen district falls back to the
tenant's rate ("other"), so a new or renamed district is never an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa

from models import csvfile
from models.checkup_nudge.arms import ARMS

QUESTIONNAIRE_TYPES: tuple[str, ...] = ("頑張り屋", "心配性", "面倒くさがり", "甘えん坊",
                                        "unknown")
AGE_MIN, AGE_MAX = 40, 74  # 特定健診 covers NHI insured aged 40-74

# attended_y1 is last fiscal year, y2 the year before, y3 three years ago.
ROSTER_COLUMNS: tuple[str, ...] = (
    "resident_id", "tenant_code", "age", "sex", "district", "attended_y1", "attended_y2",
    "attended_y3", "bmi", "sbp", "hba1c", "ldl", "outpatient_visits", "has_hypertension",
    "has_diabetes", "has_dyslipidemia", "distance_km", "household_size", "questionnaire_type")
CAMPAIGN_COLUMNS: tuple[str, ...] = ("resident_id", "tenant_code", "campaign", "arm",
                                     "assignment_prob", "attended")
ORACLE_COLUMNS: tuple[str, ...] = ("resident_id", "tenant_code", "campaign",
                                   *(f"p_{a}" for a in ARMS))

INT_COLUMNS = ("age", "sex", "attended_y1", "attended_y2", "attended_y3", "outpatient_visits",
               "has_hypertension", "has_diabetes", "has_dyslipidemia", "household_size",
               "attended")
RESULT_COLUMNS = ("bmi", "sbp", "hba1c", "ldl")  # empty when the resident did not attend
FLOAT_COLUMNS = (*RESULT_COLUMNS, "distance_km", "assignment_prob",
                 *(f"p_{a}" for a in ARMS))
OPTIONAL_COLUMNS = RESULT_COLUMNS

BINARY = pa.Check.isin([0, 1])
TENANT = pa.Column(str, pa.Check.str_matches(r"^\d{6}$"))
ID = pa.Column(str, pa.Check.str_length(1, 128))

RESIDENTS = pa.DataFrameSchema(
    {
        "resident_id": pa.Column(str, pa.Check.str_length(1, 128), unique=True),
        "tenant_code": TENANT,
        "age": pa.Column(int, pa.Check.in_range(AGE_MIN, AGE_MAX)),
        "sex": pa.Column(int, pa.Check.isin([1, 2])),
        "district": pa.Column(str, pa.Check.str_length(1, 64)),
        "attended_y1": pa.Column(int, BINARY),
        "attended_y2": pa.Column(int, BINARY),
        "attended_y3": pa.Column(int, BINARY),
        "bmi": pa.Column(float, pa.Check.in_range(10, 80), nullable=True),
        "sbp": pa.Column(float, pa.Check.in_range(60, 280), nullable=True),
        "hba1c": pa.Column(float, pa.Check.in_range(3, 20), nullable=True),
        "ldl": pa.Column(float, pa.Check.in_range(10, 600), nullable=True),
        "outpatient_visits": pa.Column(int, pa.Check.in_range(0, 400)),
        "has_hypertension": pa.Column(int, BINARY),
        "has_diabetes": pa.Column(int, BINARY),
        "has_dyslipidemia": pa.Column(int, BINARY),
        "distance_km": pa.Column(float, pa.Check.in_range(0, 300)),
        "household_size": pa.Column(int, pa.Check.in_range(1, 20)),
        "questionnaire_type": pa.Column(str, pa.Check.isin(list(QUESTIONNAIRE_TYPES))),
    },
    strict="filter",
    coerce=True,
)

CAMPAIGNS = pa.DataFrameSchema(
    {
        "resident_id": ID,
        "tenant_code": TENANT,
        "campaign": pa.Column(str, pa.Check.str_length(1, 64)),
        "arm": pa.Column(str, pa.Check.isin(list(ARMS))),
        "assignment_prob": pa.Column(float, pa.Check.in_range(0, 1, include_min=False)),
        "attended": pa.Column(int, BINARY),
    },
    unique=["resident_id", "campaign"],
    strict="filter",
    coerce=True,
)

ORACLE = pa.DataFrameSchema(
    {
        "resident_id": ID,
        "tenant_code": TENANT,
        "campaign": pa.Column(str, pa.Check.str_length(1, 64)),
        **{f"p_{a}": pa.Column(float, pa.Check.in_range(0, 1)) for a in ARMS},
    },
    unique=["resident_id", "campaign"],
    strict="filter",
    coerce=True,
)

# Plain-language reasons for pandera check names.
REASONS = {
    "in_range(40, 74)": "age must be 40–74 (特定健診 covers NHI insured aged 40–74)",
    "isin([0, 1])": "must be 0 or 1",
    "isin([1, 2])": "must be 1 (男) or 2 (女)",
    "field_uniqueness": "duplicate value (ids must be unique)",
    "multiple_fields_uniqueness": "duplicate (resident_id, campaign) pair",
    "str_matches('^\\d{6}$')": "must be a 6-digit 全国地方公共団体コード",
}


class RosterInputError(ValueError):
    """A roster, campaign log or oracle file that cannot be used; names the column and rows."""


def decode(raw: bytes, rows: str = "residents") -> str:
    """Text of an uploaded CSV (UTF-8 with or without BOM, or cp932)."""
    return csvfile.decode(raw, rows, RosterInputError)


def read_csv_text(text: str) -> pd.DataFrame:
    """Every column as stripped strings (CRLF or LF); validation converts the types."""
    return csvfile.read_csv_text(text, RosterInputError)


def _rows(index: Sequence[int] | np.ndarray, offset: int, limit: int = 5) -> str:
    rows = [int(i) + offset for i in list(index)[:limit]]
    more = len(index) - limit
    word = "row" if len(index) == 1 else "rows"
    return f"{word} {', '.join(map(str, rows))}" + (f" (and {more} more)" if more > 0 else "")


def _missing(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    missing = [c for c in columns if c not in frame.columns]
    return [f"missing column '{c}'" for c in missing]


def parse_numbers(text: pd.Series) -> pd.Series:
    """Floats, NaN for empty cells and non-numbers (an Arrow cast first: 10x faster)."""
    blank = text.where(text != "", None)
    try:
        return blank.astype("float64[pyarrow]").astype(float)
    except (ValueError, TypeError, NotImplementedError):
        return pd.to_numeric(blank, errors="coerce").astype(float)


def _coerce(frame: pd.DataFrame, offset: int) -> tuple[pd.DataFrame, list[str]]:
    """Numbers parsed column by column; problems name the column and the offending rows."""
    out, problems = frame.copy(), []
    numeric = (*INT_COLUMNS, *FLOAT_COLUMNS)
    for col in [c for c in frame.columns if c not in numeric]:
        out[col] = frame[col].astype(str).str.strip()  # Excel exports pad cells with spaces
    for col in [c for c in numeric if c in frame.columns]:
        if pd.api.types.is_numeric_dtype(frame[col]):  # already typed (generated frames)
            text, num = frame[col].astype(str), frame[col].astype(float)
            empty = num.isna().to_numpy()
        else:
            text = frame[col].astype(str).str.strip()
            num = parse_numbers(text)
            empty = (text == "").to_numpy()
        bad = num.isna().to_numpy() & ~empty
        if col not in OPTIONAL_COLUMNS:
            bad |= empty
        if col in INT_COLUMNS:
            bad |= (num.to_numpy() % 1 != 0) & ~np.isnan(num.to_numpy())
        if bad.any():
            kind = "an integer" if col in INT_COLUMNS else "a number"
            idx = np.flatnonzero(bad)
            got = ", ".join(repr(v) for v in text.iloc[idx[:3]])
            problems.append(f"column '{col}' {_rows(idx, offset)}: expected {kind}, got {got}")
        out[col] = num
    return out, problems


def _describe(err: pa.errors.SchemaErrors, offset: int) -> list[str]:
    cases = err.failure_cases
    cases = cases[~cases["check"].astype(str).str.startswith(("dtype(", "coerce_dtype("))]
    parts = []
    for (col, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        if check == "column_in_dataframe":
            parts.extend(f"missing column '{v}'" for v in group["failure_case"])
            continue
        idx = group["index"].dropna().astype(int).to_numpy()
        reason = REASONS.get(str(check), f"failed {check}")
        got = ", ".join(repr(v) for v in group["failure_case"].head(3))
        where = _rows(idx, offset) if len(idx) else "header"
        parts.append(f"column '{col}' {where}: {reason} (got {got})")
    return parts


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, columns: Sequence[str],
             what: str, allow_empty: bool = False, row_offset: int = 2) -> pd.DataFrame:
    """Typed frame, or RosterInputError listing every problem by column and rows.

    row_offset maps a 0-based position to a CSV line number (2: the header is line 1).
    """
    frame = frame.reset_index(drop=True)
    problems = _missing(frame, columns)
    if problems:
        raise RosterInputError(f"{what}: " + "; ".join(problems))
    if frame.empty and not allow_empty:
        raise RosterInputError(f"{what}: the file has a header but no rows")
    typed, problems = _coerce(frame, row_offset)
    if problems:
        raise RosterInputError(f"{what}: " + "; ".join(problems))
    try:
        out = schema.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise RosterInputError(f"{what}: " + "; ".join(_describe(exc, row_offset))) from None
    return out[list(columns)].reset_index(drop=True)


def validate_residents(frame: pd.DataFrame, row_offset: int = 2) -> pd.DataFrame:
    """Validated roster; an empty questionnaire_type means unknown."""
    if "questionnaire_type" in frame.columns:
        q = frame["questionnaire_type"].astype(str).str.strip()
        frame = frame.assign(questionnaire_type=q.where(q != "", "unknown"))
    return validate(frame, RESIDENTS, ROSTER_COLUMNS, "residents", row_offset=row_offset)


def validate_campaigns(frame: pd.DataFrame, row_offset: int = 2) -> pd.DataFrame:
    """Validated campaign log (one row per resident and campaign, arm and its probability)."""
    return validate(frame, CAMPAIGNS, CAMPAIGN_COLUMNS, "campaigns", row_offset=row_offset)


def validate_oracle(frame: pd.DataFrame, row_offset: int = 2) -> pd.DataFrame:
    """Validated oracle; may be header-only (real data has no ground truth)."""
    return validate(frame, ORACLE, ORACLE_COLUMNS, "oracle", allow_empty=True,
                    row_offset=row_offset)


def read_roster(raw: bytes, tenant_code: str | None = None) -> pd.DataFrame:
    """Decode, parse and validate an uploaded roster (UTF-8 with/without BOM or cp932).

    With `tenant_code`, a roster without the tenant_code column gets it, and rows naming
    another tenant are rejected.
    """
    frame = read_csv_text(decode(raw))
    if tenant_code is not None:
        if "tenant_code" not in frame.columns:
            frame["tenant_code"] = tenant_code
        other = np.flatnonzero(frame["tenant_code"].astype(str).str.strip() != tenant_code)
        if len(other):
            raise RosterInputError(f"residents: column 'tenant_code' {_rows(other, 2)}: "
                                   f"must be your municipality code {tenant_code}")
    return validate_residents(frame)
