"""Request bodies that are either JSON or a CSV file (raw text/csv or a multipart upload)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError

B = TypeVar("B", bound=BaseModel)
T = TypeVar("T")
CSV_TYPES = ("text/csv", "application/octet-stream", "text/plain", "text/tab-separated-values",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class Upload(bytes):
    """An uploaded file's bytes that remember the file's name (for error messages)."""

    name: str = ""

    @classmethod
    def named(cls, data: bytes, name: str) -> Upload:
        """The bytes `data` of the file called `name`."""
        upload = cls(data)
        upload.name = name
        return upload


async def json_or_csv(request: Request, model: type[B]) -> tuple[B | None, bytes | None]:
    """(validated JSON body, None) or (None, the CSV file's bytes); 415/422 otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            return model.model_validate_json(await request.body()), None
        except ValidationError as exc:
            first = exc.errors()[0]
            raise HTTPException(422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
                                ) from None
    if ctype == "multipart/form-data":
        upload = (await request.form()).get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "file: expected a CSV file in the form field 'file'")
        return None, Upload.named(await upload.read(), upload.filename or "")
    if ctype in CSV_TYPES:
        return None, await request.body()
    raise HTTPException(415, f"content-type {ctype or 'missing'}: send application/json, "
                             "text/csv or multipart/form-data")


async def parse_csv(raw: bytes, read: Callable[[bytes], T], what: str) -> T:
    """Parse and validate an uploaded table (CSV/TSV/xlsx, models.intake) off the event loop;
    400 if empty, 422 if invalid, naming the uploaded file when it has a name."""
    try:
        return await run_in_threadpool(read, raw)
    except ValueError as exc:
        name = getattr(raw, "name", "")
        label = f"{what} '{name}'" if name else what
        raise HTTPException(422 if raw.strip() else 400, f"{label}: {exc}") from None
