"""レセ電 (UKE) files: read 医科 claims into the product's claim-line frame, and write them.

Layout: 支払基金「レセプト電算処理システム 電子レセプトの作成手引き／記録条件仕様（医科用）」.
A file is cp932 text, one record a line (CRLF), fields separated by commas without quoting,
ended by EOF (0x1A). The first field names the record: IR (医療機関, once, first), then per claim
RE (レセプト共通) followed by HO/KO (保険者/公費), SY (傷病名), SI (診療行為), IY (医薬品), TO
(特定器材), CO (コメント) ...; GO (合計) closes the file. Dates are 和暦, a 元号 digit (1 明治 ..
5 令和) + YYMM (5 digits) or YYMMDD (7 digits), or 西暦 YYYYMM / YYYYMMDD (6 / 8 digits), which
the 記録条件仕様 uses from 令和6年6月診療分; both are read. A SI/IY line's 点数 is per 回 (per day
for a drug) and is recorded on the last line of a 剤; the line's points are 点数 × 回数.

Mapping onto the claim frame (models/claim_screening/generate.LINE_COLUMNS):
claim_id = 医療機関コード(10 digits: 都道府県 + 点数表 + 7) - 請求年月 - レセプト番号;
patient_id = HO 被保険者証の記号・番号 (else KO 受給者番号, else カルテ番号等); age = full
years on the first day of 診療年月; provider_id = the 10-digit 医療機関コード; total_points =
HO 合計点数 (else KO, else the sum of lines); SY → diagnosis (ICD-10 category from the 傷病名
マスター; the 7-digit 傷病名コード when the master has none); SI → procedure (count = 回数);
IY → drug (count = 使用量 rounded to whole units, days = 回数). insured_until is empty: UKE
does not carry eligibility. TO/CO and other known records carry nothing the frame holds; they
and unknown record types are counted, never fatal. 歯科 files (IR 点数表 3, レセプト種別 3xxx) are
read too: HS (傷病名部位: 傷病名コード in field 5) → diagnosis, SS (歯科診療行為: 点数 and 回数 in
fields 77 and 78, after 35 加算 pairs) → procedure.

調剤 (保険薬局) files have their own layout, 「記録条件仕様（調剤用）」 (支払基金 jiki_t01.pdf /
国保中央会 R02bt1_4_kiroku_chozai.pdf): the first record is YK (薬局情報, 点数表 4), not IR, and a
claim is RE (レセプト種別 4xxx, 調剤年月 in field 4), HO/KO (処方箋受付回数 in field 5), then per
処方 an SH (処方基本: 剤形, 単位薬剤料) followed by CZ (調剤情報: 調剤数量, the 調剤料 code and
点数, 薬剤料, 10 加算料 code/点数 pairs) and the IY (医薬品: code, 使用量 — no 点数 or 回数, unlike
医科) of that 剤. Field positions are those of the specification as transcribed field by field
in github.com/sosuke-hirayama/uke-parser `uke_parser_chozai.rb` (commit ff553ce), with the record
set of github.com/HealthDataWorks/fhir-ig-jp-rezept-medication (input/pagecontent, commit
6175e85); see DISPENSING_FIELDS. How 調剤 maps onto the claim frame is in `_DispensingReader`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.claim_screening.generate import LINE_COLUMNS
from models.claim_screening.masters import Masters
from models.claim_screening.schema import ClaimsInputError, validate_lines

EOF = b"\x1a"
# 元号 code -> (first day, year offset: western year = offset + YY)
GENGO = {"1": (dt.date(1868, 1, 25), 1867), "2": (dt.date(1912, 7, 30), 1911),
         "3": (dt.date(1926, 12, 25), 1925), "4": (dt.date(1989, 1, 8), 1988),
         "5": (dt.date(2019, 5, 1), 2018)}
# record -> field names by position; a record needs at least the fields the reader uses
FIELDS: dict[str, tuple[str, ...]] = {
    "IR": ("レコード識別情報", "審査支払機関", "都道府県", "点数表", "医療機関コード", "予備",
           "医療機関名称", "請求年月", "マルチボリューム識別情報", "電話番号"),
    "RE": ("レコード識別情報", "レセプト番号", "レセプト種別", "診療年月", "氏名", "男女区分",
           "生年月日", "給付割合", "入院年月日", "病棟区分", "一部負担金区分", "レセプト特記事項",
           "病床数", "カルテ番号等"),
    "HO": ("レコード識別情報", "保険者番号", "被保険者証等の記号", "被保険者証等の番号",
           "診療実日数", "合計点数"),
    "KO": ("レコード識別情報", "公費負担者番号", "公費受給者番号", "任意給付区分", "診療実日数",
           "合計点数"),
    "SY": ("レコード識別情報", "傷病名コード", "診療開始日", "転帰区分", "修飾語コード",
           "傷病名称", "主傷病", "補足コメント"),
    "SI": ("レコード識別情報", "診療識別", "負担区分", "診療行為コード", "数量データ", "点数",
           "回数"),
    "IY": ("レコード識別情報", "診療識別", "負担区分", "医薬品コード", "使用量", "点数", "回数"),
    "GO": ("レコード識別情報", "総件数", "総合計点数", "マルチボリューム識別情報"),
    "HS": ("レコード識別情報", "診療開始日", "転帰区分", "歯式コード", "傷病名コード",
           "修飾語コード", "傷病名称"),
    "SS": ("レコード識別情報", "診療識別", "負担区分", "診療行為コード", "数量データ1",
           "数量データ2", *(f"加算{k}{i}" for i in range(1, 36) for k in ("コード", "数量")),
           "点数", "回数"),
}
MIN_FIELDS = {"IR": 8, "RE": 7, "HO": 6, "KO": 6, "SY": 2, "SI": 7, "IY": 7, "GO": 3, "HS": 5,
              "SS": 78}
SS_POINTS, SS_TIMES = 76, 77  # 0-based: after 診療行為コード, 2 数量 and 35 加算コード/数量 pairs
TABLES = {"1": "医科", "3": "歯科"}  # IR 点数表
DISPENSING_TABLE = "4"  # YK 点数表 of a 保険薬局
TABLE_NAMES = {**TABLES, DISPENSING_TABLE: "調剤"}

# 記録条件仕様（調剤用）: record -> field names by position (0-based, the record id first), as
# transcribed in sosuke-hirayama/uke-parser uke_parser_chozai.rb (commit ff553ce) from 支払基金's
# jiki_t01.pdf. RE fields 10-35 (処方医療機関, 保険医氏名 x20, 麻薬免許番号, 調剤録番号等) are not
# read; CZ continues after the 10 加算料 with 一包化日数 and 分割調剤 fields, not read either.
_CZ_ADDITIONS = tuple(f"{k}（加算料{i}）" for i in range(1, 11)
                      for k in ("負担区分", "コード", "点数"))
DISPENSING_FIELDS: dict[str, tuple[str, ...]] = {
    "YK": ("レコード識別情報", "審査支払機関", "都道府県", "点数表", "薬局コード",
           "薬局連絡先名称", "請求年月", "マルチボリューム識別情報", "電話番号"),
    "RE": ("レコード識別情報", "レセプト番号", "レセプト種別", "調剤年月", "氏名", "男女区分",
           "生年月日", "給付割合", "レセプト特記事項"),
    "HO": ("レコード識別情報", "保険者番号", "被保険者証等の記号", "被保険者証等の番号",
           "処方箋受付回数", "合計点数"),
    "KO": ("レコード識別情報", "公費負担者番号", "公費受給者番号", "任意給付区分",
           "処方箋受付回数", "合計点数"),
    "SH": ("レコード識別情報", "No", "剤形コード", "用法コード", "特別指示", "単位薬剤料",
           "単位薬剤料（第一公費）", "単位薬剤料（第二公費）", "単位薬剤料（第三公費）",
           "単位薬剤料（第四公費）"),
    "CZ": ("レコード識別情報", "医師番号", "処方月日", "調剤月日", "処方箋受付回", "調剤数量",
           "負担区分（調剤料）", "算定区分（調剤料）", "算定先No（調剤料）", "コード（調剤料）",
           "点数（調剤料）", "分割区分", "前回までの数量", "点数（薬剤料）", "予備",
           *_CZ_ADDITIONS, "一包化日数"),
    "IY": ("レコード識別情報", "負担区分", "医薬品コード", "使用量", "予備", "予備",
           "混合区分コード", "混合区分枝", "配合不適区分", "1回用量"),
    "GO": ("レコード識別情報", "総件数", "総合計点数", "マルチボリューム識別情報"),
}
DISPENSING_MIN_FIELDS = {"YK": 7, "RE": 7, "HO": 6, "KO": 6, "SH": 2, "CZ": 6, "IY": 4, "GO": 3}
CZ_FEE_CODE, CZ_FEE_POINTS, CZ_DRUG_POINTS, CZ_ADDITION = 9, 10, 13, 15  # 0-based positions
CZ_SLOTS = 11  # one 調剤料 and 10 加算料 (code, 点数) per CZ record
# records of a 調剤 file that carry nothing the claim frame holds (skipped and counted, like any
# other record type the reader has no handler for): TO 特定器材, CO/TK コメント・摘要, KI
# 基本料・薬学管理料 (its field layout is not in the transcription cited above), ST 分割技術料,
# SN 資格確認, JD 受診日等, MF 窓口負担額.
UNCODED_DIAGNOSIS = "0000999"  # 未コード化傷病名: the name is written in 傷病名称


class UkeError(ClaimsInputError):
    """A UKE file that cannot be read; names the file, line and field."""

    def __init__(self, file: str, line: int, what: str, field_name: str | None = None) -> None:
        where = f"{file} line {line}" + (f", {field_name}" if field_name else "")
        super().__init__(f"{where}: {what}")
        self.file, self.line, self.field = file, line, field_name


@dataclass
class UkeResult:
    """Claim lines read from UKE files, with what was skipped and why."""

    lines: pd.DataFrame
    claims: int
    skipped_records: Counter = field(default_factory=Counter)  # record type -> count
    unmapped_diagnoses: int = 0  # SY codes the 傷病名マスター could not map to ICD-10
    fractional_quantities: int = 0  # IY 使用量 rounded to whole units

    def notes(self) -> list[str]:
        """Staff-facing notes (Japanese) on what the import could not carry."""
        out = []
        if self.skipped_records:
            kinds = ", ".join(f"{k} {v}件" for k, v in sorted(self.skipped_records.items()))
            out.append(f"取り込んでいないレコード: {kinds}")
        if self.unmapped_diagnoses:
            out.append(f"ICD-10 に対応づけられない傷病名: {self.unmapped_diagnoses}件 "
                       "(傷病名コードのまま)")
        if self.fractional_quantities:
            out.append(f"使用量を整数に丸めた医薬品: {self.fractional_quantities}件")
        return out

    def summary(self, files: list[str]) -> dict:
        """What a response or the CLI reports about the import."""
        return {"format": "uke", "files": files, "claims": self.claims,
                "skipped_records": dict(self.skipped_records),
                "unmapped_diagnoses": self.unmapped_diagnoses, "notes": self.notes()}


def looks_like_uke(raw: bytes) -> bool:
    """Whether bytes are a レセ電 file: it starts with an IR (医科・歯科) or YK (調剤) record."""
    head = raw.lstrip(b"\xef\xbb\xbf \r\n\t")[:3]
    return head in (b"IR,", b"YK,")


def parse_month(value: str) -> str:
    """A UKE year-month as YYYY-MM: 和暦 '50703' (元号 + YYMM: 令和7年3月) or 西暦 '202503'
    (the layout since 令和6年6月診療分); ValueError naming the expected forms otherwise."""
    if len(value) == 6 and value.isdigit():
        year, month = int(value[:4]), int(value[4:])
    elif len(value) == 5 and value.isdigit() and value[0] in GENGO:
        year, month = GENGO[value[0]][1] + int(value[1:3]), int(value[3:5])
    else:
        raise ValueError(f"{value!r} is neither 元号 + YYMM (5 digits, e.g. 50703) nor YYYYMM "
                         "(6 digits, e.g. 202503)")
    if not 1 <= month <= 12:
        raise ValueError(f"{value!r}: month {month} is not 01-12")
    return f"{year:04d}-{month:02d}"


def parse_date(value: str) -> dt.date:
    """A UKE date: 和暦 '3500412' (元号 + YYMMDD: 昭和50年4月12日) or 西暦 '19750412'."""
    if len(value) == 8 and value.isdigit():
        parts = int(value[:4]), int(value[4:6]), int(value[6:])
    elif len(value) == 7 and value.isdigit() and value[0] in GENGO:
        parts = GENGO[value[0]][1] + int(value[1:3]), int(value[3:5]), int(value[5:7])
    else:
        raise ValueError(f"{value!r} is neither 元号 + YYMMDD (7 digits, e.g. 3500412) nor "
                         "YYYYMMDD (8 digits)")
    try:
        return dt.date(*parts)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None


def to_wareki(day: dt.date, digits: int = 7) -> str:
    """date -> 元号 + YYMMDD (digits=7) or 元号 + YYMM (digits=5)."""
    code = max((c for c, (start, _) in GENGO.items() if day >= start), default="1")
    text = f"{code}{day.year - GENGO[code][1]:02d}{day.month:02d}{day.day:02d}"
    return text[:digits]


def _uke_date(day: dt.date, month_only: bool, wareki: bool) -> str:
    if wareki:
        return to_wareki(day, 5 if month_only else 7)
    return day.strftime("%Y%m" if month_only else "%Y%m%d")


def _age(birth: dt.date, month: str) -> int:
    """Full years on the first day of the service month."""
    y, m = int(month[:4]), int(month[5:7])
    return y - birth.year - ((m, 1) < (birth.month, birth.day))


def _claim_type(receipt_type: str, table: str) -> str | None:
    """医科入院 / 医科入院外 / 歯科 / 調剤 from a 4-digit レセプト種別 (1st digit 1 医科, 3 歯科,
    4 調剤; 4th digit odd: 入院) that matches the file's 点数表; None otherwise."""
    if len(receipt_type) != 4 or not receipt_type.isdigit() or receipt_type[0] != table:
        return None
    if table in ("3", DISPENSING_TABLE):
        return TABLE_NAMES[table]
    return "医科入院" if int(receipt_type[3]) % 2 else "医科入院外"


