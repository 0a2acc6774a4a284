"""One tolerant reader for every tabular upload (CSV, TSV, xlsx), shared by all tasks.

Municipal staff bring what their systems and Excel write, so this layer accepts, for every task
alike:
- encodings: UTF-8 with or without BOM, Shift_JIS/cp932, UTF-16 with BOM (Excel's "Unicode
  text", tab-separated); xlsx workbooks (first sheet). A UTF-8 file with a Shift_JIS row pasted
  in (or the reverse) is refused naming that row's line, never read as garbled text;
- delimiters: comma, or tab when the header line has more tabs than commas;
- fully blank rows (also rows of only commas, as Excel leaves them after deleting rows) are
  dropped; every row keeps the line number Excel shows for it (header = line 1);
- headers: NFKC (full-width letters and digits, full-width brackets), case and spaces ignored,
  then a per-task alias table (Japanese and English names) maps them onto the canonical names;
- values: identifiers are kept exactly as written, only trimmed (pseudonyms and joins to past
  feedback must not change); categories, numbers, months and dates are NFKC-normalised; NULL,
  NA, N/A, #N/A, 空欄, 該当なし and - are missing; numbers lose thousands separators ("1,354")
  and integer-valued floats become integers ("50.0" -> "50"); months and dates in ISO, slash,
  年月日 and 和暦 forms (2026/3/1, 2026年3月, R8.3, 令和8年3月) become ISO text;
- the safety quote the product's downloads put before a text cell starting with = + - @ tab or
  CR (OWASP CSV injection advice) is removed, so a file the product wrote reads back the same.

Everything here is pure: bytes in, a frame of strings out; the task's own validation converts
types and reports problems with `where()` line numbers. Errors are raised as the caller's own
ValueError subclass, in Japanese and English.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

_POOL_LOCK = threading.Lock()
_pool_users = 0
_pool_before: Any = None  # the pyarrow MemoryPool to restore


@contextlib.contextmanager
def system_arrow_pool() -> Iterator[None]:
    """While inside, pyarrow allocates through the C library's malloc, unless the operator
    chose a pool (ARROW_DEFAULT_MEMORY_POOL); the previous pool is back when the last thread
    inside leaves (a counter under a lock, so concurrent uploads nest correctly; buffers keep
    the pool that allocated them, so switching is always safe).

    pandas 3 keeps every text column in pyarrow, so an upload's parsing, normalisation and
    validation allocate through this pool. pyarrow's default here, mimalloc, spent most of that
    time in the kernel: read_claims of 1,000,000 claims (4.05 million lines, 510 MB) took 13.4
    CPU-s (9.4 of them system time) with mimalloc, 5.0 (1.1) with the system pool and 6.0 (1.7)
    with jemalloc at about the same peak RSS, on a shared 2-core Linux host at load ~5. Scoring
    those claims afterwards took 11.9 CPU-s with mimalloc against 15.3 with the system pool in
    one run, which a later run did not confirm (14.7 with the switch around reading only): the
    switch covers reading only, the one step where the gain was measured clearly.
    """
    import pyarrow as pa

    global _pool_users, _pool_before
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        yield
        return
    with _POOL_LOCK:
        if _pool_users == 0:
            _pool_before = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
        _pool_users += 1
    try:
        yield
    finally:
        with _POOL_LOCK:
            _pool_users -= 1
            if _pool_users == 0:
                pa.set_memory_pool(_pool_before)


class IntakeError(ValueError):
    """A file that cannot be read as a table; the message says where and why (JA / EN)."""


MISSING = frozenset({"", "null", "na", "n/a", "#n/a", "nan", "none", "空欄", "該当なし", "-",
                     "--", "ー", "―", "‐", "—"})
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")  # OWASP: what a spreadsheet would execute
XLSX_MAGIC = b"PK\x03\x04"

# Start of each era (Gregorian year of its first year, first month and day). Fixed by law:
# 明治 改元の詔 1868 (in force from 1868-01-25 by the Meiji calendar conversion), 大正 1912-07-30,
# 昭和 1926-12-25, 平成 1989-01-08 (元号を改める政令 昭和64年政令第1号), 令和 2019-05-01
# (元号を改める政令 平成31年政令第143号). Letters are the abbreviations forms use (R8.3).
ERAS: dict[str, dt.date] = {"明治": dt.date(1868, 1, 25), "大正": dt.date(1912, 7, 30),
                            "昭和": dt.date(1926, 12, 25), "平成": dt.date(1989, 1, 8),
                            "令和": dt.date(2019, 5, 1)}
ERA_LETTERS = {"M": "明治", "T": "大正", "S": "昭和", "H": "平成", "R": "令和"}
_SEP = r"\s*[-/.年]\s*"
_DAY = r"(?:\s*[-/.月]?\s*(?P<d>\d{1,2})\s*日?)?"
_WESTERN = re.compile(rf"^(?P<y>\d{{4}}){_SEP}(?P<m>\d{{1,2}})\s*月?{_DAY}$")
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})?$")
_ERA = re.compile(rf"^(?P<era>明治|大正|昭和|平成|令和|[MTSHR])\s*(?P<y>\d{{1,2}}|元){_SEP}"
                  rf"(?P<m>\d{{1,2}})\s*月?{_DAY}$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_WHOLE_FLOAT = re.compile(r"^([+-]?\d+)\.0+$")


def nfkc(text: str) -> str:
    """NFKC-normalised, trimmed text: full-width digits/letters, Roman numerals Ⅱ -> II."""
    return unicodedata.normalize("NFKC", text).strip()


def header_key(name: str) -> str:
    """How headers are compared: NFKC, case-folded, without spaces or a leading safety quote."""
    return re.sub(r"\s+", "", nfkc(unquote(name.lstrip("\ufeff")))).casefold()


def unquote(text: str) -> str:
    """Text without the one leading `'` a formula-safe download put before = + - @ tab CR."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_LEAD:
        return text[1:]
    return text


