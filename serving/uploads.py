"""Request bodies that are either JSON or a CSV file (raw text/csv or a multipart upload)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, RootModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.configs import ServingLimits

B = TypeVar("B", bound=BaseModel)
T = TypeVar("T")
MAX_FILES = 200  # UKE months arrive as one file per 医療機関, sent together in one form
CSV_TYPES = ("text/csv", "application/octet-stream", "text/plain", "text/tab-separated-values",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class CsvBody(RootModel[str]):
    """A CSV file as the request body (UTF-8 or Shift_JIS, header row first)."""


class UkeBody(RootModel[bytes]):
    """A レセ電 (UKE) file as the request body, recognised by its content (IR/YK records)."""


class FileForm(BaseModel):
    """A multipart form with the file in field `file` (CSV, Excel, or what the endpoint reads
    besides: UKE files, 特定健診 XML or ZIPs; several `file` parts where it says so)."""

    file: list[bytes] = Field(min_length=1, max_length=MAX_FILES)


class PhotoForm(BaseModel):
    """A multipart form with the photos in repeated `files` parts."""

    files: list[bytes] = Field(min_length=1)


def request_body(content: dict[str, type[BaseModel]]) -> dict[str, Any]:
    """A route's `openapi_extra` for a body it reads itself in several media types: each
    media type's schema is its model's JSON schema (`$defs` are moved to components by
    serving/api.py), never written by hand. The route still parses and bounds the body."""
    return {"requestBody": {"required": True, "content": {
        media: {"schema": model.model_json_schema()} for media, model in content.items()}}}


# what the JSON-or-file endpoints take besides their JSON model
CSV_UPLOAD: dict[str, type[BaseModel]] = {"text/csv": CsvBody,
                                          "multipart/form-data": FileForm}


class Upload(bytes):
    """An uploaded file's bytes that remember the file's name (for error messages)."""

    name: str = ""

    @classmethod
    def named(cls, data: bytes, name: str) -> Upload:
        """The bytes `data` of the file called `name`."""
        upload = cls(data)
        upload.name = name
        return upload


async def json_or_csv(request: Request, model: type[B], max_rows: int | None = None,
                      ) -> tuple[B | None, bytes | None]:
    """(validated JSON body, None) or (None, the CSV file's bytes); 415/422 otherwise, 413 for
    a CSV over serving.max_csv_columns columns or max_rows (default serving.max_csv_rows)
    lines, checked on the bytes before any CSV parser runs. The body's size limit is enforced
    while it streams in (serving/guard.py)."""
    raw = await _body(request, model)
    if isinstance(raw, BaseModel):
        return raw, None
    limits = _limits(request)
    check_csv_shape(raw, limits.max_csv_columns, max_rows or limits.max_csv_rows)
    return None, raw


async def _body(request: Request, model: type[B]) -> B | bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        # json.loads, then validation, as FastAPI does for typed bodies: a lone surrogate in a
        # string then reaches the model's Unicode check, which names the field
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError) as exc:
            raise HTTPException(422, f"body: not valid JSON ({exc})") from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise HTTPException(422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
                                ) from None
    if ctype == "multipart/form-data":
        try:
            upload = (await request.form(max_files=MAX_FILES, max_fields=20)).get("file")
        except StarletteHTTPException as exc:  # e.g. a text field over Starlette's 1 MB
            if exc.status_code == 413:  # the body limit (serving/guard.py) says it all
                raise
            if str(exc.detail).startswith("Too many files"):  # Starlette's max_files
                raise HTTPException(413, f"file: 1回に送れるファイルは {MAX_FILES} 個までです。"
                                         "特定健診XMLはZIPにまとめて送れます / at most "
                                         f"{MAX_FILES} files per request (特定健診 XML can "
                                         "be sent as one ZIP)") from None
            raise HTTPException(exc.status_code, f"file: {exc.detail}; send the CSV as a file "
                                "part (with a filename) in the form field 'file'") from None
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "file: expected a CSV file in the form field 'file'")
        return Upload.named(await upload.read(), upload.filename or "")
    if ctype in CSV_TYPES:
        return await request.body()
    raise HTTPException(415, f"content-type {ctype or 'missing'}: send application/json, "
                             "text/csv or multipart/form-data")


HEADER_SCAN = 1_000_000  # bytes searched for the end of the header line


def check_csv_shape(raw: bytes, max_columns: int, max_rows: int) -> None:
    """413 when the header line has more than max_columns columns (or no line end in its
    first HEADER_SCAN bytes) or the file more than max_rows lines; byte counts only, so a
    header of a million columns is refused in milliseconds (pandas took a minute and GBs).
    Quoted line breaks count as lines: the row count is an upper bound."""
    if raw.startswith(b"PK\x03\x04"):  # an xlsx (zip): its size limit is the body's
        return
    end = raw.find(b"\n", 0, HEADER_SCAN)
    header = raw[:end] if end >= 0 else raw[:HEADER_SCAN]
    if end < 0 and len(raw) > HEADER_SCAN:
        raise HTTPException(413, f"CSV header: no line end in the first {HEADER_SCAN:,} bytes "
                                 f"(at most {max_columns} columns)")
    columns = max(header.count(sep) for sep in (b",", b"\t", b";")) + 1
    if columns > max_columns:
        raise HTTPException(413, f"CSV header: {columns:,} columns; at most {max_columns:,} "
                                 "(serving.max_csv_columns) (列が多すぎます)")
    rows = raw.count(b"\n")
    if rows > max_rows:
        raise HTTPException(413, f"CSV: {rows:,} lines; at most {max_rows:,} per upload "
                                 "(行が多すぎます)")


async def uploaded_files(request: Request, raw: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of every file in a multipart form's field 'file', else the raw body as
    [(its name or 'upload', raw)]; 422 for a text part."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return [(getattr(raw, "name", "") or "upload", raw)]
    out = []
    for i, upload in enumerate((await request.form()).getlist("file")):
        if isinstance(upload, str):
            raise HTTPException(422, f"file {i + 1}: expected a file, got a text field")
        await upload.seek(0)  # json_or_csv has read one of them already
        out.append((upload.filename or f"file{i + 1}", await upload.read()))
    return out


def _limits(request: Request) -> ServingLimits:
    from serving.deps import runtime_of

    rt = runtime_of(request.app)
    return rt.platform.serving if rt is not None else ServingLimits()


async def parse_csv(raw: bytes, read: Callable[[bytes], T], what: str) -> T:
    """Parse and validate an uploaded table (CSV/TSV/xlsx, models.intake) off the event loop;
    400 if empty, 422 if invalid, naming the uploaded file when it has a name."""
    try:
        return await run_in_threadpool(read, raw)
    except ValueError as exc:
        name = getattr(raw, "name", "")
        label = f"{what} '{name}'" if name else what
        raise HTTPException(422 if raw.strip() else 400, f"{label}: {exc}") from None