@dataclass
class _Claim:
    claim_id: str
    patient: str
    age: int
    sex: int
    month: str
    claim_type: str
    chart: str
    total: int | None = None
    lines: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # lines of a 剤 awaiting its 回数


class _Reader:
    """One 医科 or 歯科 file's records -> claims; every error names the file, line and field."""

    fields: dict[str, tuple[str, ...]] = FIELDS
    min_fields: dict[str, int] = MIN_FIELDS
    header = "IR"

    def __init__(self, name: str, tenant: str, masters: Masters | None) -> None:
        self.name, self.tenant, self.masters = name, tenant, masters
        self.provider = self.billed = ""
        self.claims: list[_Claim] = []
        self.skipped: Counter = Counter()
        self.unmapped = self.fractional = 0
        self.ended = False
        self.receipt_nos: set[int] = set()

    def fail(self, no: int, rec: str, pos: int | None, what: str) -> UkeError:
        if pos is None:
            return UkeError(self.name, no, what)
        names = self.fields.get(rec, ())
        label = names[pos] if pos < len(names) else "?"
        return UkeError(self.name, no, what, f"{rec} field {pos + 1} ({label})")

    def need(self, no: int, rec: str, cells: list[str]) -> None:
        want = self.min_fields[rec]
        if len(cells) < want:
            names = self.fields[rec]
            raise self.fail(no, rec, len(cells), f"{rec} record has {len(cells)} fields, "
                            f"expected at least {want} (up to {names[want - 1]})")

    def number(self, no: int, rec: str, cells: list[str], pos: int, default: int | None = None,
               ) -> int:
        value = cells[pos] if pos < len(cells) else ""
        if value == "" and default is not None:
            return default
        if not value.isdigit():
            raise self.fail(no, rec, pos, f"expected digits, got {value!r}")
        return int(value)

    def record(self, no: int, cells: list[str]) -> None:
        rec = cells[0]
        if self.ended:
            raise self.fail(no, rec, None, f"{rec} record after GO (the file's last record)")
        handler = getattr(self, f"_{rec.lower()}", None) if rec in self.fields else None
        if handler is None:
            if not self.provider:
                raise self.fail(no, rec, 0, f"the first record must be {self.header}, got "
                                f"{rec!r}")
            self.skipped[rec if rec.isalnum() else "?"] += 1
            return
        if rec != self.header and not self.provider:
            raise self.fail(no, rec, 0, f"the first record must be {self.header}, got {rec!r}")
        self.need(no, rec, cells)
        handler(no, cells)

    def current(self, no: int, rec: str) -> _Claim:
        if not self.claims:
            raise self.fail(no, rec, 0, f"{rec} record before any RE (レセプト共通) record")
        return self.claims[-1]

    def _ir(self, no: int, cells: list[str]) -> None:
        if self.provider:
            raise self.fail(no, "IR", 0, "a second IR record (one file holds one 医療機関)")
        if cells[3] == DISPENSING_TABLE:
            raise self.fail(no, "IR", 3, "点数表 4 (調剤) belongs in a YK (薬局情報) record: a "
                            "調剤 file starts with YK, not IR")
        if cells[3] not in TABLES:
            raise self.fail(no, "IR", 3, f"expected 1 (医科) or 3 (歯科), got {cells[3]!r}")
        self._provider_header(no, cells, "IR", month_pos=7)

    def _provider_header(self, no: int, cells: list[str], record: str, month_pos: int) -> None:
        """The IR / YK fields both layouts share: 都道府県 (2 digits) and 医療機関・薬局コード
        (7 digits) at 2 and 4 make the provider id with the 点数表 at 3; 請求年月 at `month_pos`.

        Raises:
            UkeError: wrong digits or an unreadable 請求年月, naming line and field.
        """
        for pos, size in ((2, 2), (4, 7)):
            if len(cells[pos]) != size or not cells[pos].isdigit():
                raise self.fail(no, record, pos, f"expected {size} digits, got {cells[pos]!r}")
        try:
            self.billed = parse_month(cells[month_pos]).replace("-", "")
        except ValueError as exc:
            raise self.fail(no, record, month_pos, str(exc)) from None
        self.provider = cells[2] + cells[3] + cells[4]

    def _re(self, no: int, cells: list[str]) -> None:
        table = self.provider[2]
        claim_type = _claim_type(cells[2], table)
        if claim_type is None:
            raise self.fail(no, "RE", 2, f"expected a {TABLE_NAMES[table]} レセプト種別 (4 "
                            f"digits, {table}xxx) as the {self.header} 点数表 says, got "
                            f"{cells[2]!r}")
        try:
            month = parse_month(cells[3])
        except ValueError as exc:
            raise self.fail(no, "RE", 3, str(exc)) from None
        if cells[5] not in ("1", "2"):
            raise self.fail(no, "RE", 5, f"expected 1 (男) or 2 (女), got {cells[5]!r}")
        try:
            age = _age(parse_date(cells[6]), month)
        except ValueError as exc:
            raise self.fail(no, "RE", 6, str(exc)) from None
        if not 0 <= age <= 120:
            raise self.fail(no, "RE", 6, f"age {age} on {month} is outside 0-120")
        receipt_no = self.number(no, "RE", cells, 1)
        if receipt_no in self.receipt_nos:
            raise self.fail(no, "RE", 1, f"レセプト番号 {receipt_no} appears twice in the file")
        self.receipt_nos.add(receipt_no)
        chart = cells[13] if len(cells) > 13 else ""
        self.claims.append(_Claim(f"{self.provider}-{self.billed}-{receipt_no:06d}", "", age,
                                  int(cells[5]), month, claim_type, chart))

    def _ho(self, no: int, cells: list[str]) -> None:
        claim = self.current(no, "HO")
        mark, number = cells[2].strip(), cells[3].strip()
        if not number:
            raise self.fail(no, "HO", 3, "empty (the patient's 被保険者証等の番号 is needed)")
        claim.patient = f"{mark}・{number}" if mark else number
        claim.total = self.number(no, "HO", cells, 5)

    def _ko(self, no: int, cells: list[str]) -> None:
        claim = self.current(no, "KO")
        if not claim.patient and cells[2].strip():
            claim.patient = f"{cells[1]}-{cells[2].strip()}"
        if claim.total is None:
            claim.total = self.number(no, "KO", cells, 5)

    def _sy(self, no: int, cells: list[str], rec: str = "SY", pos: int = 1) -> None:
        claim = self.current(no, rec)
        code = cells[pos].strip()
        if len(code) != 7 or not code.isdigit():
            raise self.fail(no, rec, pos, f"expected a 7-digit 傷病名コード, got {code!r}")
        icd = self.masters.icd10_of(code) if self.masters is not None else None
        if icd is None:
            self.unmapped += 1
        claim.lines.append(("diagnosis", icd or code, 0, 0, 0))

    def _hs(self, no: int, cells: list[str]) -> None:
        self._sy(no, cells, "HS", 4)

    def _si(self, no: int, cells: list[str], rec: str = "SI", at: tuple[int, int] = (5, 6),
            ) -> None:
        claim = self.current(no, rec)
        code = self._code(no, rec, cells)
        count = self._times(no, rec, cells, claim, at[1])
        points = self.number(no, rec, cells, at[0], default=0)
        claim.lines.append(("procedure", code, count, 0, points * count))

    def _ss(self, no: int, cells: list[str]) -> None:
        self._si(no, cells, "SS", (SS_POINTS, SS_TIMES))

    def _iy(self, no: int, cells: list[str]) -> None:
        claim = self.current(no, "IY")
        code = self._code(no, "IY", cells)
        try:
            qty = float(cells[4]) if cells[4] else 0.0
        except ValueError:
            raise self.fail(no, "IY", 4, f"expected a quantity, got {cells[4]!r}") from None
        if qty != int(qty):
            self.fractional += 1
        days = self._times(no, "IY", cells, claim)
        points = self.number(no, "IY", cells, 5, default=0)
        claim.lines.append(("drug", code, max(int(qty + 0.5), 0), days, points * days))

    def _times(self, no: int, rec: str, cells: list[str], claim: _Claim, pos: int = 6) -> int:
        """回数 of a SI/IY line. A 剤 of several lines may record 回数 only on its last line
        (with the 点数); the earlier lines take it from there (count, or days for a drug)."""
        if len(cells) <= pos or cells[pos] == "":
            claim.pending.append(len(claim.lines))
            return 1
        times = self.number(no, rec, cells, pos)
        for i in claim.pending:
            kind, code, count, days, points = claim.lines[i]
            claim.lines[i] = (kind, code, times, days, points) if kind == "procedure" \
                else (kind, code, count, times, points)
        claim.pending.clear()
        return times

    def _code(self, no: int, rec: str, cells: list[str]) -> str:
        code = cells[3]
        if len(code) != 9 or not code.isdigit():
            raise self.fail(no, rec, 3, f"expected a 9-digit code, got {code!r}")
        return code

    def _go(self, no: int, cells: list[str]) -> None:
        self.number(no, "GO", cells, 1)
        self.ended = True

    def rows(self) -> Iterable[tuple]:
        for c in self.claims:
            total = c.total if c.total is not None else sum(ln[4] for ln in c.lines)
            patient = c.patient or c.chart or c.claim_id
            for no, (kind, code, count, days, points) in enumerate(c.lines, start=1):
                yield (c.claim_id, self.tenant, patient, c.age, c.sex, c.month, self.provider,
                       c.claim_type, total, "", no, kind, code, count, days, points)



