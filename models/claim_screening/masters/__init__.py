"""The national code masters (基本マスター) of 社会保険診療報酬支払基金 as one compact table set.

支払基金 publishes five masters for anyone who writes claims software: 診療行為 (s), 医薬品 (y),
傷病名 (b), 特定器材 (t) and コメント (c), each a quoted, comma-separated cp932 file without a
header whose column order is fixed by 「基本マスターファイル仕様」 (master kind in column 2).
`build` reads the newest full file of each kind in a folder (the date in the file name, e.g.
s_ALL20250307.csv, b_20250101.txt), keeps the columns claim review needs and writes one parquet
file per kind plus manifest.json (source file, sha256, rows, date) into `table/` next to this
module, so a fresh machine needs no network. `load` reads them back; `master_version` is the
newest source date, and a claim month after it is scored against it with a note.

Column positions (0-based) are those of the 2024 改定 layout (令和6年度), checked against the
published files; where an older layout differs only by trailing columns it reads the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pandas as pd

TABLE_DIR = Path(__file__).resolve().parent / "table"
KINDS = ("s", "y", "b", "t", "c")
KIND_NAMES = {"s": "診療行為マスター", "y": "医薬品マスター", "b": "傷病名マスター",
              "t": "特定器材マスター", "c": "コメントマスター"}
ENCODING = "cp932"

# kind -> {output column: source column index}; every value is kept as text here and typed in
# _typed so that a bad cell names its column instead of failing inside pandas.
LAYOUTS: dict[str, dict[str, int]] = {
    "s": {
        "code": 2, "name": 4, "unit_code": 7, "point_type": 10, "points": 11,
        "inout": 12,                 # 入外適用区分: 0 both, 1 入院のみ, 2 入院外のみ
        "bundled_test": 15,          # 包括対象検査 (検体検査の包括まるめ区分)
        "diagnosis_related": 24,     # 傷病名関連区分
        "real_days": 26, "days_or_count": 27,
        "max_count": 35,             # 上限回数 (0: none in this column)
        "max_count_error": 36,       # 上限回数エラー処理
        "age_rule": 39,              # 通則年齢
        "min_age": 40, "max_age": 41,  # 下限/上限年齢 (00 none; 2-char codes such as AE)
        "test_group": 50,            # 検査等実施判断グループ区分 (併算定 groups of 検査)
        "bundle_reduction": 62,      # 包括逓減区分
        "dental": 83,                # 歯科適用区分
        "section": 84,               # コード表用番号 アルファベット部 (A 基本診療料 .. N 病理)
        "changed": 86, "abolished": 87,
        "chapter": 89, "part": 90, "section_no": 91,
    },
    "y": {
        "code": 2, "name": 4, "unit_code": 7, "unit": 9, "price_type": 10, "price": 11,
        "narcotic": 13,              # 麻薬・毒薬・覚醒剤原料・向精神薬
        "biological": 15, "generic": 16, "dental": 18, "contrast": 19,
        "dosage_form": 27,           # 剤形: 1 内用, 3 その他, 4 注射, 6 外用, 8 歯科用
        "changed": 29, "abolished": 30, "nhi_price_code": 31,
    },
    "b": {
        "code": 2, "successor": 3, "full_name": 5, "name": 7, "management_no": 10,
        "adopted": 11, "exchange_code": 12,
        "icd10_1": 13, "icd10_2": 14, "icd10_1_2013": 15, "icd10_2_2013": 16,
        "standalone_prohibited": 18,  # 単独使用禁止区分
        "not_insurable": 19,          # 保険請求外区分
        "specific_disease": 20,       # 特定疾患等対象区分 (特定疾患療養管理料 etc.)
        "listed": 21, "changed": 22, "abolished": 23,
    },
    "t": {
        "code": 2, "name": 4, "unit_code": 7, "unit": 9, "price_type": 10, "price": 11,
        "age_addition": 13, "min_age": 14, "max_age": 15,
        "device_kind": 21, "cap_price": 22, "cap_points": 23,
        "changed": 27, "abolished": 29,
    },
    "c": {
        "category": 2, "pattern": 3, "serial": 4, "name": 6, "changed": 20, "abolished": 21,
        "code": 22,
    },
}
NUMERIC = {"points", "price", "cap_price", "cap_points", "max_count"}

# 医科電子点数表 (支払基金): the 医科診療行為マスター plus tables that link its codes, published
# as quoted cp932 CSV without a header. Layouts and meanings are those of 支払基金
# 「医科電子点数表の活用手引き 令和６年度版」 §5 (レコード情報表記仕様) and 付表１
# (算定単位コード一覧), read from the copy in github.com/horirinn2000/medical_master
# `doc/medical_practice/tensuhyo_01.pdf` (commit b49b60a3e99e3d9c2ff173d338ddd0d7da233578;
# its `00ファイル一覧表（医科）.pdf` names the files: 03-1 背反 1日につき, 03-2 同一月内,
# 03-3 同時, 03-4 1週間につき). `build` reads those found in the source folder (by name:
# `*算定回数*.csv`, `*背反テーブル[1-4]*.csv`).
#
# 算定回数テーブル (05): 変更区分, 診療行為コード, 省略名称, 算定単位コード, 算定単位名称,
# 算定回数, 特例条件 (0 none, 1 a special condition such as 「開始月から2月以内は計11回」),
# 予備 x5, 新設年月日, 廃止年月日. A code may have several rows (one per unit). Only rows
# without a 特例条件 are applied: the condition is not in a claim frame, so its count is not a
# certain limit (ＰＳＡ 160037510: 患者当り 1 with 特例条件 1, 「3月に1回、3回を限度」).
#
# The 基本マスター's 上限回数 (s column 36) is 「当該診療行為の算定可能な回数」 (マスター
# ファイル仕様説明書 令和6年度版; 0 none) without a unit; the committed table shows it is a
# count per レセプト (a month): 外来リハビリテーション診療料１ (「7日間に1回」) has 5,
# 精神科訪問看護・指導料 (週3日まで) 15, 特定疾患療養管理料 (月2回) 2. Both apply: a code
# takes the tighter month count and the longer span (`Masters.limits`).
#
# A claim frame holds one count per code and month, so a unit becomes what one month can hold
# (`monthly_limit`): a day limit n allows n x 31, a week limit n x 6 (a month touches at most 6
# Sunday-to-Saturday weeks), a 2-week limit n x 3; a limit over N months allows n in the month
# and, where n is 1, no second month within N (縦覧, rules R_FREQ_3M). Units that are no period
# are not applied: 一連 (141: a course of treatment; ＣＴ撮影 一連 1 does not forbid a second
# series in a month), 入院中, 初診時, 手術当り, 単位, 年度 (a fiscal year, not 12 rolling months)
# and the like. Only certain excess is flagged: a day-limited code billed 40 times in a month may
# still be within its limit on the days it was given, which the frame does not hold.
LIMIT_UNITS: dict[str, tuple[str, int, int]] = {  # code -> (name, months spanned, units a month)
    "121": ("日", 1, 31), "131": ("月", 1, 1), "138": ("週", 1, 6), "142": ("２週", 1, 3),
    "143": ("２月", 2, 1), "144": ("３月", 3, 1), "145": ("４月", 4, 1), "146": ("６月", 6, 1),
    "147": ("１２月", 12, 1), "161": ("２年", 24, 1), "148": ("５年", 60, 1),
    "53": ("患者当り", 1200, 1),
}
MONTH_UNIT = "131"
LIMIT_LAYOUT = {"code": 1, "unit_code": 3, "count": 5, "special": 6}  # 0-based
# 背反テーブル (03-1..03-4): 変更区分, 診療行為コード①, 省略名称①, 診療行為コード②, 省略名称②,
# 背反区分 (1 ①を算定する, 2 ②を算定する, 3 何れか一方を算定する), 特例条件, 予備, 新設年月日,
# 廃止年月日. Every relation is listed both ways (表裏). The file number is the scope.
EXCLUSION_LAYOUT = {"code": 1, "other": 3, "keep": 5, "special": 6, "abolished": 9}
EXCLUSION_SCOPES = {"1": "day", "2": "month", "3": "same_time", "4": "week"}
_EXCLUSION_FILE = re.compile(r"背反テーブル([1-4])")


def monthly_limit(unit_code: str, count: int) -> tuple[int, int] | None:
    """(most 回 in one month, months the limit spans for 縦覧) of a limit of `count` per unit
    `unit_code` (LIMIT_UNITS), or None for a unit that is no period (一連, 入院中, 初診時 ...,
    unknown). A count of 0 means no limit."""
    unit = LIMIT_UNITS.get(str(unit_code).lstrip("0"))
    if unit is None or count <= 0:
        return None
    _, span, per_month = unit
    return count * per_month, span if count == 1 else 1


def _table_cells(raw: bytes, name: str, need: int, what: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of a quoted cp932 CSV of the 電子点数表; MasterError names the file
    and line of a row that is not cp932 or has fewer than `need` columns."""
    rows = []
    for no, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cells = [c.strip('"') for c in line.decode(ENCODING).split(",")]
        except UnicodeDecodeError as exc:
            raise MasterError(f"{name} line {no}: not Shift_JIS (cp932) at byte {exc.start}"
                              ) from None
        if len(cells) < need:
            raise MasterError(f"{name} line {no}: {len(cells)} columns, the {what} layout "
                              f"needs at least {need}")
        rows.append((no, cells))
    return rows


