"""Person, outcome and oracle frames: schemas, and input checks that name the item.

Errors users can cause (unknown item number, an answer outside the item's scale, a missing
item) are reported in Japanese and English with the item's official number and name and, for
CSV files, the line number (header = line 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from models import csvfile
from models.care_plan.items import (
    DEMENTIA_SCALE,
    ITEM_BY_CODE,
    ITEM_COLUMNS,
    ITEMS,
    KEY_ITEMS,
    LEVELS,
    NAMES_EN,
    OUTCOMES,
    PHYSICAL_SCALE,
)

SERVICES = ("day_service", "day_rehab", "home_help_body", "home_help_life", "home_nursing",
            "home_rehab", "short_stay", "equipment")
PLAN_COLUMNS = tuple(f"plan_{s}" for s in SERVICES)
BASIC_COLUMNS = ("person_id", "tenant_code", "age", "sex", "living_alone", "care_level",
                 "physical_independence", "dementia_independence")
PERSON_COLUMNS = (*BASIC_COLUMNS, *ITEM_COLUMNS)
OUTCOME_COLUMNS = ("person_id", "tenant_code", "outcome", *(f"change_{c}" for c in KEY_ITEMS))
ORACLE_COLUMNS = ("person_id", "tenant_code", "a", "b", "ra", "rb")
CHOICES = {"sex": ("1", "2"), "living_alone": ("0", "1"), "care_level": LEVELS[1:],
           "physical_independence": PHYSICAL_SCALE, "dementia_independence": DEMENTIA_SCALE}
FIELD_JA = {"person_id": "利用者ID", "tenant_code": "自治体コード", "age": "年齢", "sex": "性別",
            "living_alone": "独居", "care_level": "要介護度",
            "physical_independence": "障害高齢者の日常生活自立度",
            "dementia_independence": "認知症高齢者の日常生活自立度"}
AGE_MIN, AGE_MAX = 40, 120  # 第2号被保険者 (40-64) can be certified too

TENANT = pa.Column(str, pa.Check.str_matches(r"^\d{6}$"))
ID = pa.Column(str, pa.Check.str_length(1, 128))
PERSONS = pa.DataFrameSchema(
    {"person_id": pa.Column(str, pa.Check.str_length(1, 128), unique=True), "tenant_code": TENANT,
     "age": pa.Column(int, pa.Check.in_range(AGE_MIN, AGE_MAX)),
     **{c: pa.Column(str, pa.Check.isin(list(v))) for c, v in CHOICES.items()},
     **{i.column: pa.Column(int, pa.Check.in_range(1, i.levels)) for i in ITEMS},
     **{c: pa.Column(int, pa.Check.in_range(0, 30), required=False) for c in PLAN_COLUMNS}},
    strict="filter")
OUTCOMES_SCHEMA = pa.DataFrameSchema(
    {"person_id": ID, "tenant_code": TENANT, "outcome": pa.Column(str, pa.Check.isin(OUTCOMES)),
     **{f"change_{c}": pa.Column(str, pa.Check.isin(["", "improve", "same", "worse"]))
        for c in KEY_ITEMS}}, strict="filter")
ORACLE = pa.DataFrameSchema(
    {"person_id": ID, "tenant_code": TENANT,
     **{k: pa.Column(float) for k in ("a", "b", "ra", "rb")}}, strict="filter")


class SurveyInputError(ValueError):
    """A survey or person file that cannot be used; names the item (JP and EN) and rows."""


def item_name(column: str) -> str:
    """'1-7「歩行」' for 'item_1-7', the field's Japanese name otherwise."""
    code = column.removeprefix("item_")
    if code in ITEM_BY_CODE:
        return f"{code}「{ITEM_BY_CODE[code].name}」"
    return f"{column}（{FIELD_JA.get(column, column)}）"


def item_name_en(column: str) -> str:
    """'1-7 (walking)' for 'item_1-7', the field name otherwise."""
    code = column.removeprefix("item_")
    return f"{code} ({NAMES_EN[code]})" if code in NAMES_EN else code


def _lines(idx: Sequence[int] | np.ndarray, offset: int | None) -> tuple[str, str]:
    """(' 行 2, 5', ' line 2, 5') for CSV rows, empty for a single JSON person."""
    if offset is None or not len(idx):
        return "", ""
    rows = ", ".join(str(int(i) + offset) for i in list(idx)[:5])
    more = len(idx) - 5
    return (f" 行 {rows}" + (f" ほか{more}行" if more > 0 else ""),
            f" line {rows}" + (f" and {more} more" if more > 0 else ""))


