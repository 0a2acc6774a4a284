"""特定健診 results in the MHLW standard XML (HL7 CDA R2), read onto the roster's health fields.

Format: 「特定健康診査・特定保健指導の電子的な標準様式」(厚生労働省), one CDA document
(`ClinicalDocument` in namespace urn:hl7-org:v3) per person and examination, usually delivered
as a ZIP holding the documents beside index/summary/claim files and XSDs (those are skipped and
counted). Each result is an `observation` whose `code/@code` is a JLAC10 17-digit result code in
code system OID 1.2.392.200119.6.1005 and whose `value` (xsi:type PQ) holds the number.

Result codes (「XML用特定健診項目情報」of the standard; 17-digit JLAC10-style codes). CODE_TABLE
below holds the codes of the items a roster uses and of their neighbours, each with its item and
measurement; the roster fields are filled from these:

=====  ==================  ========================================================
field  roster column       codes (siblings by measurement or method)
=====  ==================  ========================================================
bmi    BMI                 9N011000000000001
sbp    収縮期血圧           9A751000000000001 1回目, 9A752000000000001 2回目,
                           9A755000000000001 その他
hba1c  HbA1c (NGSP)        3D046000001906202 免疫学的方法, 3D046000001920402 HPLC,
                           3D046000001927102 酵素法, 3D046000001999902 その他
ldl    LDLコレステロール     3F077000002327101 可視吸光光度法, 3F077000002327201 紫外吸光光度法,
                           3F077000002391901 計算法 (第4期), 3F077000002399901 その他
=====  ==================  ========================================================

Known codes the roster has no column for (腹囲 9N0161601/2/3..., 拡張期血圧 9A761/762/765...,
中性脂肪 空腹時 3F015000002327101/2327201/2399901 and 随時 3F0151299023..., HDL 3F070000002...,
Non-HDL 3F069000002391901, 空腹時血糖 3D010000001926101/2227101/1927201/1999901, 随時血糖
3D010129901926101/902227101/901927201/901999901, HbA1c JDS値 3D045... before 2013) are counted
under `unused_codes`; codes outside CODE_TABLE under `unknown_codes`. Neither is an error.

Sources (SOURCES; the transcribed excerpt with a source per code is
tests/fixtures/tokutei_xml/jlac10_code_table_excerpt.csv and tests/unit/test_checkup_xml.py checks
CODE_TABLE against it): the MHLW code table itself could not be read here (no network); the codes
were checked against (1) MHLW「標準的な健診・保健指導プログラム（令和6年度版）」(案) 別紙,
code table p.179 (blood glucose codes) as mirrored at
https://wic-net.com/material/document/8096/179 (公開元
https://www.mhlw.go.jp/stf/newpage_31652.html, program revision WG 第2回 3/7), (2) the JMA ORCA
project's 日医特定健康診査システム, which implements the 第3期 table (JConstantString.java in
github.com/orcacvsmirror/tokutei master @ 260c570cc63fbbe927c0311fdf75f3b5aa84443c, 2018-03-06;
read only, nothing copied: its licence forbids redistributing modified master data), (3) for the
第4期 (2024-) additions LDL 計算法 3F077000002391901, Non-HDL and 随時中性脂肪: secondary public
sources only (JAMI CLINS 検体検査項目セット; public 第4期 exam-item seeds). Re-check against the
current MHLW 「XML用特定健診項目情報」 CSV when it can be downloaded.

Several codes of one field in one document: 収縮期血圧 その他 (9A755, the value the examiner
reports when not the two-reading protocol, or their mean) wins when present, as the ORCA
system does; otherwise the mean of the 1回目 and 2回目 readings (特定健康診査 takes the mean of
two measurements). For the method siblings of HbA1c and LDL (normally one per document) the mean
is taken. Values with a nullFlavor or no number are skipped.
When one person has several documents, the latest
examination (serviceEvent effectiveTime, else the document's) wins.

Join key. The person is identified by the insured card (recordTarget/patientRole/id): root
1.2.392.200119.6.204.<保険者番号> holds the 記号 in `extension`, root
1.2.392.200119.6.205.<保険者番号> the 番号. The key is
`pseudonymise(tenant, "tokutei:<insurer>:<記号>:<番号>")` (models/pseudonym.py, per-tenant HMAC),
so neither the card numbers nor the insurer number are stored or written anywhere. Normalised
first, so a roster and an XML written by different systems agree: the insurer number loses an
OID padding "1" before 9+ digits (OID arcs cannot start with 0) and its leading zeros (Excel
drops them); 記号・番号 are NFKC'd (full-width digits) with spaces removed.

A roster carries the same key either as three columns 保険者番号 + 記号 + 番号 (aliases in
ROSTER_HEADERS: insurer_number, card_symbol, card_number) or as one column 健診キー
(checkup_key) holding the key this product wrote (`kyodo nudge import-xml` output: the key
needs the service's secret, so a municipality cannot compute it itself).

Safety: XML from outside is parsed with defusedxml (no entity expansion, no external entities
or DTD fetching); ZIP archives are limited in member count, per-member and total uncompressed
size, checked on the declared sizes and again while reading (a lying header cannot exceed
them). Errors: CheckupXmlError (a 422: names the file, inside the ZIP too), CheckupXmlTooLarge
(a 413).
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

import numpy as np
import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from models.checkup_nudge.schema import RosterInputError
from models.pseudonym import pseudonymise, pseudonymise_many

HL7 = "{urn:hl7-org:v3}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
JLAC10_OID = "1.2.392.200119.6.1005"
SYMBOL_ROOT = "1.2.392.200119.6.204."  # 被保険者証等記号, insurer number after the prefix
NUMBER_ROOT = "1.2.392.200119.6.205."  # 被保険者証等番号
GENDER_OID = "1.2.392.200119.6.1104"  # 1 男, 2 女 (as the roster's sex)

SOURCES = {
    "mhlw-r6": "MHLW 標準的な健診・保健指導プログラム（令和6年度版）(案) 別紙 p.179, "
               "https://wic-net.com/material/document/8096/179 (公開元 "
               "https://www.mhlw.go.jp/stf/newpage_31652.html)",
    "orca": "日医特定健康診査システム JConstantString.java, github.com/orcacvsmirror/tokutei "
            "master @ 260c570cc63fbbe927c0311fdf75f3b5aa84443c (2018-03-06, 第3期)",
    "p4": "第4期 (2024-) additions, secondary public sources only (JAMI CLINS; 第4期 seeds)",
}
# code -> (item, measurement, roster field or ""): see the module docstring
CODE_TABLE: dict[str, tuple[str, str, str]] = {
    "9N011000000000001": ("BMI", "", "bmi"),
    "9N016160100000001": ("腹囲", "実測", ""),
    "9N016160200000001": ("腹囲", "自己測定", ""),
    "9N016160300000001": ("腹囲", "自己申告", ""),
    "9A751000000000001": ("収縮期血圧", "1回目", "sbp"),
    "9A752000000000001": ("収縮期血圧", "2回目", "sbp"),
    "9A755000000000001": ("収縮期血圧", "その他", "sbp"),
    "9A761000000000001": ("拡張期血圧", "1回目", ""),
    "9A762000000000001": ("拡張期血圧", "2回目", ""),
    "9A765000000000001": ("拡張期血圧", "その他", ""),
    "3F015000002327101": ("中性脂肪（空腹時）", "可視吸光光度法", ""),
    "3F015000002327201": ("中性脂肪（空腹時）", "紫外吸光光度法", ""),
    "3F015000002399901": ("中性脂肪（空腹時）", "その他", ""),
    "3F015129902327101": ("中性脂肪（随時）", "可視吸光光度法", ""),
    "3F015129902327201": ("中性脂肪（随時）", "紫外吸光光度法", ""),
    "3F015129902399901": ("中性脂肪（随時）", "その他", ""),
    "3F070000002327101": ("HDLコレステロール", "可視吸光光度法", ""),
    "3F070000002327201": ("HDLコレステロール", "紫外吸光光度法", ""),
    "3F070000002399901": ("HDLコレステロール", "その他", ""),
    "3F077000002327101": ("LDLコレステロール", "可視吸光光度法（直接法）", "ldl"),
    "3F077000002327201": ("LDLコレステロール", "紫外吸光光度法（直接法）", "ldl"),
    "3F077000002391901": ("LDLコレステロール", "計算法", "ldl"),
    "3F077000002399901": ("LDLコレステロール", "その他", "ldl"),
    "3F069000002391901": ("Non-HDLコレステロール", "計算法", ""),
    "3D010000001926101": ("空腹時血糖", "電位差法", ""),
    "3D010000002227101": ("空腹時血糖", "可視吸光光度法", ""),
    "3D010000001927201": ("空腹時血糖", "紫外吸光光度法", ""),
    "3D010000001999901": ("空腹時血糖", "その他", ""),
    "3D010129901926101": ("随時血糖", "電位差法", ""),
    "3D010129902227101": ("随時血糖", "可視吸光光度法", ""),
    "3D010129901927201": ("随時血糖", "紫外吸光光度法", ""),
    "3D010129901999901": ("随時血糖", "その他", ""),
    "3D046000001906202": ("HbA1c（NGSP値）", "免疫学的方法", "hba1c"),
    "3D046000001920402": ("HbA1c（NGSP値）", "HPLC", "hba1c"),
    "3D046000001927102": ("HbA1c（NGSP値）", "酵素法", "hba1c"),
    "3D046000001999902": ("HbA1c（NGSP値）", "その他", "hba1c"),
    "3D045000001906202": ("HbA1c（JDS値、2013年度まで）", "免疫学的方法", ""),
    "3D045000001920402": ("HbA1c（JDS値、2013年度まで）", "HPLC", ""),
    "3D045000001927102": ("HbA1c（JDS値、2013年度まで）", "酵素法", ""),
    "3D045000001999902": ("HbA1c（JDS値、2013年度まで）", "その他", ""),
}
RESULT_CODES: dict[str, str] = {code: f for code, (_, _, f) in CODE_TABLE.items() if f}
SBP_OTHER = "9A755000000000001"  # 収縮期血圧 その他: wins over the 1回目/2回目 readings
FIELDS = ("bmi", "sbp", "hba1c", "ldl")

# Limits per read_results call (one HTTP request, one CLI run), over all its files together:
# a municipality's year is thousands to tens of thousands of documents of some 5-50 kB, i.e.
# well under 2 GB uncompressed; reading runs at about 400 documents (8 MB) a second on one
# busy core (20 kB documents), so a 20,000-person year takes about a minute.
MAX_MEMBERS = 200_000
MAX_MEMBER_BYTES = 5_000_000
MAX_TOTAL_BYTES = 4_000_000_000
ZIP_MAGIC = b"PK\x03\x04"


class CheckupXmlError(RosterInputError):
    """特定健診 XML that cannot be read; names the file (and the member of a ZIP)."""


class CheckupXmlTooLarge(CheckupXmlError):
    """A ZIP over the member-count or uncompressed-size limits (a zip bomb, or too big)."""


@dataclass
class CheckupResults:
    """Results read from XML documents: one row per person (latest examination).

    `frame` columns: checkup_key, sex (1/2 or NaN), birth_date (ISO or ""), exam_date (ISO),
    bmi, sbp, hba1c, ldl (float, NaN when not measured), file (the document it came from).
    """

    frame: pd.DataFrame
    documents: int = 0
    skipped_files: list[str] = field(default_factory=list)
    unknown_codes: dict[str, int] = field(default_factory=dict)  # not in CODE_TABLE -> count
    unused_codes: dict[str, int] = field(default_factory=dict)  # in it, no roster column
    without_key: list[str] = field(default_factory=list)  # files without 記号・番号
    older_dropped: int = 0

    def summary(self) -> dict[str, object]:
        """Counts for a response or the CLI (no identifiers)."""
        return {"documents": self.documents, "persons": len(self.frame),
                "skipped_files": len(self.skipped_files),
                "unknown_codes": sum(self.unknown_codes.values()),
                "unknown_code_list": sorted(self.unknown_codes)[:50],
                "unused_codes": sum(self.unused_codes.values()),
                "without_key": len(self.without_key), "older_dropped": self.older_dropped}


def looks_like_xml(raw: bytes) -> bool:
    """True for bytes that start like an XML document (after a BOM and white space)."""
    head = raw[:200].lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<?xml") or head.startswith(b"<ClinicalDocument") or (
        head.startswith(b"<") and b"ClinicalDocument" in raw[:2000])


def looks_like_zip_of_xml(raw: bytes) -> bool:
    """True for a ZIP that is not an xlsx workbook (those hold xl/ and [Content_Types].xml)."""
    if not raw.startswith(ZIP_MAGIC):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, ValueError):
        return False
    return not any(n.startswith("xl/") or n == "[Content_Types].xml" for n in names)


def insurer_part(text: str) -> str:
    """The insurer number as the key uses it (see the module docstring)."""
    digits = unicodedata.normalize("NFKC", text).strip()
    if len(digits) >= 9 and digits.startswith("1"):
        digits = digits[1:]  # the OID form pads the number behind a leading 1
    return digits.lstrip("0") or "0"


def card_part(text: str) -> str:
    """記号 or 番号 as the key uses it: NFKC, no spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _raw_key(insurer: str, symbol: str, number: str) -> str:
    return f"tokutei:{insurer_part(insurer)}:{card_part(symbol)}:{card_part(number)}"