class _DispensingReader(_Reader):
    """One 調剤 file's records -> claims (layout: DISPENSING_FIELDS).

    Mapping onto the claim frame: provider_id = 都道府県 + 点数表 4 + 薬局コード (10 digits);
    claim_type 調剤; patient, age, sex, total_points as for 医科 (HO/KO, RE 生年月日 on the 1st of
    the 調剤年月). Each CZ (one dispensing of the 処方 its SH opened) gives
    - a procedure line (count 1) for its 調剤料 code (薬剤調製料 since 令和4年) and one for each
      加算料 code, with the 点数 recorded next to it (a blank code slot is skipped);
    - a drug line for each IY that follows it: count = 使用量 (rounded to whole units, as for
      医科), days = the CZ's 調剤数量. The 記録条件仕様 records 薬剤料 per 剤, not per drug
      (CZ 点数（薬剤料）, else SH 単位薬剤料 x 調剤数量); a 剤 of several drugs shares it in
      proportion to 薬価 x 使用量 from the 医薬品マスター (equal shares where a price is
      missing), largest remainders getting the odd points, so a claim's drug points add up to
      its 薬剤料.
    IY records between an SH and its first CZ belong to that CZ. 調剤 claims carry no 傷病名.
    """

    fields = DISPENSING_FIELDS
    min_fields = DISPENSING_MIN_FIELDS
    header = "YK"

    def __init__(self, name: str, tenant: str, masters: Masters | None) -> None:
        super().__init__(name, tenant, masters)
        self.rx: list[str] | None = None  # the open SH's cells
        self.group: tuple[int, int] | None = None  # the open CZ: (調剤数量, 薬剤料 or -1)
        self.drugs: list[tuple[int, float]] = []  # the open 剤's drug lines: (index, 使用量)
        self.prices = _drug_prices(masters)

    def _yk(self, no: int, cells: list[str]) -> None:
        if self.provider:
            raise self.fail(no, "YK", 0, "a second YK record (one file holds one 保険薬局)")
        if cells[3] != DISPENSING_TABLE:
            raise self.fail(no, "YK", 3, f"expected 4 (調剤), got {cells[3]!r}")
        self._provider_header(no, cells, "YK", month_pos=6)

    def _re(self, no: int, cells: list[str]) -> None:
        self.close()
        self.rx = None
        super()._re(no, cells)

    def _go(self, no: int, cells: list[str]) -> None:
        self.close()
        super()._go(no, cells)

    def _sh(self, no: int, cells: list[str]) -> None:
        self.current(no, "SH")
        self.close()
        self.number(no, "SH", cells, 5, default=0)  # 単位薬剤料: digits or empty
        self.rx = cells

    def _cz(self, no: int, cells: list[str]) -> None:
        claim = self.current(no, "CZ")
        if self.rx is None:
            raise self.fail(no, "CZ", 0, "CZ record before any SH (処方基本) record of its claim")
        waiting = self.drugs if self.group is None else []  # IY between SH and this CZ
        self.close()
        self.drugs = waiting
        days = self.number(no, "CZ", cells, 5)
        drug_points = self.number(no, "CZ", cells, CZ_DRUG_POINTS, default=-1)
        self.group = (days, drug_points)
        for code_at in (CZ_FEE_CODE, *range(CZ_ADDITION + 1, CZ_ADDITION + 30, 3)):
            code = cells[code_at] if code_at < len(cells) else ""
            if code == "":
                continue
            if len(code) != 9 or not code.isdigit():
                raise self.fail(no, "CZ", code_at, f"expected a 9-digit code, got {code!r}")
            points = self.number(no, "CZ", cells, code_at + 1, default=0)
            claim.lines.append(("procedure", code, 1, 0, points))
        for i, _ in self.drugs:  # earlier IY of this 剤 take its 調剤数量
            kind, code, count, _, pts = claim.lines[i]
            claim.lines[i] = (kind, code, count, days, pts)

    def _iy(self, no: int, cells: list[str]) -> None:
        claim = self.current(no, "IY")
        if self.rx is None:
            raise self.fail(no, "IY", 0, "IY record before any SH (処方基本) record of its claim")
        code = cells[2]
        if len(code) != 9 or not code.isdigit():
            raise self.fail(no, "IY", 2, f"expected a 9-digit code, got {code!r}")
        try:
            qty = float(cells[3]) if cells[3] else 0.0
        except ValueError:
            raise self.fail(no, "IY", 3, f"expected a quantity, got {cells[3]!r}") from None
        if qty != int(qty):
            self.fractional += 1
        days = self.group[0] if self.group is not None else 0
        self.drugs.append((len(claim.lines), qty))
        claim.lines.append(("drug", code, max(int(qty + 0.5), 0), days, 0))

    def close(self) -> None:
        """Share the open 剤's 薬剤料 among its drug lines (see the class docstring)."""
        if self.group is None or not self.drugs:
            self.group, self.drugs = None, []
            return
        days, total = self.group
        if total < 0:  # no 点数（薬剤料）: 単位薬剤料 x 調剤数量
            unit = self.rx[5] if self.rx is not None and len(self.rx) > 5 else ""
            total = int(unit or 0) * days
        claim = self.claims[-1]
        weights = [self.prices.get(claim.lines[i][1], 0.0) * qty for i, qty in self.drugs]
        if not all(w > 0 for w in weights):
            weights = [1.0] * len(self.drugs)
        for (i, _), pts in zip(self.drugs, _shares(total, weights), strict=True):
            kind, code, count, d, _ = claim.lines[i]
            claim.lines[i] = (kind, code, count, d, pts)
        self.group, self.drugs = None, []