def read_limits(raw: bytes, name: str = "limits") -> pd.DataFrame:
    """code, unit_code, count, special (特例条件 '0'/'1') of an 電子点数表 算定回数テーブル
    (LIMIT_LAYOUT); MasterError names a line with too few columns or a count that is not a
    number."""
    out = []
    for no, cells in _table_cells(raw, name, max(LIMIT_LAYOUT.values()) + 1, "算定回数テーブル"):
        code, unit, count, special = (cells[i] for i in LIMIT_LAYOUT.values())
        if not count.isdigit():
            raise MasterError(f"{name} line {no}: column 6 (算定回数) is {count!r}, expected "
                              "a number")
        out.append((code, unit, int(count), special))
    return pd.DataFrame(out, columns=["code", "unit_code", "count", "special"])


def read_exclusions(raw: bytes, name: str = "背反テーブル") -> pd.DataFrame:
    """code, other, keep (背反区分 '1'/'2'/'3'), special (特例条件), abolished of one 背反テーブル
    (EXCLUSION_LAYOUT); MasterError names a line with too few columns or a 背反区分 outside
    1-3."""
    out = []
    for no, cells in _table_cells(raw, name, max(EXCLUSION_LAYOUT.values()) + 1,
                                  "背反テーブル"):
        row = [cells[i] for i in EXCLUSION_LAYOUT.values()]
        if row[2] not in ("1", "2", "3"):
            raise MasterError(f"{name} line {no}: column 6 (背反区分) is {row[2]!r}, expected "
                              "1, 2 or 3")
        out.append(row)
    return pd.DataFrame(out, columns=list(EXCLUSION_LAYOUT))