def _problem(column: str, idx: np.ndarray, offset: int | None, ja: str, en: str) -> str:
    """One problem in Japanese and English, naming the item (number and name) and lines."""
    where_ja, where_en = _lines(idx, offset)
    return (f"項目 {item_name(column)}{where_ja}: {ja} / "
            f"item {item_name_en(column)}{where_en}: {en}")


def check_persons(frame: pd.DataFrame, row_offset: int | None = 2, with_plan: bool = False,
                  ) -> pd.DataFrame:
    """Typed persons, or SurveyInputError listing every problem by item and line."""
    frame = frame.reset_index(drop=True)
    if "tenant_code" not in frame.columns:
        frame["tenant_code"] = ""
    need = (*PERSON_COLUMNS, *(PLAN_COLUMNS if with_plan else ()))
    problems = [_problem(c, np.array([]), None, "必須項目がありません", "required but missing")
                for c in need if c not in frame.columns]
    unknown = [c for c in frame.columns if c.startswith("item_") and c not in ITEM_COLUMNS]
    problems += [_problem(c, np.array([]), None, "不明な項目番号です",
                          "unknown item number (items are 1-1-1..6-12)") for c in unknown]
    if problems:
        raise SurveyInputError("; ".join(problems[:10]))
    if frame.empty:
        raise SurveyInputError("ファイルに行がありません / the file has a header but no rows")
    out = frame[[c for c in frame.columns if c in need]].copy()
    for col in out.columns:
        out[col] = out[col].astype(str).str.strip()
    problems = _check_values(out, row_offset, with_plan)
    if problems:
        raise SurveyInputError("; ".join(problems[:10]))
    for col in (c for c in out.columns if c in ("age", *ITEM_COLUMNS, *PLAN_COLUMNS)):
        out[col] = out[col].astype(float).astype(int)
    return out[list(need)]


def _check_values(out: pd.DataFrame, offset: int | None, with_plan: bool) -> list[str]:
    problems = []
    for item in ITEMS:
        text = out[item.column]
        num = pd.to_numeric(text, errors="coerce")
        bad = ~num.isin(range(1, item.levels + 1)).to_numpy()
        if bad.any():
            idx = np.flatnonzero(bad)
            got = ", ".join(repr(v) for v in text.iloc[idx[:3]])
            missing = (text.iloc[idx] == "").all()
            problems.append(_problem(
                item.column, idx, offset,
                "回答がありません" if missing
                else f"回答 {got} は選択肢 1〜{item.levels} の範囲外です",
                "answer missing" if missing else
                f"answer {got} is outside its scale 1-{item.levels}"))
    age = pd.to_numeric(out["age"], errors="coerce")
    bad = ~age.between(AGE_MIN, AGE_MAX).to_numpy() | (age % 1 != 0).to_numpy()
    if bad.any():
        problems.append(_problem("age", np.flatnonzero(bad), offset,
                                 f"{AGE_MIN}〜{AGE_MAX}の整数で入力してください",
                                 f"expected a whole number {AGE_MIN}-{AGE_MAX}"))
    for col, allowed in CHOICES.items():
        bad = ~out[col].isin(allowed).to_numpy()
        if bad.any():
            got = ", ".join(repr(v) for v in out[col].iloc[np.flatnonzero(bad)[:3]])
            problems.append(_problem(col, np.flatnonzero(bad), offset,
                                     f"{got} は選択肢にありません（{'／'.join(allowed)}）",
                                     f"{got} is not one of {', '.join(allowed)}"))
    for col in PLAN_COLUMNS if with_plan else ():
        num = pd.to_numeric(out[col], errors="coerce")
        bad = ~num.between(0, 30).to_numpy()
        if bad.any():
            problems.append(_problem(col, np.flatnonzero(bad), offset, "0〜30の整数",
                                     "expected a whole number 0-30"))
    return problems


