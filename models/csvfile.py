"""CSV text helpers for callers that need plain strings; models.intake does the real reading.

Kept for the readers that take already-decoded text (campaign logs, randomised-experiment
files): the same decoding (UTF-8 with or without BOM, cp932, UTF-16, mixed rows named) and
the same blank-row and header rules as every upload.
"""

from __future__ import annotations

import pandas as pd

from models import intake


class CsvInputError(ValueError):
    """A file that cannot be read as CSV; the message says why."""


def decode(raw: bytes, rows: str = "rows", error: type[ValueError] = CsvInputError) -> str:
    """Text of an uploaded CSV (see models.intake.decode).

    `rows` names what the file should hold; `error` is the caller's own input-error type.
    """
    if not raw.strip():
        raise error(f"ファイルが空です / file is empty: expected a CSV with a header row and "
                    f"{rows}")
    return intake.decode(raw, "", error)


def read_csv_text(text: str, error: type[ValueError] = CsvInputError) -> pd.DataFrame:
    """Every column as strings (comma or tab, CRLF or LF), headers NFKC'd and trimmed, fully
    blank rows dropped; validation converts types."""
    frame = intake.read_text(text, "", error)
    frame = frame[intake.non_blank(frame)].reset_index(drop=True)
    frame.columns = [intake.nfkc(str(c).lstrip("\ufeff")) for c in frame.columns]
    return frame