FILE_DATE = re.compile(r"^(?P<kind>[sybtc])_(?P<all>ALL)?(?P<date>\d{8})(?:_[A-Za-z0-9]+)?"
                       r"\.(?:csv|txt|zip)$", re.IGNORECASE)
# 変更区分 (column 1) of a 差分 (update) record: 1 抹消 removes the code; 3 新規 is a whole record;
# 5 変更 and 9 廃止 carry only the items that changed (empty cells keep the old value).
DELETED = "1"


class MasterError(ValueError):
    """A master file that cannot be read; the message names the file, line and column."""


@dataclass(frozen=True)
class SourceFile:
    """One master file (or a zip holding one) picked for the build."""

    kind: str
    path: Path
    date: str  # YYYY-MM-DD from the file name (支払基金's publication date)
    full: bool  # a whole master (s_ALL…, y_ALL…, every b file) rather than a 差分

    def read(self) -> bytes:
        """The file's bytes; a zip's single member."""
        if self.path.suffix.lower() != ".zip":
            return self.path.read_bytes()
        with zipfile.ZipFile(self.path) as z:
            members = [n for n in z.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise MasterError(f"{self.path.name}: expected one master file in the zip, "
                                  f"found {len(members)}")
            return z.read(members[0])


def _source(path: Path) -> SourceFile | None:
    name = path.name
    if path.suffix.lower() == ".zip":  # 支払基金's zips: s_20240531.zip holds s_ALL20240531.csv
        try:
            with zipfile.ZipFile(path) as z:
                inner = [n for n in z.namelist() if not n.endswith("/")]
        except zipfile.BadZipFile:
            raise MasterError(f"{name}: not a readable zip file") from None
        name = inner[0] if len(inner) == 1 else name
    m = FILE_DATE.match(name) or FILE_DATE.match(path.name)
    if not m:
        return None
    d, kind = m["date"], m["kind"].lower()
    return SourceFile(kind, path, f"{d[:4]}-{d[4:6]}-{d[6:]}", bool(m["all"]) or kind == "b")


def find_sources(folder: Path) -> dict[str, list[SourceFile]]:
    """Per kind, the newest whole master in `folder` and the 差分 files published after it.

    A folder may hold several whole files of a kind (each supersedes the one before) and the
    差分 updates between them; only the newest whole file and later 差分 are read, oldest first.
    Kinds without a whole file are absent from the result.
    """
    found = [src for p in sorted(folder.iterdir()) if p.is_file() and (src := _source(p))]
    out: dict[str, list[SourceFile]] = {}
    for kind in KINDS:
        full = [s for s in found if s.kind == kind and s.full]
        if not full:
            continue
        base = max(full, key=lambda s: s.date)
        diffs = sorted((s for s in found if s.kind == kind and not s.full and s.date > base.date),
                       key=lambda s: s.date)
        out[kind] = [base, *diffs]
    return out


def read_rows(raw: bytes, kind: str, name: str = "master") -> list[list[str]]:
    """Cells of every record of one master file (cp932, quoted CSV without a header).

    Raises MasterError naming the file and line when a row is not cp932 or is of another kind.
    """
    rows = []
    for no, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode(ENCODING)
        except UnicodeDecodeError as exc:
            raise MasterError(f"{name} line {no}: not Shift_JIS (cp932) at byte {exc.start}"
                              ) from None
        cells = [c.strip('"') for c in text.split(",")]  # no commas inside fields in 基本マスター
        got = cells[1] if len(cells) > 1 else ""
        if got.lower() != kind:
            raise MasterError(f"{name} line {no}: column 2 (マスター種別) is {got!r}, "
                              f"expected {kind.upper()!r}")
        rows.append(cells)
    return rows


def _key(kind: str, cells: list[str]) -> tuple[str, ...]:
    # a コメント's identity is 区分 + パターン + 一連番号 (its 9-digit code is not in 差分 rows)
    return tuple(cells[2:5]) if kind == "c" else (cells[2],)


def apply_updates(rows: list[list[str]], updates: list[list[str]], kind: str) -> list[list[str]]:
    """A whole master's rows with one 差分 file applied (see DELETED for the 変更区分 rules)."""
    table = {_key(kind, r): r for r in rows}
    for cells in updates:
        key = _key(kind, cells)
        if cells[0] == DELETED:
            table.pop(key, None)
        elif key not in table or cells[0] == "3":
            table[key] = cells
        else:
            old = table[key]
            table[key] = [new or (old[i] if i < len(old) else "")
                          for i, new in enumerate(cells)] + old[len(cells):]
    return list(table.values())


def read_master(raw: bytes, kind: str, name: str = "master") -> pd.DataFrame:
    """The columns of LAYOUTS[kind] from one whole master file's bytes."""
    return frame_of(read_rows(raw, kind, name), kind, name)


def frame_of(rows: list[list[str]], kind: str, name: str = "master") -> pd.DataFrame:
    """Rows as the typed LAYOUTS[kind] columns; MasterError names a row with too few columns."""
    layout = LAYOUTS[kind]
    need = max(layout.values()) + 1
    for no, cells in enumerate(rows, start=1):
        if len(cells) < need:
            raise MasterError(f"{name} line {no}: {len(cells)} columns, the {KIND_NAMES[kind]} "
                              f"layout needs at least {need}")
    return _typed(pd.DataFrame([[r[i] for i in layout.values()] for r in rows],
                               columns=list(layout)), name)


def _typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    for col in NUMERIC & set(frame.columns):
        values = pd.to_numeric(frame[col].replace("", "0"), errors="coerce")
        bad = values.isna()
        if bad.any():
            raise MasterError(f"{name} line {cast(int, bad.idxmax()) + 1}: column {col!r} is "
                              f"{frame[col][bad].iloc[0]!r}, expected a number")
        frame[col] = values.astype("float64")
    for col in ("min_age", "max_age"):
        if col in frame.columns:
            frame[col + "_years"] = frame[col].map(_age_years).astype("Int16")
    return frame


def _age_years(value: str) -> int | None:
    """Years from a 2-character 年齢 code: '00' none, digits are years; lettered codes (AA..,
    B3.. for days/months after birth) are kept as text in the source column only."""
    return int(value) if value.isdigit() and value != "00" else None


def _build_fee_tables(source: Path, out: Path) -> dict[str, dict]:
    """The 医科電子点数表 tables found in `source`: its 算定回数テーブル (the newest name wins) as
    limits.parquet, its 背反テーブル 1-4 (one file per scope) as exclusions.parquet with a `scope`
    column; manifest entries for those written (stale ones removed)."""
    kinds: dict[str, dict] = {}
    files = sorted(q for q in source.iterdir() if q.suffix.lower() == ".csv")
    (out / "limits.parquet").unlink(missing_ok=True)
    limit_files = [q for q in files if "算定回数" in q.name]
    if limit_files:
        raw = limit_files[-1].read_bytes()
        limits = read_limits(raw, limit_files[-1].name)
        limits.to_parquet(out / "limits.parquet", index=False, compression="zstd")
        kinds["limits"] = {"name": "医科電子点数表 算定回数テーブル", "file": limit_files[-1].name,
                           "sha256": hashlib.sha256(raw).hexdigest(), "rows": len(limits)}
    (out / "exclusions.parquet").unlink(missing_ok=True)
    parts, entries = [], []
    for q in files:
        m = _EXCLUSION_FILE.search(q.name)
        if not m:
            continue
        raw = q.read_bytes()
        table = read_exclusions(raw, q.name).assign(scope=EXCLUSION_SCOPES[m[1]])
        parts.append(table)
        entries.append({"file": q.name, "scope": EXCLUSION_SCOPES[m[1]],
                        "sha256": hashlib.sha256(raw).hexdigest(), "rows": len(table)})
    if parts:
        table = pd.concat(parts, ignore_index=True)
        table.to_parquet(out / "exclusions.parquet", index=False, compression="zstd")
        kinds["exclusions"] = {"name": "医科電子点数表 背反テーブル", "files": entries,
                               "rows": len(table)}
    return kinds


def build(source: Path, out: Path = TABLE_DIR) -> dict:
    """Read the newest whole file of each kind in `source` with the 差分 published after it,
    write <kind>.parquet and manifest.json into `out`.

    Returns the manifest: master_version (newest date applied), per kind the whole file, the
    差分 applied, the date, sha256 of each file and rows, and which kinds were missing.
    """
    sources = find_sources(source)
    if not sources:
        raise MasterError(f"{source}: no master files named like s_ALL20250307.csv, "
                          "s_20240531.zip or b_20250101.txt")
    out.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, dict] = {}
    for kind, (base, *diffs) in sorted(sources.items()):
        raw = base.read()
        rows = read_rows(raw, kind, base.path.name)
        applied = []
        for diff in diffs:
            update = diff.read()
            rows = apply_updates(rows, read_rows(update, kind, diff.path.name), kind)
            applied.append({"file": diff.path.name,
                            "sha256": hashlib.sha256(update).hexdigest()})
        frame = frame_of(rows, kind, base.path.name)
        frame = frame.sort_values(list(frame.columns[:1]), kind="stable").reset_index(drop=True)
        frame.to_parquet(out / f"{kind}.parquet", index=False, compression="zstd")
        kinds[kind] = {"name": KIND_NAMES[kind], "file": base.path.name, "base_date": base.date,
                       "date": diffs[-1].date if diffs else base.date,
                       "sha256": hashlib.sha256(raw).hexdigest(), "updates": applied,
                       "rows": len(frame)}
    for stale in set(KINDS) - set(sources):
        (out / f"{stale}.parquet").unlink(missing_ok=True)
    versions = [k["date"] for k in kinds.values()]
    kinds.update(_build_fee_tables(source, out))
    manifest = {"publisher": "社会保険診療報酬支払基金", "master_version": max(versions),
                "kinds": kinds, "missing": [k for k in KINDS if k not in sources]}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                       encoding="utf-8")
    return manifest