def person_inputs(person: Mapping[str, Any]) -> tuple[str, np.ndarray]:
    """One person from JSON (items keyed by official number) -> (person_id, the input fields
    (1, len(INPUT_FIELDS)) as features.encode_inputs builds them); SurveyInputError listing
    every problem. Plain Python: a request checks one person in microseconds, not via pandas."""
    items = person.get("items")
    if not isinstance(items, Mapping):
        raise SurveyInputError("items: 74項目の回答を {\"1-1-1\": 1, ...} の形で指定して"
                               "ください / items: expected an object of answers keyed by item "
                               "number")
    problems = [_problem(f"item_{c}", np.array([]), None, "不明な項目番号です",
                         "unknown item number (items are 1-1-1..6-12)")
                for c in items if f"item_{c}" not in ITEM_COLUMNS]
    answers = []
    for item in ITEMS:
        value = _whole(items.get(item.code))
        if value is None or not 1 <= value <= item.levels:
            got = items.get(item.code)
            problems.append(_problem(
                item.column, np.array([]), None,
                "必須項目がありません" if got is None else
                f"回答 {got!r} は選択肢 1〜{item.levels} の範囲外です",
                "required but missing" if got is None else
                f"answer {got!r} is outside its scale 1-{item.levels}"))
        answers.append(value)
    basic = [_basic(person, k, problems) for k in ("age", *CHOICES)]
    if problems:
        raise SurveyInputError("; ".join(problems[:10]))
    return str(person.get("person_id", "-")), np.array([[*basic, *answers]], float)


def _whole(value: Any) -> int | None:
    """An integer from an int or a numeric string ('2', 2, 2.0), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _basic(person: Mapping[str, Any], key: str, problems: list[str]) -> float:
    """A basic field as encode_inputs codes it (age, 1/2, 0/1, index in its scale)."""
    value = person.get(key)
    if key == "age":
        age = _whole(value)
        if age is None or not AGE_MIN <= age <= AGE_MAX:
            problems.append(_problem("age", np.array([]), None,
                                     f"{AGE_MIN}〜{AGE_MAX}の整数で入力してください",
                                     f"expected a whole number {AGE_MIN}-{AGE_MAX}"))
        return float(age or 0)
    allowed = CHOICES[key]
    text = "" if value is None else str(value).strip()
    if text not in allowed:
        problems.append(_problem(key, np.array([]), None,
                                 f"{value!r} は選択肢にありません（{'／'.join(allowed)}）",
                                 f"{value!r} is not one of {', '.join(allowed)}"))
        return 0.0
    if key in ("sex", "living_alone"):
        return float(text)
    scale = LEVELS if key == "care_level" else allowed
    return float(scale.index(text))


def read_persons(raw: bytes, tenant_code: str) -> pd.DataFrame:
    """An uploaded CSV of persons (UTF-8 or cp932): item columns named 'item_1-7' or '1-7'."""
    text = csvfile.decode(raw, "persons", SurveyInputError)
    frame = csvfile.read_csv_text(text, SurveyInputError)
    frame.columns = [c if not _is_item_code(c) else f"item_{c}" for c in frame.columns]
    if "tenant_code" in frame.columns:
        other = np.flatnonzero(frame["tenant_code"].astype(str).str.strip() != tenant_code)
        if len(other):
            raise SurveyInputError(_problem("tenant_code", other, 2,
                                            f"自治体コードは {tenant_code} のみ",
                                            f"must be your municipality code {tenant_code}"))
    frame["tenant_code"] = tenant_code
    return check_persons(frame)


def _is_item_code(column: str) -> bool:
    parts = column.split("-")
    return len(parts) in (2, 3) and all(p.isdigit() for p in parts)


def validate_frame(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A stored frame checked and typed: persons (with their plan), outcomes or oracle."""
    if name == "persons":
        return check_persons(frame, with_plan=True)
    schema = OUTCOMES_SCHEMA if name == "outcomes" else ORACLE
    columns = OUTCOME_COLUMNS if name == "outcomes" else ORACLE_COLUMNS
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SurveyInputError(f"{name}: missing column(s) {', '.join(missing)}")
    typed = frame[list(columns)].copy()
    if name == "oracle":
        typed[["a", "b", "ra", "rb"]] = typed[["a", "b", "ra", "rb"]].astype(float)
    try:
        return schema.validate(typed, lazy=True).reset_index(drop=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.head(3)
        raise SurveyInputError(f"{name}: " + "; ".join(
            f"column '{r.column}' row {r.index}: {r.check} (got {r.failure_case!r})"
            for r in cases.itertuples())) from None
