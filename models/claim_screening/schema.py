"""Claims file schema (pandera) and readers for what a municipality exports (UTF-8 or cp932)."""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from models import csvfile, intake
from models.claim_screening import codes as C

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
KNOWN_CODES = (set(C.DIAGNOSIS_BY_CODE) | set(C.PROCEDURE_BY_CODE) | set(C.DRUG_BY_CODE))

# The shape each line kind's code must have; a code of the right shape that the code table lacks
# is scored and flagged (unknown_codes), never rejected. Diagnoses: an ICD-10 code (category
# letter + 2 digits, optional subcategory with or without the dot: E11, E11.9, E119) or a 7-digit
# 傷病名コード (支払基金 傷病名マスター); procedures (診療行為コード) and drugs (医薬品コード):
# 9 digits, as in the 支払基金 masters.
CODE_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "diagnosis": (re.compile(r"^(?:[A-Z][0-9]{2}(?:\.?[0-9A-Z]{1,2})?|[0-9]{7})$"),
                  "an ICD-10 code such as E11 or E11.9, or a 7-digit 傷病名コード"),
    "procedure": (re.compile(r"^[0-9]{9}$"), "a 9-digit 診療行為コード"),
    "drug": (re.compile(r"^[0-9]{9}$"), "a 9-digit 医薬品コード"),
}

CODE_FORMATS_JA = {
    "diagnosis": "傷病名は E11、E11.9 のような ICD-10 コードか7桁の傷病名コード",
    "procedure": "診療行為は9桁の診療行為コード",
    "drug": "医薬品は9桁の医薬品コード",
}

# One row per claim line; header fields repeat on every line of the claim.
CLAIM_LINES = pa.DataFrameSchema(
    {
        "claim_id": pa.Column(str, pa.Check.str_length(1, 64)),
        "tenant_code": pa.Column(str, pa.Check.str_matches(r"^\d{6}$")),
        "patient_id": pa.Column(str, pa.Check.str_length(1, 128)),
        "age": pa.Column(int, pa.Check.in_range(0, 120)),
        "sex": pa.Column(int, pa.Check.isin([1, 2])),
        "service_month": pa.Column(str, pa.Check.str_matches(MONTH)),
        "provider_id": pa.Column(str, pa.Check.str_length(1, 64)),
        "claim_type": pa.Column(str, pa.Check.isin(list(C.CLAIM_TYPES))),
        "total_points": pa.Column(int, pa.Check.ge(0)),
        "insured_until": pa.Column(str, pa.Check.str_matches(r"^$|^\d{4}-(0[1-9]|1[0-2])$")),
        "line_no": pa.Column(int, pa.Check.ge(1)),
        "line_kind": pa.Column(str, pa.Check.isin(list(C.LINE_KINDS))),
        "code": pa.Column(str, pa.Check.str_length(1, 16)),
        "count": pa.Column(int, pa.Check.ge(0)),
        "days": pa.Column(int, pa.Check.ge(0)),
        "points": pa.Column(int, pa.Check.ge(0)),
    },
    checks=[pa.Check(lambda df: ~df.duplicated(["claim_id", "line_no"]),
                     name="unique (claim_id, line_no)")],
    strict="filter",
    coerce=True,
)

# CLAIM_LINES for a frame validate_lines already filtered to its columns (a copy of the
# upload's): pandera then coerces in place instead of copying 16 columns again.
_IN_PLACE = copy.deepcopy(CLAIM_LINES)
_IN_PLACE.strict = False

LABELS = pa.DataFrameSchema(
    {
        "claim_id": pa.Column(str),
        "error_type": pa.Column(str),
        "recoverable_points": pa.Column(int, pa.Check.ge(0)),
    },
    strict="filter",
    coerce=True,
)

TEXT_COLUMNS = ("claim_id", "tenant_code", "patient_id", "service_month", "provider_id",
                "claim_type", "insured_until", "line_kind", "code")


# Uploads go through models.intake: Japanese headers as claim systems label them, 男/女, line
# kinds in Japanese, months in any form (R8.3, 2026年3月, 202603), Excel number habits.
CLAIMS_LAYOUT = intake.Layout(
    ids=frozenset({"claim_id", "patient_id", "provider_id"}),
    numbers=frozenset({"age", "sex", "total_points", "line_no", "count", "days", "points"}),
    months=frozenset({"service_month", "insured_until"}),
    headers=intake.aliases([
        ("claim_id", ("レセプト番号", "レセプトID", "明細書番号")),
        ("tenant_code", ("自治体コード", "市区町村コード")),
        ("patient_id", ("患者ID", "患者番号", "被保険者番号")),
        ("age", ("年齢",)), ("sex", ("性別",)),
        ("service_month", ("診療年月", "サービス提供年月", "診療月")),
        ("provider_id", ("医療機関コード", "医療機関番号", "医療機関ID")),
        ("claim_type", ("レセプト種別", "種別")),
        ("total_points", ("合計点数", "請求点数")),
        ("insured_until", ("資格喪失年月", "資格終了年月")),
        ("line_no", ("行番号", "明細番号")), ("line_kind", ("明細区分", "区分")),
        ("code", ("コード", "診療行為コード")), ("count", ("回数", "数量")),
        ("days", ("日数",)), ("points", ("点数",)),
    ]),
    values={"sex": {"男": "1", "男性": "1", "女": "2", "女性": "2"},
            "line_kind": {"傷病名": "diagnosis", "診療行為": "procedure", "医薬品": "drug"}},
    pad={"tenant_code": 6})