@dataclass
class Masters:
    """The loaded table set; a kind that was not built is an empty frame."""

    manifest: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    _icd: dict[str, str] | None = None

    @property
    def master_version(self) -> str:
        """Newest source date (YYYY-MM-DD) of the masters in use; '' when none are loaded."""
        return str(self.manifest.get("master_version", ""))

    def has(self, kind: str) -> bool:
        """Whether the kind was built (and has rows)."""
        return kind in self.tables and not self.tables[kind].empty

    def icd10_of(self, disease_code: str) -> str | None:
        """ICD-10 category (3 characters, e.g. 'E11') of a 7-digit 傷病名コード, or None.

        Uses ICD-10-1 (2013) and falls back to the older ICD-10-1 column; the product's claim
        frame carries ICD-10 categories, so the 4th character is dropped.
        """
        if self._icd is None:
            b = self.tables.get("b", pd.DataFrame(columns=["code", "icd10_1", "icd10_1_2013"]))
            icd = b["icd10_1_2013"].where(b["icd10_1_2013"] != "", b["icd10_1"]).str[:3]
            self._icd = dict(zip(b["code"], icd, strict=True))
        value = self._icd.get(disease_code)
        return value or None

    def disease_codes(self, names: Mapping[str, str]) -> dict[str, str]:
        """A current 傷病名コード for each ICD-10 category in `names` (category -> Japanese name),
        for writing claims as UKE: the code whose name equals the given name, else one whose
        ICD-10 is the bare category or its unspecified '.9', else the shortest name. Categories
        without a current code are left out."""
        b = self.tables.get("b")
        if b is None or b.empty:
            return {}
        live = b[b["abolished"].isin(["99999999", ""])]
        icd = live["icd10_1_2013"].where(live["icd10_1_2013"] != "", live["icd10_1"])
        out = {}
        for category, name in names.items():
            rows = live[icd.str[:3] == category]
            if rows.empty:
                continue
            own = icd[rows.index]
            rank = pd.DataFrame({"name": rows["name"] == name,
                                 "plain": own.isin([category, category + "9"]),
                                 "short": -rows["name"].str.len()}, index=rows.index)
            best = rank.sort_values(["name", "plain", "short"], ascending=False).index[0]
            out[category] = str(live.at[best, "code"])
        return out

    def limits(self) -> pd.DataFrame:
        """Per code with a count limit: max_per_month and every_months (`monthly_limit`).

        From the s master's 上限回数 (a count per レセプト, i.e. per month) and, where built, the
        算定回数テーブル's rows without a 特例条件 (kind "limits"); a code limited by several
        rows takes the tightest month count and the longest span."""
        parts: list[pd.DataFrame] = []
        s = self.tables.get("s")
        if s is not None and not s.empty:
            parts.append(pd.DataFrame({"code": s["code"], "unit_code": MONTH_UNIT,
                                       "count": s["max_count"].astype(int)}))
        table = self.tables.get("limits")
        if table is not None and not table.empty:
            if "special" in table.columns:  # a table built before 特例条件 was kept has none
                table = table[table["special"].isin(["", "0"])]
            parts.append(table[["code", "unit_code", "count"]])
        rows = [(code, *lim) for part in parts
                for code, unit, n in zip(part["code"], part["unit_code"], part["count"],
                                         strict=True)
                if (lim := monthly_limit(unit, int(n))) is not None]
        out = pd.DataFrame(rows, columns=["code", "max_per_month", "every_months"])
        return out.groupby("code", as_index=False, sort=True).agg(
            max_per_month=("max_per_month", "min"), every_months=("every_months", "max"))

    def exclusions(self, scope: str = "month") -> pd.DataFrame:
        """併算定不可 relations of one scope (EXCLUSION_SCOPES: "month" 同一月内, "day", "week",
        "same_time") from the 背反テーブル, as `banned` (the code that may not be billed with
        `kept`) and `either` (背反区分 3: only one of the two; each pair once, kept < banned).

        Rows with a 特例条件 and abolished relations are left out: the condition is not in a
        claim frame. Empty when no 背反テーブル was built."""
        table = self.tables.get("exclusions")
        cols = ["kept", "banned", "either"]
        if table is None or table.empty:
            return pd.DataFrame(columns=cols)
        t = table[(table["scope"] == scope) & table["special"].isin(["", "0"])
                  & table["abolished"].isin(["", "99999999"])]
        first = t["keep"] == "1"  # ① is billed: ② is the one that may not be
        directed = pd.concat([
            pd.DataFrame({"kept": t.loc[first, "code"], "banned": t.loc[first, "other"]}),
            pd.DataFrame({"kept": t.loc[t["keep"] == "2", "other"],
                          "banned": t.loc[t["keep"] == "2", "code"]})]).assign(either=False)
        both = t[t["keep"] == "3"]
        lo = both[["code", "other"]].min(axis=1)
        hi = both[["code", "other"]].max(axis=1)
        either = pd.DataFrame({"kept": lo, "banned": hi}).assign(either=True)
        out = pd.concat([directed, either], ignore_index=True)
        # a pair listed as directed one way and 3 the other (手引き 4(2)ウ: then both are 3)
        out = out.drop_duplicates(["kept", "banned"]).reset_index(drop=True)
        return out[cols]

    def months_after(self, months: list[str]) -> list[str]:
        """Claim months (YYYY-MM) after the master version: scored against it, with a note."""
        latest = self.master_version[:7]
        return sorted({m for m in months if latest and m > latest})