def _shares(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights` in whole points (largest remainders)."""
    raw = [total * w / sum(weights) for w in weights]
    out = [int(v) for v in raw]
    for i in sorted(range(len(raw)), key=lambda k: out[k] - raw[k])[: total - sum(out)]:
        out[i] += 1
    return out


def _drug_prices(masters: Masters | None) -> dict[str, float]:
    """医薬品コード -> 薬価 (yen per unit) of the y master in use; empty without one."""
    tables = getattr(masters, "tables", None)
    y = tables.get("y") if isinstance(tables, dict) else None
    if y is None or y.empty:
        return {}
    return dict(zip(y["code"], y["price"].astype(float), strict=True))


def _decode_lines(raw: bytes, name: str,
                  fields: Mapping[str, tuple[str, ...]] = FIELDS) -> list[str]:
    """Text lines of a cp932 UKE file; a UTF-8 or undecodable line is an error naming it."""
    body = raw.rstrip(b"\r\n ")
    if body.endswith(EOF):
        body = body[:-1]
    out = []
    for no, line in enumerate(body.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if line.isascii():
            out.append(line.decode("ascii"))
            continue
        if _is_utf8(line):  # valid UTF-8 multibyte text is almost never valid cp932 prose
            raise _encoding_error(name, no, line, _first_non_ascii_field(line), fields,
                                  "this line is UTF-8 but a UKE file is Shift_JIS (cp932) "
                                  "throughout (mixed encodings)")
        try:
            out.append(line.decode("cp932"))
        except UnicodeDecodeError as exc:
            raise _encoding_error(name, no, line, line[:exc.start].count(b","), fields,
                                  f"not Shift_JIS (cp932) at byte {exc.start + 1}") from None
    return out


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_non_ascii_field(line: bytes) -> int:
    return next(i for i, f in enumerate(line.split(b",")) if not f.isascii())


def _encoding_error(name: str, no: int, line: bytes, pos: int,
                    fields: Mapping[str, tuple[str, ...]], what: str) -> UkeError:
    rec = line[:2].decode("ascii", "replace")
    names = fields.get(rec, ())
    label = names[pos] if pos < len(names) else "?"
    return UkeError(name, no, what, f"{rec} field {pos + 1} ({label})")


def read_uke(raw: bytes, name: str, tenant_code: str, masters: Masters | None = None,
             ) -> UkeResult:
    """Claim lines (LINE_COLUMNS) of one 医科, 歯科 or 調剤 UKE file, told apart by the first
    record (IR: 医科・歯科 by its 点数表; YK: 調剤); UkeError names file, line and field."""
    if not looks_like_uke(raw):
        raise UkeError(name, 1, "not a UKE file: the first record must be IR (医科・歯科) or YK "
                       "(調剤)")
    body = raw.lstrip(b"\xef\xbb\xbf \r\n\t")
    reader = (_DispensingReader if body.startswith(b"YK,") else _Reader)(name, tenant_code,
                                                                       masters)
    lines = _decode_lines(body, name, reader.fields)
    for no, text in enumerate(lines, start=1):
        if text:
            reader.record(no, text.split(","))
    if not reader.ended:
        raise UkeError(name, len(lines), "the file ends without a GO (合計) record: truncated?")
    empty = [c.claim_id for c in reader.claims if not c.lines]
    if not reader.claims:
        raise UkeError(name, len(lines), "no RE (レセプト共通) records: the file holds no claims")
    frame = pd.DataFrame(list(reader.rows()), columns=LINE_COLUMNS)
    skipped = reader.skipped
    if empty:
        skipped["RE (行なし)"] += len(empty)
    return UkeResult(frame, len(reader.claims) - len(empty), skipped, reader.unmapped,
                     reader.fractional)


def read_many(files: Iterable[tuple[str, bytes]], tenant_code: str,
              masters: Masters | None = None, validate: bool = False) -> UkeResult:
    """Several UKE files as one result (claims of every file, counts summed); validate applies
    the claims CSV's schema checks (and dtypes) to the lines, naming the file that fails."""
    named = [(name, read_uke(raw, name, tenant_code, masters)) for name, raw in files]
    skipped: Counter = Counter()
    for _, r in named:
        skipped.update(r.skipped_records)
    lines = pd.concat([r.lines for _, r in named], ignore_index=True)
    if validate:
        lines = _validated(lines, named)
    return UkeResult(lines, sum(r.claims for _, r in named), skipped,
                     sum(r.unmapped_diagnoses for _, r in named),
                     sum(r.fractional_quantities for _, r in named))


def _validated(lines: pd.DataFrame, named: list[tuple[str, UkeResult]]) -> pd.DataFrame:
    """validate_lines once over all files (fast); on failure, find and name the file."""
    try:
        return validate_lines(lines)
    except ClaimsInputError as exc:
        for name, r in named:
            try:
                validate_lines(r.lines, row_offset=1)
            except ClaimsInputError as one:  # row N: the file's Nth SY/SI/IY line
                raise ClaimsInputError(f"{name} (row N = the Nth SY/SI/IY line of the file; "
                                       "of a 調剤 file, its Nth CZ fee code or IY line): "
                                       f"{one}") from None
        raise ClaimsInputError(f"UKE files together: {exc}") from None


def read_validated(raw: bytes, name: str, tenant_code: str, masters: Masters | None = None,
                   ) -> UkeResult:
    """`read_uke`, then the same schema checks (and dtypes) as a claims CSV gets."""
    return read_many([(name, raw)], tenant_code, masters, validate=True)


# --- writing -------------------------------------------------------------------------------

WRITTEN = ("医科入院", "医科入院外", "歯科", "調剤")
TABLE_OF = {"歯科": "3", "調剤": DISPENSING_TABLE}  # else 1 (医科)


@dataclass
class UkeExport:
    """UKE files written from claim lines, and how their ids map back to the frame's."""

    files: dict[str, bytes]
    claim_ids: dict[str, str]  # frame claim_id -> claim_id the reader will give it
    providers: dict[str, str]  # 10-digit 医療機関コード / 薬局コード written -> frame provider_id


def representable(lines: pd.DataFrame) -> pd.DataFrame:
    """The claim lines as UKE can carry them (what `write_uke` then `read_uke` returns).

    UKE records integer points per 回 (per day for a drug) and no eligibility: a line's points
    become round(points / 回数) x 回数 and insured_until is emptied. 調剤 UKE has no 傷病名
    records and one 回 per CZ fee slot: a 調剤 claim loses its diagnosis lines, a 調剤 procedure
    line of count k becomes k lines of count 1, and its lines are numbered again from 1.
    """
    out = lines[lines["claim_type"].isin(WRITTEN)].copy()
    per = out["days"].where(out["line_kind"] == "drug", out["count"]).clip(lower=1)
    out["points"] = ((out["points"] / per).round().astype(int) * per).astype(int)
    out["insured_until"] = ""
    rx = (out["claim_type"] == "調剤").to_numpy()
    if not rx.any():
        return out.reset_index(drop=True)
    out = out[~(rx & (out["line_kind"] == "diagnosis").to_numpy())]
    fee = ((out["claim_type"] == "調剤") & (out["line_kind"] == "procedure")).to_numpy()
    slots = out["count"].clip(lower=1).where(fee, 1).to_numpy()
    out["points"] = (out["points"] // slots).astype(int)
    out = out.loc[out.index.repeat(slots)]
    fee = ((out["claim_type"] == "調剤") & (out["line_kind"] == "procedure")).to_numpy()
    out.loc[fee, "count"] = 1
    rx = (out["claim_type"] == "調剤").to_numpy()
    renumbered = out.groupby("claim_id", sort=False).cumcount().to_numpy() + 1
    out["line_no"] = out["line_no"].where(~rx, renumbered)
    return out.reset_index(drop=True)


def write_uke(lines: pd.DataFrame, icd_to_disease: Mapping[str, str],
              billed: str | None = None, wareki: bool = False) -> UkeExport:
    """One UKE file (cp932, CRLF, 0x1A) per provider and 点数表 (医科 1, 歯科 3: an IR file;
    調剤 4: a YK file of the 調剤 layout) from claim lines (LINE_COLUMNS).

    icd_to_disease maps the frame's ICD-10 codes to 7-digit 傷病名コード (the inverse of the b
    master; a code without one is written as 未コード化傷病名 0000999 with the code as its name);
    billed is the 請求年月 YYYY-MM (default: the month after the latest claim); dates are 西暦
    (YYYYMM, YYYYMMDD: the layout since 令和6年6月診療分) or, with wareki, 元号 + YYMM(DD). Drug
    and procedure points are written per 回 as `representable` rounds them.
    """
    med = representable(lines)
    billed = billed or _next_month(str(med["service_month"].max()))
    billed_w = _uke_date(dt.date(int(billed[:4]), int(billed[5:7]), 1), True, wareki)
    med["table"] = med["claim_type"].map(TABLE_OF).fillna("1")
    files, claim_ids, providers = {}, {}, {}
    groups = med.groupby(["provider_id", "table"], sort=True)
    for index, ((provider, table), group) in enumerate(groups, start=1):
        pref = str(group["tenant_code"].iloc[0])[:2]
        code10 = f"{pref}{table}{index:07d}"
        providers[code10] = str(provider)
        rx = table == DISPENSING_TABLE
        records = [f"YK,2,{pref},{table},{index:07d},薬局{index},{billed_w},00," if rx else
                   f"IR,2,{pref},{table},{index:07d},,医療機関{index},{billed_w},00,"]
        total = 0
        for receipt_no, (claim_id, claim) in enumerate(
                group.groupby("claim_id", sort=False), start=1):
            claim_ids[str(claim_id)] = f"{code10}-{billed.replace('-', '')}-{receipt_no:06d}"
            records += (_dispensing_records(receipt_no, claim, wareki) if rx else
                        _claim_records(receipt_no, claim, icd_to_disease, wareki))
            total += int(claim["total_points"].iloc[0])
        records.append(f"GO,{group['claim_id'].nunique()},{total},99")
        text = "\r\n".join(records) + "\r\n"
        files[f"RECEIPT{'Y' if rx else 'C'}_{code10}.UKE"] = text.encode("cp932") + EOF
    return UkeExport(files, claim_ids, providers)


def _claim_records(receipt_no: int, claim: pd.DataFrame, icd: Mapping[str, str],
                   wareki: bool) -> list[str]:
    head = claim.iloc[0]
    month = str(head["service_month"])
    y, m = int(month[:4]), int(month[5:7])
    birth = dt.date(y - int(head["age"]) - 1, m, 2)  # full years on the 1st: exactly `age`
    dental = head["claim_type"] == "歯科"
    kind = "3112" if dental else "1111" if head["claim_type"] == "医科入院" else "1112"
    first = dt.date(y, m, 1)
    out = [f"RE,{receipt_no},{kind},{_uke_date(first, True, wareki)},患者{receipt_no},"
           f"{int(head['sex'])},{_uke_date(birth, False, wareki)},,,,,,,",
           f"HO,{head['tenant_code']},,{head['patient_id']},1,{int(head['total_points'])}"]
    ln: Any  # an itertuples row: its fields by column name
    for ln in claim.itertuples(index=False):
        if ln.line_kind == "diagnosis":  # no 傷病名コード known: 未コード化傷病名 with its name
            code, name = (icd[ln.code], "") if ln.code in icd else (UNCODED_DIAGNOSIS, ln.code)
            out.append(f"HS,,,,{code},,{name}" if dental else
                       f"SY,{code},{_uke_date(first, False, wareki)},1,,{name},,")
        elif ln.line_kind == "procedure":
            count = max(int(ln.count), 1)
            each = int(ln.points) // count
            head_cells = [_section(ln.code), "1", ln.code]
            gap = [""] * (SS_POINTS - 4) if dental else [""]  # 数量 (and 加算 pairs in SS)
            out.append(",".join(["SS" if dental else "SI", *head_cells, *gap, str(each),
                                 str(count)]))
        else:
            days = max(int(ln.days), 1)
            out.append(f"IY,21,1,{ln.code},{int(ln.count)},{int(ln.points) // days},{days}")
    return out


def _dispensing_records(receipt_no: int, claim: pd.DataFrame, wareki: bool) -> list[str]:
    """RE, HO and per drug line one 剤 (SH, CZ, IY) of a 調剤 claim, as `_DispensingReader`
    reads them back: the drug's points per day as SH 単位薬剤料, its days as CZ 調剤数量 and its
    points as CZ 点数（薬剤料）; procedure lines (調剤料, 加算料) fill the 11 fee slots of the next
    drug's CZ (extra CZ records without IY where there are more, or after the last drug)."""
    head = claim.iloc[0]
    month = str(head["service_month"])
    y, m = int(month[:4]), int(month[5:7])
    first = dt.date(y, m, 1)
    day = _uke_date(first, False, wareki)
    birth = dt.date(y - int(head["age"]) - 1, m, 2)
    out = [f"RE,{receipt_no},4112,{_uke_date(first, True, wareki)},患者{receipt_no},"
           f"{int(head['sex'])},{_uke_date(birth, False, wareki)},,,,,,,",
           f"HO,{head['tenant_code']},,{head['patient_id']},1,{int(head['total_points'])}"]
    fees: list[tuple[str, int]] = []
    rx_no = 0

    def cz(days: int, drug_points: str, slots: list[tuple[str, int]]) -> str:
        cells = ["CZ", "", day, day, "1", str(days), "1", "1", "01", "", "", "", "",
                 drug_points, "", *[""] * 30]
        for k, (code, points) in enumerate(slots):
            at = CZ_FEE_CODE if k == 0 else CZ_ADDITION + 3 * (k - 1) + 1
            cells[at - 1 if k else at - 3] = "1"  # 負担区分 (and 算定区分 for the 調剤料)
            cells[at], cells[at + 1] = code, str(points)
        while cells[-1] == "":
            cells.pop()
        return ",".join(cells)

    def flush(days: int, keep: int) -> None:  # all but `keep` fee slots in CZ without IY
        while len(fees) > keep:
            take = min(CZ_SLOTS, len(fees) - keep)
            out.append(cz(days, "", fees[:take]))
            del fees[:take]

    ln: Any  # an itertuples row: its fields by column name
    for ln in claim.itertuples(index=False):
        if ln.line_kind == "procedure":
            fees.append((str(ln.code), int(ln.points)))
        elif ln.line_kind == "drug":
            days = max(int(ln.days), 1)
            rx_no += 1
            out.append(f"SH,{rx_no:02d},1,,,{int(ln.points) // days}")
            flush(days, (len(fees) - 1) % CZ_SLOTS + 1 if fees else 0)
            out.append(cz(days, str(int(ln.points)), fees[:]))
            fees.clear()
            out.append(f"IY,1,{ln.code},{int(ln.count)}")
    if fees:
        if rx_no == 0:
            out.append("SH,01,1,,,0")
        flush(1, 0)
    return out


def _section(code: str) -> str:
    """診療識別 (2 digits) from a 診療行為コード's leading digits: 11 初診 .. 80 その他."""
    return {"111": "11", "112": "12", "113": "13", "114": "14", "120": "21", "130": "31",
            "140": "40", "150": "50", "160": "60", "170": "70", "180": "80",
            "190": "90"}.get(code[:3], "80")


def _next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"
