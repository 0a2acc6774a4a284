"""Request bodies that are either JSON or a CSV file (raw text/csv or a multipart upload)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pandas as pd
from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError

B = TypeVar("B", bound=BaseModel)
CSV_TYPES = ("text/csv", "application/octet-stream", "text/plain")


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
        return None, await upload.read()
    if ctype in CSV_TYPES:
        return None, await request.body()
    raise HTTPException(415, f"content-type {ctype or 'missing'}: send application/json, "
                             "text/csv or multipart/form-data")


async def parse_csv(raw: bytes, read: Callable[[bytes], pd.DataFrame], what: str) -> pd.DataFrame:
    """Parse and validate uploaded CSV bytes off the event loop; 400 if empty, 422 if invalid."""
    try:
        return await run_in_threadpool(read, raw)
    except ValueError as exc:
        raise HTTPException(422 if raw.strip() else 400, f"{what}: {exc}") from None
