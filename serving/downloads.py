"""Downloads over HTTP: a table or GeoJSON as an attachment response, written by the one
formula-safe writer (models/downloads.py, whose docstring gives the rules)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import HTTPException
from fastapi.responses import Response

from models.downloads import DownloadError, FileFormat, geojson_bytes, table_bytes

MEDIA = {"csv": "text/csv; charset=utf-8", "csv_cp932": "text/csv; charset=shift_jis",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "geojson": "application/geo+json"}


def _attachment(body: bytes, media: str, filename: str) -> Response:
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def download(frame: pd.DataFrame, fmt: FileFormat, stem: str) -> Response:
    """An attachment response for the table; 422 `{"error": ...}` naming the cell when the
    format cannot hold it (DownloadError)."""
    ext = "xlsx" if fmt == "xlsx" else "csv"
    suffix = "-sjis" if fmt == "csv_cp932" else ""
    try:
        body = table_bytes(frame, fmt)
    except DownloadError as exc:
        raise HTTPException(422, str(exc)) from None
    return _attachment(body, MEDIA[fmt], f"{stem}{suffix}.{ext}")


def geojson_download(collection: dict[str, Any], stem: str) -> Response:
    """An attachment response for a GeoJSON FeatureCollection (see `geojson_bytes`)."""
    return _attachment(geojson_bytes(collection), MEDIA["geojson"], f"{stem}.geojson")