def era_year(era: str, year: int) -> int:
    """Gregorian year of 和暦 `era` year `year` (令和8 -> 2026); era as kanji or letter."""
    name = ERA_LETTERS.get(era.upper(), era)
    if name not in ERAS or year < 1:
        raise ValueError(f"unknown era or year: {era}{year}")
    return ERAS[name].year + year - 1


def parse_date_parts(text: str) -> tuple[int, int, int | None] | None:
    """(year, month, day or None) from ISO, slash, 年月日, compact or 和暦 forms; None if not a
    date. 和暦 dates before their era began (R1.4) are rejected: a typo, not a date."""
    text = nfkc(text)
    match = _WESTERN.match(text) or _COMPACT.match(text)
    era = None
    if match is None:
        match = _ERA.match(text)
        if match is None:
            return None
        era = match["era"]
        y = 1 if match["y"] == "元" else int(match["y"])
        year = era_year(era, y) if y >= 1 else 0
    else:
        year = int(match["y"])
    month, day = int(match["m"]), (int(match["d"]) if match["d"] else None)
    try:
        first = dt.date(year, month, day or 1)
    except ValueError:
        return None
    if era is not None:
        start = ERAS[ERA_LETTERS.get(era.upper(), era)]
        if (first.year, first.month, day or 31) < (start.year, start.month, start.day):
            return None
    return year, month, day


def parse_month(text: str) -> str | None:
    """'YYYY-MM' from any date or month form (a full date gives its month); None otherwise."""
    parts = parse_date_parts(text)
    return None if parts is None else f"{parts[0]:04d}-{parts[1]:02d}"


def parse_date(text: str) -> str | None:
    """'YYYY-MM-DD' from a full date in any accepted form; None for a month or a non-date."""
    parts = parse_date_parts(text)
    if parts is None or parts[2] is None:
        return None
    return f"{parts[0]:04d}-{parts[1]:02d}-{parts[2]:02d}"


def normalise_number(text: str) -> str:
    """'1354' for '1,354' or '１，３５４', '50' for '50.0'; anything else as NFKC text."""
    text = nfkc(text)
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    whole = _WHOLE_FLOAT.match(text)
    return whole[1] if whole else text