def checkup_key(tenant_code: str, insurer: str, symbol: str, number: str) -> str:
    """The pseudonymised join key of one insured person (20 hex characters)."""
    return pseudonymise(tenant_code, _raw_key(insurer, symbol, number))


def _value(obs: Element) -> float | None:
    value = obs.find(f"{HL7}value")
    if value is None or value.get("nullFlavor") or obs.get("nullFlavor"):
        return None
    kind = value.get(XSI_TYPE, "PQ").split(":")[-1]
    if kind not in ("PQ", "REAL", "INT"):
        return None
    try:
        return float(value.get("value", ""))
    except ValueError:
        return None


def _date(text: str | None) -> str:
    """ISO date from an HL7 TS (YYYYMMDD[hhmmss...]), else ""."""
    if not text or not re.match(r"^\d{8}", text):
        return ""
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}"


_DECLARED = re.compile(
    rb"""^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")
NATIVE = {"utf-8", "utf8", "utf-16", "utf16", "us-ascii", "ascii", "iso-8859-1", "latin-1"}
# Shift_JIS as Japanese systems write it holds Windows extensions (①, 髙): read as cp932
SJIS = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
        "windows-31j": "cp932", "ms932": "cp932", "cp932": "cp932"}


def _as_utf8(raw: bytes, name: str) -> bytes:
    """The document in UTF-8 when it declares another encoding (Shift_JIS from older
    systems: expat reads no multi-byte encoding but UTF-8/16); CheckupXmlError when the
    declared encoding is unknown or does not fit the bytes."""
    match = _DECLARED.match(raw[:300])
    if match is None or match[2].decode().lower() in NATIVE:
        return raw
    declared = match[2].decode()
    try:
        text = raw.decode(SJIS.get(declared.lower(), declared))
    except (LookupError, UnicodeDecodeError) as exc:
        raise CheckupXmlError(f"'{name}': 文字コード {declared} として読めません / '{name}' "
                              f"cannot be read in its declared encoding {declared}: {exc}"
                              ) from None
    return re.sub(r"""encoding\s*=\s*["'][^"']+["']""", 'encoding="UTF-8"', text,
                  count=1).encode("utf-8")


def parse_document(raw: bytes, name: str, tenant_code: str,
                   ) -> tuple[dict[str, object] | None, dict[str, int], str]:
    """One XML file -> (person row or None, codes not read into a field -> count, with "+"
    before the known ones of CODE_TABLE, kind): kind "result", "no_key"
    (a CDA document without 記号・番号) or "other" (not a CDA document: index, summary).
    CheckupXmlError naming `name` when the XML is malformed or unsafe."""
    raw = _as_utf8(raw, name)
    try:
        root = fromstring(raw, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        kind = type(exc).__name__
        raise CheckupXmlError(f"'{name}': XML として読めません（{kind}） / '{name}' is not "
                              f"well-formed or safe XML: {exc}") from None
    if root.tag != f"{HL7}ClinicalDocument":
        return None, {}, "other"
    symbol = number = None
    insurer = ""
    patient = root.find(f"{HL7}recordTarget/{HL7}patientRole")
    for ident in patient.findall(f"{HL7}id") if patient is not None else []:
        oid = ident.get("root", "")
        if oid.startswith(SYMBOL_ROOT):
            symbol, insurer = ident.get("extension", ""), oid[len(SYMBOL_ROOT):]
        elif oid.startswith(NUMBER_ROOT):
            number, insurer = ident.get("extension", ""), insurer or oid[len(NUMBER_ROOT):]
    unknown: dict[str, int] = {}  # codes outside CODE_TABLE; unused ones are counted as "+"
    readings: dict[str, list[float]] = {f: [] for f in FIELDS}
    sbp_other: list[float] = []
    for obs in root.iter(f"{HL7}observation"):
        code = obs.find(f"{HL7}code")
        if code is None or code.get("codeSystem") != JLAC10_OID:
            continue
        key = code.get("code", "")
        target = RESULT_CODES.get(key)
        if target is None:
            tag = key if key not in CODE_TABLE else f"+{key}"
            unknown[tag] = unknown.get(tag, 0) + 1
            continue
        number_value = _value(obs)
        if number_value is not None:
            (sbp_other if key == SBP_OTHER else readings[target]).append(number_value)
    if sbp_other:
        readings["sbp"] = sbp_other
    if not symbol and not number:
        return None, unknown, "no_key"
    gender = root.find(f"{HL7}recordTarget/{HL7}patientRole/{HL7}patient/"
                       f"{HL7}administrativeGenderCode")
    birth = root.find(f"{HL7}recordTarget/{HL7}patientRole/{HL7}patient/{HL7}birthTime")
    when = root.find(f"{HL7}documentationOf/{HL7}serviceEvent/{HL7}effectiveTime")
    exam = _date(when.get("value") if when is not None else None)
    if not exam and when is not None and when.find(f"{HL7}low") is not None:
        exam = _date(when.find(f"{HL7}low").get("value"))  # type: ignore[union-attr]
    if not exam:
        top = root.find(f"{HL7}effectiveTime")
        exam = _date(top.get("value") if top is not None else None)
    sex = gender.get("code") if gender is not None else None
    row: dict[str, object] = {
        "checkup_key": checkup_key(tenant_code, insurer, symbol or "", number or ""),
        "sex": float(sex) if sex in ("1", "2") else float("nan"),
        "birth_date": _date(birth.get("value") if birth is not None else None),
        "exam_date": exam,
        **{f: (sum(v) / len(v) if v else float("nan")) for f, v in readings.items()},
        "file": name,
    }
    return row, unknown, "result"


@dataclass
class _Budget:
    """What one read_results call may still expand: member count and uncompressed bytes are
    counted over every file of the call (a request of 200 ZIPs gets one budget, not 200)."""

    max_members: int
    max_member: int
    max_total: int
    members: int = 0
    total: int = 0

    def add_files(self, label: str, count: int) -> None:
        self.members += count
        if self.members > self.max_members:
            raise CheckupXmlTooLarge(
                f"'{label}': ファイル数が合わせて {self.members:,} 個になり、上限 "
                f"{self.max_members:,} 個を超えます。年度を分けて送ってください / '{label}': "
                f"{self.members:,} files in all; at most {self.max_members:,} per upload")

    def check_declared(self, label: str, declared: int) -> None:
        if self.total + declared > self.max_total:
            raise CheckupXmlTooLarge(
                f"'{label}': 展開後 {self.total + declared:,} バイトになり、上限 "
                f"{self.max_total:,} バイトを超えます / '{label}' expands to "
                f"{self.total + declared:,} bytes in all; at most {self.max_total:,}")

    def add_bytes(self, label: str, size: int) -> None:
        self.total += size
        if size > self.max_member or self.total > self.max_total:
            raise CheckupXmlTooLarge(
                f"'{label}': 展開後のサイズが上限を超えています（1ファイル "
                f"{self.max_member:,} バイト、合計 {self.max_total:,} バイトまで） / "
                f"'{label}': uncompressed size over the limit ({self.max_member:,} bytes per "
                f"file, {self.max_total:,} in all)")


def _members(raw: bytes, label: str, budget: _Budget) -> Iterable[tuple[str, bytes | None]]:
    """(name, bytes) of a ZIP's .xml files, (name, None) for other files; limits enforced
    on the declared sizes first and again on the bytes read (a header may lie)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CheckupXmlError(f"'{label}': ZIP として読めません / '{label}' is not a readable "
                              f"ZIP: {exc}") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        budget.add_files(label, len(infos))
        budget.check_declared(label, sum(i.file_size for i in infos))
        for info in infos:
            inner = f"{label}/{info.filename}"
            if not info.filename.lower().endswith(".xml"):
                yield inner, None
                continue
            if info.file_size > budget.max_member:
                raise CheckupXmlTooLarge(
                    f"'{inner}': 展開後 {info.file_size:,} バイトが上限 {budget.max_member:,} "
                    f"バイトを超えています / '{inner}' expands to {info.file_size:,} bytes; "
                    f"at most {budget.max_member:,} per file")
            try:
                with zf.open(info) as handle:
                    data = handle.read(budget.max_member + 1)  # the header's size may lie
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError,
                    RuntimeError) as exc:  # corrupt, truncated, encrypted or unknown method
                raise CheckupXmlError(f"'{inner}': ZIP から取り出せません / cannot extract "
                                      f"'{inner}': {exc}") from None
            budget.add_bytes(inner, len(data))
            yield inner, data


