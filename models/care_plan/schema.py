"""Person, outcome and oracle frames: schemas, and input checks that name the item.

Errors users can cause (unknown item number, an answer outside the item's scale, a missing
item) are reported in Japanese and English with the item's official number and name and, for
CSV files, the line number (header = line 1).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from models import intake
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


def _lines(idx: Sequence[int] | np.ndarray, offset: int | np.ndarray | None,
           ) -> tuple[str, str]:
    """(' 行 2, 5', ' line 2, 5') for CSV rows (offset: position + offset, or each row's Excel
    line number), empty for a single JSON person."""
    if offset is None or not len(idx):
        return "", ""
    nums = (np.asarray(idx, dtype=int) + offset if isinstance(offset, int)
            else np.asarray(offset)[np.asarray(idx, dtype=int)])
    rows = ", ".join(str(int(n)) for n in nums[:5])
    more = len(idx) - 5
    return (f" 行 {rows}" + (f" ほか{more}行" if more > 0 else ""),
            f" line {rows}" + (f" and {more} more" if more > 0 else ""))


def _problem(column: str, idx: np.ndarray, offset: int | np.ndarray | None, ja: str,
             en: str) -> str:
    """One problem in Japanese and English, naming the item (number and name) and lines."""
    where_ja, where_en = _lines(idx, offset)
    return (f"項目 {item_name(column)}{where_ja}: {ja} / "
            f"item {item_name_en(column)}{where_en}: {en}")


def check_persons(frame: pd.DataFrame, row_offset: int | np.ndarray | None = 2,
                  with_plan: bool = False) -> pd.DataFrame:
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


def _check_values(out: pd.DataFrame, offset: int | np.ndarray | None, with_plan: bool,
                  ) -> list[str]:
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
            got = ", ".join(shown(v) for v in out[col].iloc[np.flatnonzero(bad)[:3]])
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
    text = "" if value is None else normalise_choice(key, str(value))
    if text not in allowed:
        problems.append(_problem(key, np.array([]), None,
                                 f"{shown(value)} は選択肢にありません（{'／'.join(allowed)}）",
                                 f"{shown(value)} is not one of {', '.join(allowed)}"))
        return 0.0
    if key in ("sex", "living_alone"):
        return float(text)
    scale = LEVELS if key == "care_level" else allowed
    return float(scale.index(text))


# 要介護状態区分コード (the 2-digit code of 介護保険 受給者台帳 and claims interfaces):
# 01 非該当, 06 事業対象者, 11 経過的要介護, 12 要支援1, 13 要支援2, 21 要介護1 .. 25 要介護5.
# Seen in the 岐阜県 open-data field spec (gifu.ficsc.info, "care_level 要介護度 ...
# 01:非該当 06:事業対象者 11:要支援(経過的要介護) 12:要支援1 13:要支援2 21:要介…", cut
# there; 22-25 continue the table). Only the levels a care plan is made for are mapped
# (01/06/11 stay errors). 自立度 codes are not mapped:
# no public table of them could be checked.
CARE_LEVEL_CODES = {"12": "要支援1", "13": "要支援2", "21": "要介護1", "22": "要介護2",
                    "23": "要介護3", "24": "要介護4", "25": "要介護5"}
CHOICE_ALIASES: dict[str, dict[str, str]] = {
    "sex": {"男": "1", "男性": "1", "女": "2", "女性": "2"},
    "living_alone": {"有": "1", "あり": "1", "はい": "1", "独居": "1", "無": "0", "なし": "0",
                     "いいえ": "0"},
    "care_level": {**CARE_LEVEL_CODES, **{lv.replace("要", ""): lv for lv in LEVELS[1:]},
                   **{lv.replace("要介護", "要介護度"): lv for lv in LEVELS[1:]}},
    # NFKC already turns Ⅱa (U+2161) into IIa; case-folded matching takes IIA, iia, j1 too
    "physical_independence": {v: v for v in PHYSICAL_SCALE},
    "dementia_independence": {v: v for v in DEMENTIA_SCALE},
}
CARE_HEADERS = intake.aliases([
    ("person_id", ("利用者ID", "利用者番号", "被保険者番号", "申請書管理番号", "対象者ID")),
    ("tenant_code", ("自治体コード", "保険者コード", "市区町村コード")),
    ("age", ("年齢",)), ("sex", ("性別",)), ("living_alone", ("独居", "独居の有無")),
    ("care_level", ("要介護度", "要介護状態区分", "要介護状態区分コード", "二次判定結果",
                    "介護度")),
    ("physical_independence", ("障害高齢者の日常生活自立度", "障害高齢者の自立度",
                               "寝たきり度")),
    ("dementia_independence", ("認知症高齢者の日常生活自立度", "認知症高齢者の自立度",
                               "認知症自立度")),
    ("survey_item", ("調査項目", "調査項目番号", "調査項目連番", "項目", "項目番号", "item")),
    ("answer", ("内容", "回答", "調査結果", "選択肢", "value")),
    *((i.column, (i.name, f"{i.code} {i.name}", f"{i.code}{i.name}")) for i in ITEMS),
])
_MANGLED_MD = re.compile(r"^(\d{1,2})月(\d{1,2})日$")  # Excel turned 1-7 into 1月7日
_MANGLED_YMD = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})$")  # 1-1-1 into 2001/1/1
_MONTHS_EN = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def item_code(text: str) -> str | None:
    """The official item number in a header or cell: '1-7', 'item_1-7', '１－７', and what
    Excel makes of them when it opens and saves a CSV: '1月7日' / '7-Jan' (1-7) and '2001/1/1'
    (1-1-1; a date in the year 2001, or for 2-part numbers any year). None if not an item."""
    text = intake.nfkc(text).removeprefix("item_")
    if f"item_{text}" in ITEM_BY_CODE_COLUMNS:
        return text
    match = _MANGLED_MD.match(text)
    if match:
        code = f"{int(match[1])}-{int(match[2])}"
    elif (match := _MANGLED_YMD.match(text)):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
        three = f"{year - 2000}-{month}-{day}"
        code = three if f"item_{three}" in ITEM_BY_CODE_COLUMNS else f"{month}-{day}"
    elif (match := re.match(r"^(\d{1,2})-([a-z]{3})$", text.casefold())) and \
            match[2] in _MONTHS_EN:
        code = f"{_MONTHS_EN.index(match[2]) + 1}-{int(match[1])}"
    else:
        return text if _is_item_code(text) else None
    return code if f"item_{code}" in ITEM_BY_CODE_COLUMNS else None


ITEM_BY_CODE_COLUMNS = frozenset(ITEM_COLUMNS)


def _item_header(header: str) -> str | None:
    code = item_code(header)
    return None if code is None else f"item_{code}"


CARE_LAYOUT = intake.Layout(
    ids=frozenset({"person_id"}),
    numbers=frozenset({"age", "sex", "living_alone", "answer", *ITEM_COLUMNS, *PLAN_COLUMNS}),
    headers=CARE_HEADERS, header_hook=_item_header, values=CHOICE_ALIASES,
    pad={"tenant_code": 6})


def normalise_choice(key: str, value: str) -> str:
    """A basic field's value as the scale writes it: NFKC (要介護１, Ⅱa), codes, aliases."""
    text = intake.nfkc(value)
    aliases = {k.casefold(): v for k, v in CHOICE_ALIASES.get(key, {}).items()}
    return aliases.get(text.casefold(), text)


