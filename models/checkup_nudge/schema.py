"""Resident roster, campaign log and oracle schemas (pandera), and the roster reader for uploads.

Rows are reported as the row numbers Excel shows (header = row 1), so staff can find them.
Uploads go through models.intake (encodings, blank rows, NFKC, Excel number habits) with the
alias table ROSTER_HEADERS / ROSTER_VALUES below, so rosters exported by health-management or
KDB-style systems with Japanese headers (年齢, 性別, 地区, 前年度受診, ...) and values
(男/女, 有/無, はい/いいえ) read as the English schema. Eligibility follows the fiscal-year
rule (see `eligible`): residents outside it are left out and reported, not a reason to
reject the file.
Districts are free categories (a tenant's own names): the model encodes them through the
district table learned in training (nudge.json), and an unseen district falls back to the
tenant's rate ("other"), so a new or renamed district is never an error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pandera.pandas as pa

from models import csvfile, intake
from models.checkup_nudge.arms import ARMS

if TYPE_CHECKING:
    from models.checkup_nudge.checkup_xml import CheckupResults

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

# Plain-language reasons for pandera check names: (Japanese, English).
REASONS = {
    "in_range(40, 74)": ("年齢は40〜74歳（特定健診の対象）",
                         "age must be 40–74 (特定健診 covers NHI insured aged 40–74)"),
    "isin([0, 1])": ("0 か 1（有/無、はい/いいえ も可）", "must be 0 or 1"),
    "isin([1, 2])": ("1（男）か 2（女）", "must be 1 (男) or 2 (女)"),
    "field_uniqueness": ("重複しています（IDは一意）", "duplicate value (ids must be unique)"),
    "multiple_fields_uniqueness": ("resident_id と campaign の組が重複しています",
                                   "duplicate (resident_id, campaign) pair"),
    "str_matches('^\\d{6}$')": ("6桁の全国地方公共団体コード",
                                 "must be a 6-digit 全国地方公共団体コード"),
}

# Header aliases of the roster: Japanese names as health-management and KDB-style systems
# export them, and English variants. Compared after NFKC, ignoring case and spaces.
ROSTER_HEADERS: dict[str, str] = intake.aliases([
    ("resident_id", ("住民ID", "住民番号", "宛名番号", "宛名コード", "被保険者番号", "個人ID",
                     "対象者ID", "ID")),
    ("tenant_code", ("自治体コード", "市区町村コード", "市町村コード", "団体コード",
                     "地方公共団体コード")),
    ("age", ("年齢", "満年齢")),
    ("age_fy_end", ("年度末年齢", "年度末時点の年齢", "age at fiscal year end")),
    ("birth_date", ("生年月日", "誕生日", "birthdate", "date of birth", "dob")),
    ("sex", ("性別", "性", "gender")),
    ("district", ("地区", "地区名", "地区コード", "行政区", "校区", "小学校区", "地域")),
    ("attended_y1", ("前年度受診", "前年度受診有無", "昨年度受診", "1年前受診")),
    ("attended_y2", ("前々年度受診", "2年前受診", "2年度前受診")),
    ("attended_y3", ("3年前受診", "3年度前受診")),
    ("bmi", ("体格指数",)),
    ("sbp", ("収縮期血圧", "最高血圧", "血圧(収縮期)", "血圧_収縮期")),
    ("hba1c", ("ヘモグロビンA1c", "HbA1c(NGSP)")),
    ("ldl", ("LDLコレステロール", "LDL-C", "LDL-コレステロール")),
    ("outpatient_visits", ("外来受診回数", "外来回数", "受診回数", "医療機関受診回数")),
    ("has_hypertension", ("高血圧", "高血圧症", "高血圧治療", "服薬(血圧)", "服薬_血圧")),
    ("has_diabetes", ("糖尿病", "糖尿病治療", "服薬(血糖)", "服薬_血糖")),
    ("has_dyslipidemia", ("脂質異常症", "脂質異常症治療", "服薬(脂質)", "服薬_脂質")),
    ("distance_km", ("会場までの距離", "健診会場までの距離", "会場までの距離(km)",
                     "健診会場までの距離(km)", "距離(km)", "距離")),
    ("household_size", ("世帯人数", "世帯員数", "世帯人員")),
    ("questionnaire_type", ("質問票タイプ", "受診勧奨タイプ", "タイプ", "類型")),
    # the join to 特定健診 XML (models/checkup_nudge/checkup_xml.py); hashed, never stored
    ("insurer_number", ("保険者番号",)),
    ("card_symbol", ("記号", "被保険者証記号", "被保険者証等記号", "保険証記号")),
    ("card_number", ("番号", "被保険者証番号", "被保険者証等番号", "保険証番号")),
    ("checkup_key", ("健診キー", "健診結果キー")),
])
YES_NO = {"有": "1", "有り": "1", "あり": "1", "はい": "1", "○": "1", "〇": "1", "受診": "1",
          "yes": "1", "y": "1", "true": "1", "無": "0", "無し": "0", "なし": "0", "いいえ": "0",
          "×": "0", "未受診": "0", "no": "0", "n": "0", "false": "0"}
BINARY_COLUMNS = ("attended_y1", "attended_y2", "attended_y3", "has_hypertension",
                  "has_diabetes", "has_dyslipidemia", "attended")
ROSTER_VALUES: dict[str, dict[str, str]] = {
    "sex": {"男": "1", "男性": "1", "M": "1", "male": "1", "女": "2", "女性": "2", "F": "2",
            "female": "2"},
    **{c: YES_NO for c in BINARY_COLUMNS},
    "questionnaire_type": {"不明": "unknown", "未回答": "unknown"},
}
XML_KEY_COLUMNS = ("insurer_number", "card_symbol", "card_number", "checkup_key")
ROSTER_LAYOUT = intake.Layout(
    ids=frozenset({"resident_id", *XML_KEY_COLUMNS}),
    numbers=frozenset({*INT_COLUMNS, *FLOAT_COLUMNS, "age_fy_end"}),
    dates=frozenset({"birth_date"}),
    headers=ROSTER_HEADERS, values=ROSTER_VALUES, pad={"tenant_code": 6})
# Campaign logs and generic tables: the same rules, no roster aliases.
TABLE_LAYOUT = intake.Layout(ids=frozenset({"resident_id"}),
                             numbers=frozenset({*INT_COLUMNS, *FLOAT_COLUMNS}),
                             values={c: YES_NO for c in BINARY_COLUMNS}, pad={"tenant_code": 6},
                             labels=frozenset({"arm"}))  # the control arm is called "none"

# 特定健康診査及び特定保健指導の実施に関する基準 第1条: those insured on 1 April who reach ages
# 40-75 during the fiscal year, while under 75. So by age at fiscal-year end (年度末年齢) 40-75;
# the model was trained on 40-74, so a 75 (still 74 until the birthday) is scored as 74.
FY_AGE_MIN, FY_AGE_MAX = 40, 75


class RosterInputError(ValueError):
    """A roster, campaign log or oracle file that cannot be used; names the column and rows."""


def decode(raw: bytes, rows: str = "residents") -> str:
    """Text of an uploaded CSV (UTF-8 with or without BOM, cp932, UTF-16)."""
    return csvfile.decode(raw, rows, RosterInputError)


def read_csv_text(text: str) -> pd.DataFrame:
    """Every column as stripped strings (CRLF or LF); validation converts the types."""
    return csvfile.read_csv_text(text, RosterInputError)


def read_table(raw: bytes, rows: str = "rows", name: str = "",
               labels: Sequence[str] = ()) -> intake.Table:
    """A campaign log or any per-person table through the shared intake (no roster aliases).

    `labels` name columns whose values are names never read as missing (an arm called "none").
    """
    layout = TABLE_LAYOUT
    if labels:
        layout = replace(TABLE_LAYOUT, labels=TABLE_LAYOUT.labels | {
            TABLE_LAYOUT.canonical(c) for c in labels})
    return intake.read_table(raw, layout, name=name, rows=rows, error=RosterInputError)


Lines = int | np.ndarray  # an offset (position + offset = row) or each row's Excel row number


def _rows(index: Sequence[int] | np.ndarray, offset: Lines, limit: int = 5) -> tuple[str, str]:
    """('3, 6行目', 'rows 3, 6 (and 2 more)') for 0-based positions."""
    idx = np.asarray(index, dtype=int)
    nums = idx + offset if isinstance(offset, int) else np.asarray(offset)[idx]
    shown = ", ".join(str(int(n)) for n in nums[:limit])
    more = len(idx) - limit
    word = "row" if len(idx) == 1 else "rows"
    return (f"{shown}行目" + (f"（ほか{more}行）" if more > 0 else ""),
            f"{word} {shown}" + (f" (and {more} more)" if more > 0 else ""))


def _problem(column: str, where: tuple[str, str] | None, ja: str, en: str) -> str:
    """One problem in Japanese and English: column (and rows), what was expected."""
    at_ja, at_en = where if where else ("", "")
    return (f"列 '{column}' {at_ja}: {ja} / column '{column}' {at_en}: {en}".replace(" :", ":"))


def _missing(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    missing = [c for c in columns if c not in frame.columns]
    return [f"列 '{c}' がありません / missing column '{c}'" for c in missing]


def parse_numbers(text: pd.Series) -> pd.Series:
    """Floats, NaN for empty cells and non-numbers (an Arrow cast first: 10x faster)."""
    blank = text.where(text != "", None)
    try:
        return blank.astype("float64[pyarrow]").astype(float)
    except (ValueError, TypeError, NotImplementedError):
        return pd.to_numeric(blank, errors="coerce").astype(float)


def _coerce(frame: pd.DataFrame, offset: Lines) -> tuple[pd.DataFrame, list[str]]:
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
            kind_ja = "整数" if col in INT_COLUMNS else "数値"
            idx = np.flatnonzero(bad)
            got = ", ".join(repr(v) for v in text.iloc[idx[:3]])
            problems.append(_problem(col, _rows(idx, offset),
                                     f"{kind_ja}を入力してください（{got}）",
                                     f"expected {kind}, got {got}"))
        out[col] = num
    return out, problems


def _describe(err: pa.errors.SchemaErrors, offset: Lines) -> list[str]:
    cases = err.failure_cases
    cases = cases[~cases["check"].astype(str).str.startswith(("dtype(", "coerce_dtype("))]
    parts = []
    for (col, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        if check == "column_in_dataframe":
            parts.extend(_missing(pd.DataFrame(), list(group["failure_case"])))
            continue
        idx = group["index"].dropna().astype(int).to_numpy()
        ja, en = REASONS.get(str(check), (f"{check} を満たしません", f"failed {check}"))
        got = ", ".join(repr(v) for v in group["failure_case"].head(3))
        where = _rows(idx, offset) if len(idx) else ("1行目（見出し）", "header")
        parts.append(_problem(str(col), where, f"{ja}（{got}）", f"{en} (got {got})"))
    return parts


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, columns: Sequence[str],
             what: str, allow_empty: bool = False, row_offset: Lines = 2) -> pd.DataFrame:
    """Typed frame, or RosterInputError listing every problem by column and rows.

    row_offset maps a 0-based position to the row Excel shows (2: the header is row 1), or
    is each row's Excel row number (an intake Table's `lines`).
    """
    frame = frame.reset_index(drop=True)
    problems = _missing(frame, columns)
    if problems:
        raise RosterInputError(f"{what}: " + "; ".join(problems))
    if frame.empty and not allow_empty:
        raise RosterInputError(f"{what}: 見出し行だけでデータ行がありません / "
                               "the file has a header but no rows")
    typed, problems = _coerce(frame, row_offset)
    if problems:
        raise RosterInputError(f"{what}: " + "; ".join(problems))
    try:
        out = schema.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise RosterInputError(f"{what}: " + "; ".join(_describe(exc, row_offset))) from None
    return out[list(columns)].reset_index(drop=True)


def validate_residents(frame: pd.DataFrame, row_offset: Lines = 2) -> pd.DataFrame:
    """Validated roster; an empty questionnaire_type means unknown."""
    if "questionnaire_type" in frame.columns:
        q = frame["questionnaire_type"].astype(str).str.strip()
        frame = frame.assign(questionnaire_type=q.where(q != "", "unknown"))
    return validate(frame, RESIDENTS, ROSTER_COLUMNS, "residents", row_offset=row_offset)


def validate_campaigns(frame: pd.DataFrame, row_offset: Lines = 2) -> pd.DataFrame:
    """Validated campaign log (one row per resident and campaign, arm and its probability)."""
    return validate(frame, CAMPAIGNS, CAMPAIGN_COLUMNS, "campaigns", row_offset=row_offset)


def validate_oracle(frame: pd.DataFrame, row_offset: int = 2) -> pd.DataFrame:
    """Validated oracle; may be header-only (real data has no ground truth)."""
    return validate(frame, ORACLE, ORACLE_COLUMNS, "oracle", allow_empty=True,
                    row_offset=row_offset)


def fiscal_year(today: dt.date | None = None) -> int:
    """The Japanese fiscal year (April-March) of `today` (default: today in Japan)."""
    today = today or dt.datetime.now(ZoneInfo("Asia/Tokyo")).date()
    return today.year if today.month >= 4 else today.year - 1


def fy_end_age(born: pd.Series, year: int) -> pd.Series:
    """Age at the end of fiscal year `year` (年度末年齢) from ISO birth dates (NaN if none).

    By 年齢計算ニ関スル法律 a year of age is completed the day before the birthday, so someone
    born on 1 April turns a year older on 31 March: the age at 31 March counted that way equals
    the ordinary count on 1 April of the next calendar year (as school years are counted).
    """
    when = pd.to_datetime(born.where(born != "", None), format="%Y-%m-%d", errors="coerce")
    before = (when.dt.month > 4) | ((when.dt.month == 4) & (when.dt.day > 1))
    return (year + 1 - when.dt.year - before.astype(float)).astype(float)


def eligible(frame: pd.DataFrame, lines: np.ndarray, year: int,
             ) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """The roster's residents eligible for 特定健診 in fiscal year `year`, and who was left out.

    The age used, in order: computed from birth_date (生年月日), else age_fy_end (年度末年齢),
    both kept when 40-75 (FY_AGE_MIN..FY_AGE_MAX); else a plain `age` (年齢 at the export
    date, some day in the fiscal year), kept when 39-74: a 39-year-old may turn 40 before 31
    March, a 75-year-old has moved to 後期高齢者医療. Send birth dates for the exact rule.
    Kept ages are clipped to the model's 40-74. Non-numeric ages are left for validation to
    name. Returns (frame, lines, {"count", "rows", "message"}) for those left out.
    """
    if "birth_date" in frame.columns:
        born = frame["birth_date"].astype(str)
        age = fy_end_age(born, year)
        bad = np.flatnonzero(age.isna().to_numpy() & (born != "").to_numpy())
        if len(bad):
            got = ", ".join(repr(v) for v in born.iloc[bad[:3]])
            raise RosterInputError("residents: " + _problem(
                "birth_date", _rows(bad, lines), f"生年月日を日付で入力してください（{got}）",
                f"expected a date (2026-03-01, 2026/3/1, 昭和50年1月1日, S50.1.1), got {got}"))
        # rows without a date: plain age
        low: np.ndarray | int = np.where(age.isna(), AGE_MIN - 1, FY_AGE_MIN)
        high: np.ndarray | int = np.where(age.isna(), AGE_MAX, FY_AGE_MAX)
        if "age" in frame.columns:
            age = age.fillna(parse_numbers(frame["age"].astype(str)))
        basis = f"{year}年度末年齢"
    elif "age_fy_end" in frame.columns:
        age = parse_numbers(frame["age_fy_end"].astype(str))
        low, high, basis = FY_AGE_MIN, FY_AGE_MAX, f"{year}年度末年齢"
    elif "age" in frame.columns:
        age = parse_numbers(frame["age"].astype(str))
        low, high, basis = AGE_MIN - 1, AGE_MAX, "年齢"
    else:
        return frame, lines, {"count": 0, "rows": [], "message": ""}
    value = age.to_numpy()
    outside = ~np.isnan(value) & ((value < low) | (value > high))
    idx = np.flatnonzero(outside)
    ja, en = _rows(idx, lines)
    span = f"{np.min(low)}〜{np.max(high)}"
    report = {"count": len(idx), "rows": [int(n) for n in lines[idx[:100]]],
              "message": (f"{basis}が{span}歳の範囲外の {len(idx)} 人（{ja}）は特定健診の対象外"
                          f"として除きました / {len(idx)} residents outside ages "
                          f"{span.replace('〜', '-')} ({basis}) left out as not eligible: {en}")
              if len(idx) else ""}
    if outside.any():
        frame, lines, age = (frame[~outside].reset_index(drop=True), lines[~outside],
                             age[~outside].reset_index(drop=True))
    clipped = age.clip(AGE_MIN, AGE_MAX)
    given = parse_numbers(frame["age"].astype(str)) if "age" in frame.columns else None
    changed = clipped.notna().to_numpy().copy()
    if given is not None:  # rewrite only the ages that changed (most rows keep their text)
        changed &= ~(clipped == given).to_numpy()
    if changed.any():
        ages = frame["age"].astype(object) if "age" in frame.columns else pd.Series(
            "", index=frame.index, dtype=object)
        ages[changed] = np.array([f"{a:g}" for a in clipped[changed]], dtype=object)
        frame["age"] = ages.astype(str)
    return frame, lines, report


def read_roster(raw: bytes, tenant_code: str | None = None, *, year: int | None = None,
                name: str = "", results: CheckupResults | None = None) -> pd.DataFrame:
    """Read, check and validate an uploaded roster (any format models.intake reads).

    With `tenant_code`, a roster without the tenant_code column gets it, and rows naming
    another tenant are rejected. Residents outside the 特定健診 ages of fiscal year `year`
    (default: the current one) are left out (see `eligible`); `attrs["excluded"]` says who,
    `attrs["lines"]` holds each kept row's Excel row number. With `results` (特定健診 XML,
    models/checkup_nudge/checkup_xml.py) bmi/sbp/hba1c/ldl are filled from the XML of the same
    person (joined by the pseudonymised card key); `attrs["checkup_xml"]` reports the merge.
    """
    table = intake.read_table(raw, ROSTER_LAYOUT, name=name, rows="residents",
                              error=RosterInputError)
    frame, lines = table.frame, table.lines
    if tenant_code is not None:
        if "tenant_code" not in frame.columns:
            frame["tenant_code"] = tenant_code
        other = np.flatnonzero(frame["tenant_code"].astype(str) != tenant_code)
        if len(other):
            raise RosterInputError("residents: " + _problem(
                "tenant_code", _rows(other, lines), f"自治体コードは {tenant_code} のみです",
                f"must be your municipality code {tenant_code}"))
    if frame.empty:
        raise RosterInputError("residents: 見出し行だけでデータ行がありません / "
                               "the file has a header but no rows")
    merged = None
    if results is not None:
        from models.checkup_nudge.checkup_xml import merge

        tenants = frame["tenant_code"].astype(str) if "tenant_code" in frame.columns else (
            tenant_code or "")
        frame, merged = merge(frame, results, tenants)
    out = check_roster(frame, lines, year)
    if merged is not None:
        out.attrs["checkup_xml"] = merged
    return out


def check_roster(frame: pd.DataFrame, lines: np.ndarray, year: int | None = None,
                 ) -> pd.DataFrame:
    """The fiscal-year rule (`eligible`), then validation: the one path every roster takes,
    file uploads and JSON bodies alike. `lines` numbers the rows in messages (Excel rows for
    files, 0-based positions for JSON). RosterInputError when no one is eligible or a value is
    invalid; `attrs["excluded"]` and `attrs["lines"]` as in `read_roster`."""
    frame, lines, excluded = eligible(frame.reset_index(drop=True), np.asarray(lines),
                                      year if year is not None else fiscal_year())
    if frame.empty:
        raise RosterInputError(f"residents: 対象年齢の住民がいません / no eligible residents: "
                               f"{excluded['message']}")
    out = validate_residents(frame, row_offset=lines)
    out.attrs["lines"], out.attrs["excluded"] = lines, excluded
    return out


# ---- the fast path for small JSON rosters (serving's single-resident /score) ----
# check_roster costs ~30 ms for one resident (a DataFrame, Arrow casts, pandera); a resident
# whose values are already of their type and inside RESIDENTS' checks comes out of it unchanged,
# so for such rows the checks below (read from RESIDENTS itself, not restated) give the same
# typed columns. Anything else (text for a number, a value out of range, an age the fiscal-year
# rule would clip or exclude, birth dates, a duplicate id) goes through check_roster, which
# gives the same result or names the problem: the fast path never decides an error.
_FAST_AGE_KEYS = ("birth_date", "age_fy_end")  # other age bases: the fiscal-year rule applies


def _between(lo: Any, hi: Any, measure: Callable[[Any], Any]) -> Callable[[Any], bool]:
    return lambda v: bool(lo <= measure(v) <= hi)


def _matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: pattern.match(v) is not None


def _column_check(column: pa.Column) -> Callable[[Any], bool]:
    """A predicate on one Python value implementing `column`'s checks (KeyError for a check
    kind this fast path does not know: RESIDENTS then needs a matching case here)."""
    tests: list[Callable[[Any], bool]] = []
    for check in column.checks:
        s = check.statistics
        if check.name == "in_range" and s["include_min"] and s["include_max"]:
            tests.append(_between(s["min_value"], s["max_value"], lambda v: v))
        elif check.name == "isin":
            tests.append(frozenset(s["allowed_values"]).__contains__)
        elif check.name == "str_length" and s["exact_value"] is None:
            tests.append(_between(s["min_value"], s["max_value"], len))
        elif check.name == "str_matches":
            tests.append(_matches(re.compile(s["pattern"])))
        else:
            raise KeyError(f"fast roster path: no case for check {check.name} {s}")
    return lambda v: all(t(v) for t in tests)


def _kind(column: pa.Column) -> str:
    kind = str(column.dtype)
    return "int" if kind.startswith("int") else "float" if kind.startswith("float") else "str"


# name -> (kind, nullable, predicate)
FAST_COLUMNS: dict[str, tuple[str, bool, Callable[[Any], bool]]] = {
    name: (_kind(col), col.nullable, _column_check(col))
    for name, col in RESIDENTS.columns.items()}
_NUMPY = {"int": np.int64, "float": np.float64, "str": object}


def _plain_text(v: Any) -> bool:
    """A string no strip (Python's or Arrow's) would change."""
    return isinstance(v, str) and (not v or all(
        c.isprintable() and not c.isspace() for c in (v[0], v[-1])))


def _plain_value(v: Any, kind: str, nullable: bool) -> Any:
    """The value as check_roster would type it, or _NOT_PLAIN."""
    if kind == "str":
        return v if _plain_text(v) else _NOT_PLAIN
    if v is None and nullable:
        return np.nan
    if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
        return _NOT_PLAIN
    if kind == "int":
        return int(v) if float(v).is_integer() else _NOT_PLAIN
    return float(v)


_NOT_PLAIN = object()


def plain_roster(rows: Sequence[dict[str, Any]], tenant_code: str,
                 ) -> dict[str, np.ndarray] | None:
    """check_roster's columns (ROSTER_COLUMNS, typed) for JSON residents that it would pass
    unchanged, keeping everyone; None when any row needs check_roster itself (then call it).

    A row qualifies when it has every roster column but tenant_code (which comes from
    `tenant_code`), no birth_date/age_fy_end, numbers as JSON numbers (None only for the
    optional results), strings without surrounding spaces, every value inside RESIDENTS'
    checks, an age of 40-74 and a resident_id not seen before; an empty questionnaire_type
    reads as unknown, as in validate_residents.
    """
    wanted = [c for c in ROSTER_COLUMNS if c != "tenant_code"]
    out: dict[str, list[Any]] = {c: [] for c in wanted}
    for row in rows:
        if "tenant_code" in row or any(k in row for k in _FAST_AGE_KEYS):
            return None
        for name in wanted:
            if name not in row:
                return None
            kind, nullable, ok = FAST_COLUMNS[name]
            v = row[name]
            if name == "questionnaire_type" and v == "":
                v = "unknown"
            v = _plain_value(v, kind, nullable)
            if v is _NOT_PLAIN or not (v != v or ok(v)):  # NaN: an optional result left empty
                return None
            out[name].append(v)
    if len(set(out["resident_id"])) != len(rows) or not FAST_COLUMNS["tenant_code"][2](
            tenant_code):
        return None
    columns = {name: np.array(out[name], dtype=_NUMPY[FAST_COLUMNS[name][0]]) for name in wanted}
    columns["tenant_code"] = np.array([tenant_code] * len(rows), dtype=object)
    return {name: columns[name] for name in ROSTER_COLUMNS}