def read_results(files: Sequence[tuple[str, bytes]], tenant_code: str, *,
                 max_members: int | None = None, max_member_bytes: int | None = None,
                 max_total_bytes: int | None = None) -> CheckupResults:
    """XML files and ZIPs of them -> CheckupResults keyed by checkup_key (see module doc).

    CheckupXmlError (422) for a malformed or unsafe XML file, naming it (ZIP/member.xml);
    CheckupXmlTooLarge (413) when the files of this call together pass the limits (module
    constants by default): member count over all ZIPs and loose files, bytes per file, and
    uncompressed bytes in all.
    """
    budget = _Budget(max_members or MAX_MEMBERS, max_member_bytes or MAX_MEMBER_BYTES,
                     max_total_bytes or MAX_TOTAL_BYTES)
    rows: list[dict[str, object]] = []
    out = CheckupResults(pd.DataFrame())
    for name, raw in files:
        if raw.startswith(ZIP_MAGIC):
            members: Iterable[tuple[str, bytes | None]] = _members(raw, name, budget)
        else:
            budget.add_files(name, 1)
            budget.add_bytes(name, len(raw))
            members = [(name, raw)]
        for inner, data in members:
            if data is None:
                out.skipped_files.append(inner)
                continue
            row, unknown, kind = parse_document(data, inner, tenant_code)
            for tag, n in unknown.items():
                counts = out.unused_codes if tag.startswith("+") else out.unknown_codes
                code = tag.lstrip("+")
                counts[code] = counts.get(code, 0) + n
            if row is None:
                (out.without_key if kind == "no_key" else out.skipped_files).append(inner)
                continue
            out.documents += 1
            rows.append(row)
    columns = ["checkup_key", "sex", "birth_date", "exam_date", *FIELDS, "file"]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame = frame.sort_values(["checkup_key", "exam_date"], kind="stable")
        latest = frame.drop_duplicates("checkup_key", keep="last")
        out.older_dropped = len(frame) - len(latest)
        frame = latest.reset_index(drop=True)
    out.frame = frame
    return out