@dataclass(frozen=True)
class Layout:
    """How one task's tables are read.

    `ids` are kept as written (trimmed, safety quote removed); `numbers`, `months` and `dates`
    get their own normalisation; every other column is a category (NFKC, missing tokens).
    `labels` are categories whose every value is a name (an experiment's arm: a control arm
    called "none" or "NA"): NFKC'd like the others, but never read as missing.
    `headers` maps alias -> canonical name (compared by `header_key`); `header_hook` may map a
    header the table does not list (Excel-mangled item numbers). `values` maps, per canonical
    column, an NFKC'd value (compared case-folded) onto the value validation expects.
    `pad` restores the leading zero Excel drops from a fixed-width code (012050 shown as 12050).
    """

    ids: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()
    months: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    headers: Mapping[str, str] = field(default_factory=dict)
    header_hook: Callable[[str], str | None] | None = None
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pad: Mapping[str, int] = field(default_factory=dict)
    names_ja: Mapping[str, str] = field(default_factory=dict)
    labels: frozenset[str] = frozenset()

    @cached_property
    def alias_keys(self) -> dict[str, str]:
        """{header_key(alias or canonical name): canonical name}."""
        table = {header_key(a): c for a, c in self.headers.items()}
        for canonical in (*self.headers.values(), *self.ids, *self.numbers, *self.months,
                          *self.dates, *self.values):
            table.setdefault(header_key(canonical), canonical)
        return table

    def canonical(self, header: str) -> str:
        """The canonical column name for a header as the file spells it."""
        key = header_key(header)
        table = self.alias_keys
        if key in table:
            return table[key]
        hooked = self.header_hook(nfkc(unquote(header))) if self.header_hook else None
        return hooked if hooked is not None else nfkc(unquote(header.lstrip("\ufeff")))


@dataclass
class Table:
    """A read table: string cells under canonical headers, and each row's Excel line number."""

    frame: pd.DataFrame
    lines: np.ndarray  # int, same length as frame: the row's line in Excel (header = 1)
    name: str = ""
    renamed: dict[str, str] = field(default_factory=dict)  # canonical -> header as written


def where(idx: Sequence[int] | np.ndarray, lines: np.ndarray | int, limit: int = 5,
          ) -> tuple[str, str]:
    """('3, 7行目', 'rows 3, 7') for 0-based row positions, with Excel row numbers taken
    from `lines` (a Table's) or, for an int, position + that offset."""
    idx = np.asarray(idx, dtype=int)
    nums = (idx + lines) if isinstance(lines, int | np.integer) else np.asarray(lines)[idx]
    shown = ", ".join(str(int(n)) for n in nums[:limit])
    more = len(nums) - limit
    ja = f"{shown}行目" + (f" ほか{more}行" if more > 0 else "")
    en = f"row{'s' if len(nums) > 1 else ''} {shown}" + (f" and {more} more" if more > 0
                                                         else "")
    return ja, en


def read_table(raw: bytes, layout: Layout, *, name: str = "", rows: str = "rows",
               error: type[ValueError] = IntakeError) -> Table:
    """Bytes of a CSV/TSV/xlsx upload -> Table; `error` (the caller's type) when unreadable.

    `rows` names what the file should hold (for the empty-file message).
    """
    with system_arrow_pool():
        return _read_table(raw, layout, name, rows, error)


def _read_table(raw: bytes, layout: Layout, name: str, rows: str, error: type[ValueError],
                ) -> Table:
    label = f"'{name}' " if name else ""
    if not raw[:4096].strip() and not raw.strip():  # no copy of a large file's bytes
        raise error(f"ファイル{label}が空です / file {label}is empty: expected a header row "
                    f"and {rows}")
    if raw.startswith(XLSX_MAGIC):
        frame = _read_xlsx(raw, label, error)
    else:
        fast = read_utf8_fast(raw)
        frame = fast if fast is not None else read_text(decode(raw, label, error), label, error)
    frame.columns = [str(c) for c in frame.columns]
    lines = np.arange(2, len(frame) + 2)
    keep = non_blank(frame)
    if not keep.all():
        frame, lines = frame[keep].reset_index(drop=True), lines[keep]
    frame, renamed = _rename(frame, layout, label, error)
    for col in frame.columns:
        frame[col] = normalise_column(frame[col], col, layout)
    return Table(frame, lines, name, renamed)