def shown(value: object) -> str:
    """repr of a rejected value, with the code points of characters that only look like the
    allowed ones (not ASCII, not Japanese), so 'Іa' (Cyrillic І) and 'Ia' differ on screen."""
    text = repr(value)
    odd = [c for c in str(value) if not c.isascii() and not _japanese(c)]
    return text + (f" [{' '.join(f'U+{ord(c):04X}' for c in odd)}]" if odd else "")


def _japanese(char: str) -> bool:
    name = unicodedata.name(char, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "FULLWIDTH", "IDEOGRAPHIC"))


def read_persons(raw: bytes, tenant_code: str, name: str = "") -> pd.DataFrame:
    """An uploaded table of persons (any format models.intake reads): one row per person with
    item columns named 'item_1-7', '1-7', the item's name or Excel's mangling of them, or the
    long layout (one row per person and 調査項目: person, 調査項目, 内容; see `widen`)."""
    table = intake.read_table(raw, CARE_LAYOUT, name=name, rows="persons",
                              error=SurveyInputError)
    frame, lines = table.frame, table.lines
    if "survey_item" in frame.columns and "answer" in frame.columns:
        frame, lines = widen(frame, lines)
    if "tenant_code" in frame.columns:
        other = np.flatnonzero(frame["tenant_code"].astype(str) != tenant_code)
        if len(other):
            raise SurveyInputError(_problem("tenant_code", other, lines,
                                            f"自治体コードは {tenant_code} のみ",
                                            f"must be your municipality code {tenant_code}"))
    frame["tenant_code"] = tenant_code
    return check_persons(frame, row_offset=lines)