KEY_COLUMNS = ("insurer_number", "card_symbol", "card_number")


def roster_keys(frame: pd.DataFrame, tenant_code: str | pd.Series) -> pd.Series | None:
    """Each roster row's checkup_key: its 健診キー column, else built from 保険者番号 + 記号 +
    番号 (rows missing one of them get ""); None when the roster has neither."""
    if "checkup_key" in frame.columns:
        return frame["checkup_key"].astype(str).str.strip()
    if not all(c in frame.columns for c in KEY_COLUMNS):
        return None
    tenants = (tenant_code.astype(str) if isinstance(tenant_code, pd.Series)
               else pd.Series(tenant_code, index=frame.index))
    parts = frame[list(KEY_COLUMNS)].astype(str)
    given = ((parts["insurer_number"].str.strip() != "")
             & ((parts["card_symbol"].str.strip() != "")
                | (parts["card_number"].str.strip() != ""))).to_numpy()
    # vectorised _raw_key (the same rules; a 300,000-row roster in about a second)
    insurer = parts["insurer_number"].str.normalize("NFKC").str.strip()
    padded = (insurer.str.len() >= 9) & insurer.str.startswith("1")
    insurer = insurer.where(~padded, insurer.str[1:]).str.lstrip("0").replace("", "0")
    card = {c: parts[c].str.normalize("NFKC").str.replace(r"\s+", "", regex=True)
            for c in ("card_symbol", "card_number")}
    raw = ("tokutei:" + insurer + ":" + card["card_symbol"] + ":" + card["card_number"]
           ).astype(object)
    keys = pd.Series("", index=frame.index, dtype=object)
    for tenant in tenants[given].unique():  # the tenant's HMAC key derived once
        rows = given & (tenants == tenant).to_numpy()
        keys[rows] = np.array(pseudonymise_many(tenant, raw[rows].tolist()), dtype=object)
    return keys