class ClaimsInputError(ValueError):
    """Claims a user sent that cannot be used; the message names the field and row."""


def decode(raw: bytes) -> str:
    """Text of a municipality's CSV: UTF-8 (with or without BOM), else Shift_JIS/cp932."""
    return csvfile.decode(raw, "claim lines", ClaimsInputError)


def read_csv_text(text: str) -> pd.DataFrame:
    """Parse CSV text with every column as string (validation coerces types)."""
    return csvfile.read_csv_text(text, ClaimsInputError)


def _line(idx: Any, row_offset: int | np.ndarray) -> int:
    """The Excel row of 0-based position `idx` (offset, or each row's line numbers)."""
    return int(idx) + row_offset if isinstance(row_offset, int) else int(row_offset[int(idx)])


def _where(idx: Any, row_offset: int | np.ndarray) -> tuple[str, str]:
    """('3行目', 'row 3') for a 0-based position, ('1行目（見出し）', 'header') for none."""
    if pd.isna(idx):
        return "1行目（見出し）", "header"
    row = _line(idx, row_offset)
    return f"{row}行目", f"row {row}"


_CHECK = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)$")


def _reason_ja(column: str, check: str) -> str:
    """What a failed pandera check expected, in Japanese (the English keeps the check name)."""
    if check == "unique (claim_id, line_no)":
        return "レセプト番号（claim_id）と行番号（line_no）の組が重複しています"
    if column == "line_kind":
        return "diagnosis, procedure, drug のいずれか（傷病名、診療行為、医薬品 も可）"
    if column in ("service_month", "insured_until"):
        blank = "または空欄" if column == "insured_until" else ""
        return f"年月{blank}（2026-03、2026/3、2026年3月、R8.3 など）"
    if column == "tenant_code":
        return "6桁の全国地方公共団体コード"
    if column == "sex":
        return "1（男）か 2（女）"
    match = _CHECK.match(check)
    name, args = (match["name"], match["args"]) if match else ("", "")
    if name == "coerce_dtype":
        return "整数を入力してください" if "int" in args else f"{args} の値を入力してください"
    if name == "greater_than_or_equal_to":
        return f"{args}以上の整数"
    if name == "in_range":
        low, _, high = args.partition(", ")
        return f"{low}〜{high}の範囲"
    if name == "str_length":
        low, _, high = args.partition(", ")
        return f"{low}〜{high}文字"
    if name == "isin":
        return f"次のいずれか: {args.strip('[]')}"
    return f"{check} を満たしません"


def _describe(err: pa.errors.SchemaErrors, row_offset: int | np.ndarray, limit: int = 5) -> str:
    """Each problem as 'Japanese / English', naming the column and the Excel row."""
    cases = err.failure_cases
    noise = cases["check"].astype(str).str.startswith("dtype(") | cases["failure_case"].astype(
        str).str.contains("TypeError")
    cases = cases[~noise]
    parts = []
    for _, case in cases.head(limit).iterrows():
        col = case.get("column")
        at_ja, at_en = _where(case.get("index"), row_offset)
        check = str(case.get("check"))
        value = case.get("failure_case")
        ja = _reason_ja(str(col), check)
        if check == "column_in_dataframe":
            parts.append(f"列 '{value}' がありません / missing column '{value}'")
        elif check.startswith("coerce_dtype"):
            parts.append(f"列 '{col}' {at_ja}: {ja}（{value!r}） / column '{col}' {at_en}: "
                         f"expected {check.split('(')[-1].rstrip(')')}, got {value!r}")
        else:
            parts.append(f"列 '{col}' {at_ja}: {ja}（{value!r}） / column '{col}' {at_en}: "
                         f"failed {check} (got {value!r})")
    more = len(cases) - limit
    return "; ".join(parts) + (f"; ほか{more}件 / and {more} more problems" if more > 0 else "")


def validate_lines(frame: pd.DataFrame, row_offset: int | np.ndarray = 2) -> pd.DataFrame:
    """Validated, typed claim lines; raise ClaimsInputError naming columns and rows.

    row_offset converts a 0-based frame index to what the user sees (2 = CSV line numbers),
    or is each row's Excel line number (an intake Table's `lines`).
    """
    if frame.empty:
        raise ClaimsInputError("見出し行だけでデータ行がありません / no claim lines: the file "
                               "has a header but no rows")
    frame = _cast_integers(frame.reset_index(drop=True))
    try:
        out = _IN_PLACE.validate(frame, lazy=True, inplace=True)  # frame is our copy
    except pa.errors.SchemaErrors as exc:
        raise ClaimsInputError(_describe(exc, row_offset)) from None
    _check_code_formats(out, row_offset)
    _check_consistent_headers(out, row_offset)
    return out.reset_index(drop=True)