def widen(long: pd.DataFrame, lines: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The long layout (one row per person and 調査項目) as one row per person.

    Rows: person_id (申請書管理番号, 被保険者番号, ...), survey_item (調査項目: the official
    number 1-1-1 .. 6-12, Excel's mangling of it, or the item's name; also a basic field's
    name such as 年齢 or 要介護度) and answer (内容). Basic fields may also be columns repeated
    on each row. Returns the wide frame and each person's first Excel line. Errors name the
    line of an unknown 調査項目, the person and line of a 調査項目 given twice with different
    answers, and each person's missing 調査項目.
    """
    if "person_id" not in long.columns:
        raise SurveyInputError("必須項目 person_id（申請書管理番号・利用者ID）の列がありません / "
                               "the long layout needs a person column (person_id, 申請書管理番号)")
    item = long["survey_item"].astype(str)
    column = item.map(lambda t: _item_header(t) or CARE_LAYOUT.canonical(t))
    known = column.isin([*ITEM_COLUMNS, *BASIC_COLUMNS]).to_numpy()
    if not known.all():
        bad = np.flatnonzero(~known)
        got = ", ".join(repr(v) for v in item.iloc[bad[:3]])
        raise SurveyInputError(_problem(
            "survey_item", bad, lines,
            f"調査項目 {got} は 1-1-1〜6-12 の番号か項目名ではありません",
            f"調査項目 {got} is not an item number 1-1-1..6-12 or an item name"))
    cells = pd.DataFrame({"person_id": long["person_id"].astype(str), "column": column,
                          "answer": long["answer"].astype(str), "line": lines})
    twice = cells.duplicated(["person_id", "column"], keep=False) & ~cells.duplicated(
        ["person_id", "column", "answer"], keep=False)
    if twice.any():
        first = cells[twice].iloc[0]
        raise SurveyInputError(_problem(
            str(first["column"]), np.flatnonzero(twice.to_numpy()), lines,
            f"{first['person_id']} の回答が2回あり、異なります",
            f"given twice with different answers for {first['person_id']}"))
    wide = cells.drop_duplicates(["person_id", "column"]).pivot(
        index="person_id", columns="column", values="answer")
    order = pd.unique(cells["person_id"])
    wide = wide.reindex(order)
    extra = [c for c in long.columns if c in BASIC_COLUMNS and c != "person_id"]
    for col in extra:
        firsts = long.assign(_v=long[col].astype(str)).loc[long[col].astype(str) != ""]
        wide[col] = firsts.groupby("person_id", sort=False)["_v"].first().reindex(order)
    first_line = cells.groupby("person_id", sort=False)["line"].first().reindex(order)
    _require_items(wide, first_line.to_numpy())
    wide = wide.fillna("").reset_index()
    wide.columns.name = None
    for col in (c for c in BASIC_COLUMNS if c in wide.columns and c != "person_id"):
        wide[col] = intake.normalise_column(wide[col].astype(str), col, CARE_LAYOUT)
    return wide, first_line.to_numpy()


def _require_items(wide: pd.DataFrame, lines: np.ndarray) -> None:
    """SurveyInputError naming, per person, the 調査項目 the long layout did not give."""
    problems = []
    for col in ITEM_COLUMNS:
        present = wide[col].notna().to_numpy() if col in wide.columns else np.zeros(
            len(wide), bool)
        missing = np.flatnonzero(~present)
        if len(missing):
            who = ", ".join(str(p) for p in wide.index[missing[:3]])
            problems.append(_problem(col, missing, lines, f"調査項目がありません（{who}）",
                                     f"調査項目 missing (for {who})"))
    if problems:
        more = f" ほか{len(problems) - 10}項目 / and {len(problems) - 10} more items" if len(
            problems) > 10 else ""
        raise SurveyInputError("; ".join(problems[:10]) + more)


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