def decode(raw: bytes, label: str = "", error: type[ValueError] = IntakeError) -> str:
    """Text of a delimited file: UTF-16 (BOM), UTF-8 (BOM or not), else Shift_JIS/cp932.

    A mostly UTF-8 file with rows in another encoding is refused naming those rows (numbered
    as Excel shows them, assuming no line breaks inside cells).
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise error(f"ファイル{label}を UTF-16 として読めません / file {label}is not valid "
                        f"UTF-16 (byte {exc.start})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    mixed = _mixed_lines(raw)
    if mixed is not None:
        raise error(mixed.format(label=label))
    try:
        return raw.decode("cp932")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"ファイル{label}{line}行目: UTF-8 でも Shift_JIS でもない文字があります / "
                    f"file {label}line {line}: neither UTF-8 nor Shift_JIS/cp932; save it as "
                    "CSV (UTF-8) or CSV (Shift_JIS)") from None


def _mixed_lines(raw: bytes) -> str | None:
    """A message template naming the non-UTF-8 rows of a mostly UTF-8 file, else None.

    Only this direction is detected: a Shift_JIS line can be valid UTF-8 by chance (short
    kanji values often are), so "a Shift_JIS file with UTF-8 rows" cannot be told reliably,
    while a line that fails UTF-8 surely is not UTF-8.
    """
    utf8, other = 0, []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            other.append(n)
            if len(other) >= 20 and utf8 < len(other):
                return None  # plainly a Shift_JIS file: stop reading line by line
    if not utf8 or not other or utf8 < len(other):
        return None
    ja, en = where(np.array(other) - 1, 1)
    return ("ファイル{label}は UTF-8 ですが " + ja + " が Shift_JIS などの別の文字コードです"
            "（貼り付けた行？） / file {label}is UTF-8 but " + en
            + " use another encoding (Shift_JIS pasted in?); retype or re-save those rows")


def read_text(text: str, label: str = "", error: type[ValueError] = IntakeError,
              ) -> pd.DataFrame:
    """Decoded delimited text as a frame of strings (comma, or tab when the header has more
    tabs than commas); blank lines kept as rows so positions match Excel's rows."""
    first = text[:text.find("\n")]  # not split(): no copy of a 20 MB text
    sep = "\t" if first.count("\t") > first.count(",") else ","
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep,
                           skip_blank_lines=False).fillna("")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise error(f"ファイル{label}を CSV として読めません / file {label}is not a readable "
                    f"CSV: {exc}") from None


def read_utf8_fast(raw: bytes) -> pd.DataFrame | None:
    """The frame `read_text(decode(raw))` gives, parsed by pyarrow's multithreaded CSV reader
    straight from the bytes; None wherever the two could differ, so the caller takes the
    general path (which also gives every error message).

    Only a regular UTF-8 file (BOM or not) takes this path: pyarrow checks the UTF-8 and that
    every row has as many fields as the header, and refuses otherwise (blank lines, short or
    long rows, a Shift_JIS or UTF-16 file). Header names come from pandas' own parse of the
    header line (so duplicates become 'a.1', empty ones 'Unnamed: i', as on the general path).
    Measured on 808,780 claim lines (99 MB): see bench/claims_csv.py and README.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    end = raw.find(b"\n", start)
    if end < 0:
        return None  # a header alone: the general path says so
    first = raw[start:end]
    if first.count(b'"') % 2 or not first.strip():
        return None  # a line break inside a quoted header, or a blank first line
    try:
        head = first.decode("utf-8")
    except UnicodeDecodeError:
        return None
    sep = "\t" if head.count("\t") > head.count(",") else ","
    try:
        names = [str(c) for c in pd.read_csv(io.StringIO(head), dtype=str, sep=sep, nrows=0,
                                             keep_default_na=False).columns]
        keys = [f"c{i}" for i in range(len(names))]
        table = pacsv.read_csv(
            pa.py_buffer(raw)[end + 1:],
            read_options=pacsv.ReadOptions(column_names=keys),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=b'"' in raw,
                                             ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={k: pa.large_string() for k in keys}, strings_can_be_null=False,
                quoted_strings_can_be_null=False, null_values=[]))
    except (pa.ArrowInvalid, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if table.num_rows == 0:
        return None
    dtype = pd.StringDtype("pyarrow", na_value=np.nan)
    frame = table.to_pandas(types_mapper={pa.large_string(): dtype}.get)  # no cast
    frame.columns = names
    return frame


def _read_xlsx(raw: bytes, label: str, error: type[ValueError]) -> pd.DataFrame:
    """First sheet of a workbook as strings, as Excel shows them (header = row 1)."""
    from openpyxl import load_workbook  # only xlsx uploads pay for the import

    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        rows = [[_cell_text(v) for v in row] for row in book.worksheets[0].iter_rows(
            values_only=True)]
        book.close()
    except Exception as exc:  # openpyxl raises many types; any of them means a broken file
        raise error(f"ファイル{label}を Excel ブックとして読めません / file {label}is not a "
                    f"readable xlsx workbook ({type(exc).__name__})") from None
    if not rows:
        raise error(f"ファイル{label}のシートが空です / file {label}: the first sheet is empty")
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    header = rows[0]
    while header and header[-1] == "" and all(r[len(header) - 1] == "" for r in rows):
        header = header[:-1]
    width = len(header)
    return pd.DataFrame([r[:width] for r in rows[1:]], columns=header, dtype=str)


def _cell_text(value: object) -> str:
    """A cell as text: integer-valued floats without '.0', dates in ISO."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    return str(value)