def merge(frame: pd.DataFrame, results: CheckupResults, tenant_code: str | pd.Series,
          ) -> tuple[pd.DataFrame, dict[str, object]]:
    """The roster (strings, as read by the intake) with bmi/sbp/hba1c/ldl filled from the
    XML results of the same person; the raw card columns are replaced by checkup_key.

    A result replaces the roster's cell (the XML is the examination's record). Returns the
    frame and a report: matched persons, XML persons not on the roster, fields filled.
    RosterInputError when the roster has no key columns.
    """
    keys = roster_keys(frame, tenant_code)
    if keys is None:
        raise RosterInputError(
            "residents: 特定健診XMLと照合する列がありません。保険者番号・記号・番号の3列か、"
            "健診キー列を入れてください / the roster has no columns to join the 特定健診 XML "
            "on: add 保険者番号 (insurer_number), 記号 (card_symbol) and 番号 (card_number), "
            "or a 健診キー (checkup_key) column")
    out = frame.drop(columns=[c for c in KEY_COLUMNS if c in frame.columns]).copy()
    out["checkup_key"] = keys.to_numpy()
    found = results.frame.set_index("checkup_key")
    hit = keys.isin(found.index).to_numpy() & (keys != "").to_numpy()
    filled: dict[str, int] = {}
    for col in FIELDS:
        values = keys[hit].map(found[col])
        given = values.notna().to_numpy()
        cells = out[col].astype(object) if col in out.columns else pd.Series(
            "", index=out.index, dtype=object)
        idx = out.index[hit][given]
        cells.loc[idx] = np.array([f"{v:g}" for v in values[given]], dtype=object)
        out[col] = cells.astype(str)
        filled[col] = int(given.sum())
    on_roster = set(keys[hit])
    report = {**results.summary(), "matched": len(on_roster),
              "not_on_roster": int((~found.index.isin(list(on_roster))).sum()),
              "filled": filled}
    return out, report