def load(folder: Path = TABLE_DIR) -> Masters:
    """The built masters in `folder`; an empty set (master_version '') when none were built."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return Masters({"master_version": "", "kinds": {}, "missing": list(KINDS)})
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    tables = {k: pd.read_parquet(folder / f"{k}.parquet") for k in manifest["kinds"]}
    return Masters(manifest, tables)


_cache: dict[Path, Masters] = {}


def shared(folder: Path = TABLE_DIR) -> Masters:
    """`load` once per process (the table is read-only)."""
    if folder not in _cache:
        _cache[folder] = load(folder)
    return _cache[folder]


def in_use() -> Masters:
    """The masters the service and CLI read: $KYODO_CLAIM_MASTERS (a folder written by
    `kyodo claims masters build --out`) or the table committed next to this module."""
    return shared(Path(os.environ.get("KYODO_CLAIM_MASTERS") or TABLE_DIR))


def version_info(months: list[str], masters: Masters | None = None) -> dict:
    """master_version for a response, and a Japanese note when claims are newer than it."""
    masters = masters or in_use()
    info: dict = {"master_version": masters.master_version,
                  "masters_loaded": sorted(masters.tables)}
    after = masters.months_after(months)
    if after:
        info["master_note"] = (f"診療年月 {', '.join(after)} はマスター "
                               f"({masters.master_version}) より新しい月です。最新のマスターで"
                               "点検しています（マスターより新しい月も受け付け、点検対象から"
                               "外していません）")
    return info