def non_blank(frame: pd.DataFrame) -> np.ndarray:
    """Mask of rows with at least one non-blank cell (Excel leaves ',,,,' rows after deletions)."""
    keep = np.ones(len(frame), dtype=bool)
    if not len(frame.columns):
        return keep
    # only rows blank in the first column can be blank rows: check the others on those alone
    candidates = np.flatnonzero((frame.iloc[:, 0].str.strip() == "").to_numpy(dtype=bool))
    blank = np.ones(len(candidates), dtype=bool)
    for col in frame.columns[1:]:
        if not blank.any():
            break
        blank &= (frame[col].iloc[candidates].str.strip() == "").to_numpy(dtype=bool)
    keep[candidates[blank]] = False
    return keep


def _rename(frame: pd.DataFrame, layout: Layout, label: str, error: type[ValueError],
            ) -> tuple[pd.DataFrame, dict[str, str]]:
    """Headers onto canonical names; two headers naming the same column is an error."""
    seen: dict[str, str] = {}
    names = []
    for i, header in enumerate(frame.columns):
        if header.startswith("Unnamed: ") or not header.strip():
            # a column without a header: Excel's empty trailing columns, or unnamed notes
            names.append("" if not (frame.iloc[:, i] != "").any() else f"Unnamed: {i}")
            continue
        canonical = layout.canonical(header)
        if canonical in seen:
            raise error(f"ファイル{label}1行目: 列 '{seen[canonical]}' と '{header}' はどちらも "
                        f"'{canonical}' です / file {label}row 1: columns '{seen[canonical]}' "
                        f"and '{header}' both mean '{canonical}'")
        seen[canonical] = header
        names.append(canonical)
    frame.columns = names
    if "" in names:
        frame = frame.drop(columns=[""])
    return frame, {c: h for c, h in seen.items() if c != h}


def normalise_column(column: pd.Series, name: str, layout: Layout) -> pd.Series:
    """Column `name` normalised by its kind in `layout`; each distinct value is mapped once."""
    if name in layout.ids:
        text = column.str.strip()
        if text.str.startswith("'").any():
            text = text.str.replace(r"^'(?=[=+\-@\t\r])", "", regex=True).str.strip()
        return text
    codes, uniques = pd.factorize(column, sort=False)
    convert = _converter(name, layout)
    new = [convert(u) for u in uniques]
    if all(a == b for a, b in zip(new, uniques, strict=True)):
        return column
    # the distinct values as strings, then gathered by code (in C, not per cell in Python)
    values = pd.Series(new, dtype=column.dtype).array.take(codes)
    return pd.Series(values, index=column.index, name=column.name)


def _converter(name: str, layout: Layout) -> Callable[[str], str]:
    aliases = {nfkc(k).casefold(): v for k, v in layout.values.get(name, {}).items()}
    width = layout.pad.get(name)
    missing: frozenset[str] = frozenset() if name in layout.labels else MISSING

    def convert(value: str) -> str:
        text = nfkc(unquote(value.strip()))
        if text.casefold() in missing:
            return ""
        text = aliases.get(text.casefold(), text)
        if name in layout.numbers:
            text = normalise_number(text)
        elif name in layout.months:
            text = parse_month(text) or text
        elif name in layout.dates:
            text = parse_date(text) or text
        if width and text.isdigit() and len(text) == width - 1:
            text = "0" + text  # codes never start with 00 (prefectures are 01-47)
        return text

    return convert


def aliases(pairs: Iterable[tuple[str, Iterable[str]]]) -> dict[str, str]:
    """{alias: canonical} from (canonical, its aliases) pairs, for a Layout's `headers`."""
    return {alias: canonical for canonical, names in pairs for alias in names}