_DECIMAL = r"^-?[0-9]+$"


def _cast_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each integer column of CLAIM_LINES already int64 where every value is a
    plain decimal (pyarrow's cast in C++, not pandera's per-value Python conversion); any other
    column stays text, so pandera coerces and reports it exactly as before. Ranges are still
    checked by the schema. Only the schema's columns (its strict="filter"), as a shallow copy:
    the caller's frame is not changed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = frame[[c for c in frame.columns if c in CLAIM_LINES.columns]].copy(deep=False)
    for name, column in CLAIM_LINES.columns.items():
        if name not in out.columns or str(column.dtype) != "int64":
            continue
        values = out[name]
        if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
            continue
        arrow = pa.array(values.array)  # the arrow data itself (one chunk)
        if arrow.null_count or not pc.all(pc.match_substring_regex(arrow, _DECIMAL)).as_py():
            continue
        try:
            out[name] = pc.cast(arrow, pa.int64()).to_numpy()
        except pa.ArrowInvalid:  # beyond int64: pandera reports it
            continue
    return out


def code_format_problem(line_kind: str, code: str) -> str | None:
    """Why a code cannot be a code of its line kind (None when its shape is right), in
    Japanese and English. Only the shape is checked: codes missing from the table are scored."""
    fmt = CODE_FORMATS.get(line_kind)
    if fmt is None or fmt[0].match(code):
        return None
    return (f"コードの形式が不正です（{code!r}: {CODE_FORMATS_JA[line_kind]}）; "
            f"malformed {line_kind} code {code!r}: expected {fmt[1]}")


def _check_code_formats(lines: pd.DataFrame, row_offset: int | np.ndarray) -> None:
    """ClaimsInputError naming the first rows whose code has the wrong shape for its kind."""
    bad = np.zeros(len(lines), bool)
    for kind, (pattern, _) in CODE_FORMATS.items():
        of_kind = (lines["line_kind"] == kind).to_numpy()
        bad[of_kind] = ~lines["code"][of_kind].str.match(pattern).to_numpy(bool)
    rows = np.flatnonzero(bad)
    if rows.size == 0:
        return
    parts = [f"列 'code' {_line(i, row_offset)}行目 / column 'code' row {_line(i, row_offset)}: "
             f"{code_format_problem(str(lines['line_kind'].iat[i]), str(lines['code'].iat[i]))}"
             for i in rows[:3]]
    more = (f"; ほか{rows.size - 3}行 / and {rows.size - 3} more rows" if rows.size > 3
            else "")
    raise ClaimsInputError("; ".join(parts) + more)


def _check_consistent_headers(lines: pd.DataFrame, row_offset: int | np.ndarray) -> None:
    """Each claim_id must carry one header (patient, tenant, month, provider, type)."""
    header = ["tenant_code", "patient_id", "service_month", "provider_id", "claim_type",
              "total_points"]
    if _contiguous_and_consistent(lines, header):
        return
    n = lines.groupby("claim_id", sort=False)[header].nunique().max(axis=1)
    bad = n[n > 1]
    if len(bad):
        first = bad.index[0]
        row = _line(lines.index[lines["claim_id"] == first][0], row_offset)
        raise ClaimsInputError(
            f"レセプト番号 '{first}'（{row}行目）の明細行で患者・自治体・診療年月・医療機関・"
            f"種別・合計点数が食い違っています（{len(bad)}件。レセプト番号の重複？） / "
            f"claim_id '{first}' (row {row}) has conflicting header fields across its lines; "
            f"{len(bad)} claim ids are affected (duplicate claim ids?)")


def _contiguous_and_consistent(lines: pd.DataFrame, header: list[str]) -> bool:
    """True when every claim's lines are adjacent and repeat one header: the common case,
    proved with comparisons to the previous row (no grouping). False means "not proved"
    (a claim split across the file, or a conflict): the caller then groups to find out."""
    ids = lines["claim_id"]
    same = (ids == ids.shift()).to_numpy(dtype=bool, na_value=False)
    for col in header:
        values = lines[col]
        changed = (values != values.shift()).to_numpy(dtype=bool, na_value=True)
        if (changed & same).any():
            return False
    return int((~same).sum()) == ids.nunique()


def read_claims(raw: bytes, name: str = "") -> pd.DataFrame:
    """Read (models.intake: CSV/TSV/xlsx, any encoding, aliases) and validate a claims upload."""
    with intake.system_arrow_pool():  # validation too (see its docstring)
        table = intake.read_table(raw, CLAIMS_LAYOUT, name=name, rows="claim lines",
                                  error=ClaimsInputError)
        return validate_lines(table.frame, row_offset=table.lines)
