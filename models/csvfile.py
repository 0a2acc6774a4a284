"""CSV files as municipalities export them: UTF-8 (with or without BOM) or Shift_JIS/cp932."""

from __future__ import annotations

import io

import pandas as pd


class CsvInputError(ValueError):
    """A file that cannot be read as CSV; the message says why."""


def decode(raw: bytes, rows: str = "rows", error: type[ValueError] = CsvInputError) -> str:
    """Text of an uploaded CSV: UTF-8 (with or without BOM), else Shift_JIS/cp932.

    `rows` names what the file should hold; `error` is the caller's own input-error type.
    """
    if not raw.strip():
        raise error(f"file is empty: expected a CSV with a header row and {rows}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp932")
    except UnicodeDecodeError as exc:
        raise error(
            f"file is neither UTF-8 nor Shift_JIS/cp932 (undecodable byte at offset {exc.start})"
        ) from exc


def read_csv_text(text: str, error: type[ValueError] = CsvInputError) -> pd.DataFrame:
    """Every column as strings (CRLF or LF, header names stripped); validation converts types."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise error(f"not a readable CSV: {exc}") from exc
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame
