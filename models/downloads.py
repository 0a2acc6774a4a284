"""The one writer for every file staff download: CSV in UTF-8 with BOM, CSV in cp932 (Shift_JIS),
.xlsx and GeoJSON. Every table download of every task (claim queues, outreach lists, care-plan
batches, road exports, cost tables, the `kyodo` CLI files) goes through `table_bytes`.

Formula injection (OWASP "CSV Injection"): a text cell that starts with `=`, `+`, `-`, `@`, tab or
carriage return is run as a formula by Excel and LibreOffice (`=HYPERLINK(...)`, `@SUM(...)`,
`+81-90-...`). Downloads make every such text inert:

- CSV: one single quote `'` is put in front of it (`=1+1` -> `'=1+1`). Text that already starts
  with quotes followed by one of those characters gets one more quote (`'=x` -> `''=x`), so the
  rule can be undone exactly.
- xlsx: the cell is written as a string cell (never a formula, never an error code such as
  `#N/A`) with Excel's own "quote prefix" style, so Excel shows `=1+1` as typed text and does not
  turn it into a formula even when the cell is edited. The text itself is unchanged, except for the
  same extra quote in front of quotes-then-trigger text as in CSV.
- GeoJSON: string properties get the CSV rule (a GIS attribute table is often saved as CSV).

Real numbers (numeric columns, including negative amounts such as a saving of -1,200 yen) stay
numbers in every format: only text is ever quoted.

The pair with uploads: the upload intake removes exactly one leading `'` in front of `=`, `+`,
`-`, `@`, tab or CR, so a file this writer produced reads back with the same values (the shared
upload intake; tests/unit/test_downloads.py `intake_unquote` mirrors it). Keep the two in step.

cp932: Shift_JIS cannot hold every character (e.g. 𠮷, JIS X 0213 kanji, emoji). Writing `?`
silently would change names and ids, so `table_bytes` raises `DownloadError` naming the row and
column and pointing to the UTF-8 download; HTTP answers 422 `{"error": ...}`
(serving/downloads.py turns a table into an attachment response).

No HTTP here: `kyodo` commands in training/ write the same files without the service.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd

FileFormat = Literal["csv", "csv_cp932", "xlsx"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV Injection
_RISKY = re.compile(r"'*[=+\-@\t\r]")  # trigger text, or quotes then a trigger (see docstring)
# Characters Windows writes with another code point in cp932 than Python's codec expects; the
# same glyph, so no meaning is lost (EM DASH -> HORIZONTAL BAR, as Windows' best fit does).
_CP932_SAME = str.maketrans({"\u2014": "\u2015"})
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # control characters xlsx cannot hold
_XLSX_ERRORS = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))


class DownloadError(ValueError):
    """A table that cannot be written in the requested format; the message names the cell."""


def neutralise(value: Any) -> Any:
    """A text value made inert for spreadsheets (one `'` in front); anything else unchanged."""
    if isinstance(value, str) and _RISKY.match(value):
        return "'" + value
    return value


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns
            if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype)]


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with every risky text cell and header quoted for CSV; numbers untouched."""
    out = frame.rename(columns=lambda c: neutralise(str(c)))
    for col in _text_columns(out):
        # vectorised: only the risky cells are rewritten (a per-cell map took ~1 s per
        # 300,000-row outreach list); non-text cells in an object column never match
        text = out[col]
        if pd.api.types.infer_dtype(text, skipna=True) == "string":  # Arrow's regex, in C++
            text = text.astype("string[pyarrow]")
        risky = text.astype(object).str.match(_RISKY.pattern, na=False).to_numpy(bool) \
            if text.dtype == object else text.str.match(_RISKY.pattern).fillna(False)\
            .to_numpy(bool)
        if risky.any():
            out[col] = out[col].mask(risky, "'" + out[col][risky].astype(str))
    return out


def _cell_name(frame: pd.DataFrame, col: Any, i: int) -> str:
    """Where a cell is as staff see it in Excel: the header is line 1, data starts on line 2."""
    return f"「{col}」列 {i + 2} 行目 / column {col!r}, line {i + 2}"


def _first_bad(frame: pd.DataFrame, bad: Any) -> tuple[Any, int, str] | None:
    """(column, row index, character) of the first text cell where `bad(text)` finds a
    character, scanning the header and then each text column."""
    for col in frame.columns:
        if (ch := bad(str(col))) is not None:
            return col, -1, ch
    for col in _text_columns(frame):
        hits = frame[col].map(lambda v: bad(v) if isinstance(v, str) else None)
        found = hits.notna().to_numpy().nonzero()[0]
        if len(found):
            return col, int(found[0]), hits.iloc[found[0]]
    return None


def _not_cp932(text: str) -> str | None:
    try:
        text.translate(_CP932_SAME).encode("cp932")
    except UnicodeEncodeError as exc:
        return exc.object[exc.start]
    return None


