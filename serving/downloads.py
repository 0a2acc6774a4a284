"""Tables as files staff open: CSV in UTF-8 with BOM, CSV in cp932 (Shift_JIS), and .xlsx."""

from __future__ import annotations

import io
from typing import Literal

import pandas as pd
from fastapi.responses import Response

FileFormat = Literal["csv", "csv_cp932", "xlsx"]
MEDIA = {"csv": "text/csv; charset=utf-8", "csv_cp932": "text/csv; charset=shift_jis",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def table_bytes(frame: pd.DataFrame, fmt: FileFormat) -> bytes:
    """The table encoded as the requested file format."""
    if fmt == "xlsx":
        buf = io.BytesIO()
        frame.to_excel(buf, index=False, engine="openpyxl")
        return buf.getvalue()
    text = frame.to_csv(index=False, lineterminator="\r\n")  # CRLF: what Excel on Windows writes
    if fmt == "csv_cp932":
        return text.encode("cp932", errors="replace")
    return ("\ufeff" + text).encode("utf-8")  # BOM so Excel detects UTF-8


def download(frame: pd.DataFrame, fmt: FileFormat, stem: str) -> Response:
    """An attachment response for the table."""
    ext = "xlsx" if fmt == "xlsx" else "csv"
    suffix = "-sjis" if fmt == "csv_cp932" else ""
    return Response(table_bytes(frame, fmt), media_type=MEDIA[fmt], headers={
        "Content-Disposition": f'attachment; filename="{stem}{suffix}.{ext}"'})