def _csv_bytes(frame: pd.DataFrame, fmt: FileFormat, line_end: str = "\r\n") -> bytes:
    text = safe_frame(frame).to_csv(index=False, lineterminator=line_end)  # CRLF: as Excel
    if fmt == "csv":
        return ("\ufeff" + text).encode("utf-8")  # BOM so Excel detects UTF-8
    try:
        return text.translate(_CP932_SAME).encode("cp932")
    except UnicodeEncodeError:
        col, i, ch = _first_bad(safe_frame(frame), _not_cp932) or ("?", -1, "?")
        where = f"見出し「{col}」/ header {col!r}" if i < 0 else _cell_name(frame, col, i)
        raise DownloadError(
            f"{where}: 「{ch}」(U+{ord(ch):04X}) は Shift_JIS（cp932）にない文字です。"
            f"UTF-8 の CSV（format=csv）または Excel（format=xlsx）でダウンロードしてください / "
            f"{ch!r} cannot be written in Shift_JIS (cp932); download the UTF-8 CSV "
            "(format=csv) or Excel (format=xlsx) instead") from None


def _plain(value: Any) -> Any:
    """A pandas / numpy cell as a value openpyxl writes: None for missing, Python scalars."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_localize(None).to_pydatetime() if value.tzinfo else value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, (str, bool, int, float, date, datetime)):
        return value
    return str(value)  # lists, dicts, decimals: as text, never an object openpyxl refuses


def _xlsx_row(ws: Any, values: Iterable[Any], line: int, names: list[Any]) -> list[Any]:
    """Cells of one sheet row: every text is a string cell; risky text carries Excel's quote
    prefix (shown as typed, never evaluated)."""
    from openpyxl.cell import WriteOnlyCell

    row = []
    for col, raw in zip(names, values, strict=True):
        value = _plain(raw)
        if not isinstance(value, str):
            row.append(value)
            continue
        if _XLSX_ILLEGAL.search(value):
            raise DownloadError(
                f"「{col}」列 {line} 行目 / column {col!r}, line {line}: 制御文字を含むため "
                "Excel に書けません。CSV（format=csv）でダウンロードしてください / contains a "
                "control character Excel cannot hold; download the CSV (format=csv) instead")
        if not _RISKY.match(value) and value not in _XLSX_ERRORS:
            row.append(value)  # openpyxl writes it as a plain string cell
            continue
        cell = WriteOnlyCell(ws, value="")
        cell.value = "'" + value if value.startswith("'") and _RISKY.match(value) else value
        cell.data_type = "s"  # openpyxl would make '=...' a formula and '#N/A' an error
        if value.startswith(FORMULA_START):
            cell.quotePrefix = True
        row.append(cell)
    return row


def _xlsx_bytes(frame: pd.DataFrame) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    names = [str(c) for c in frame.columns]
    ws.append(_xlsx_row(ws, names, 1, names))
    for i, values in enumerate(frame.itertuples(index=False, name=None)):
        ws.append(_xlsx_row(ws, values, i + 2, names))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def table_bytes(frame: pd.DataFrame, fmt: FileFormat, line_end: str = "\r\n") -> bytes:
    """The table encoded as the requested file format, formula-safe (module docstring).

    Raises DownloadError when a cp932 file cannot hold a character (or an xlsx a control
    character): the message names the column and line and suggests the UTF-8 download.
    """
    if fmt == "xlsx":
        return _xlsx_bytes(frame)
    return _csv_bytes(frame, fmt, line_end)


def safe_properties(value: Any) -> Any:
    """GeoJSON properties (nested lists and dicts too) with every risky string quoted."""
    if isinstance(value, dict):
        return {k: safe_properties(v) for k, v in value.items()}
    if isinstance(value, list):
        return [safe_properties(v) for v in value]
    return neutralise(value)


def geojson_bytes(collection: dict[str, Any]) -> bytes:
    """A FeatureCollection as UTF-8 GeoJSON with formula-safe string properties."""
    features = [{**f, "properties": safe_properties(f.get("properties") or {})}
                for f in collection.get("features", [])]
    return json.dumps({**collection, "features": features}, ensure_ascii=False).encode()


def write_table(frame: pd.DataFrame, path: Any, encoding: str = "utf-8-sig",
                line_end: str = "\r\n") -> None:
    """The table written to a file by the CLI with the same rules: `encoding` utf-8-sig (Excel),
    utf-8 (no BOM) or cp932; `line_end` CRLF (Excel) or LF; a path ending in .xlsx writes Excel."""
    if str(path).lower().endswith(".xlsx"):
        data = table_bytes(frame, "xlsx")
    elif encoding.replace("_", "-").lower() in ("cp932", "shift-jis", "sjis", "ms932"):
        data = table_bytes(frame, "csv_cp932", line_end)
    else:
        data = table_bytes(frame, "csv", line_end)
        if encoding.replace("_", "-").lower() in ("utf-8", "utf8"):
            data = data[len("\ufeff".encode()):]
    with open(path, "wb") as fh:
        fh.write(data)
