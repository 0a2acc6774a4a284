"""Bounds every request model shares: integers within their domain, strings that are valid
Unicode (no lone surrogates, which JSON allows and UTF-8 cannot encode) and of bounded length,
free-form objects of bounded size and depth.

A value outside these bounds is a 422 naming the field; without them a 2**63 reached SQLite
and a lone surrogate reached the keyed hash, both as HTTP 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# 請求点数 of one claim or line: 8 digits in the レセ電 record layout (≤ 99,999,999 点)
Points = Annotated[int, Field(ge=0, le=99_999_999)]
# 投与日数 / 回数: 3 and 5 digits in the レセ電 layout
Days = Annotated[int, Field(ge=0, le=999)]
Count = Annotated[int, Field(ge=0, le=99_999)]
# a photo in a batch or a tile in a photo's grid; batches hold at most a few dozen photos
Index = Annotated[int, Field(ge=0, le=9_999)]
Yen = Annotated[float, Field(ge=0, le=1e12)]
# array lengths of JSON bodies; CSV uploads are bounded by rows and bytes (serving/uploads.py)
MAX_LINES = 2_000  # lines of one claim (an inpatient month has hundreds)
MAX_SCORE = 10_000  # rows of a single-request score (claims, residents)
MAX_QUEUE_JSON = 100_000  # claims of a JSON queue (a month's CSV may have up to a million)
MAX_ROWS_JSON = 100_000  # residents or persons of a JSON roster or batch
MAX_ROSTER_CSV = 1_000_000  # roster CSV lines (Naha's 特定健診 targets: tens of thousands)
MAX_PERSONS_CSV = 100_000  # 認定調査 CSV lines of one care_plan batch
MAX_TEXT = 10_000  # characters of any string without its own max_length
MAX_KEYS = 512  # keys of a free-form object (a roster row, a survey: 74 items)
MAX_DEPTH = 4  # nesting of free-form values inside one field


def check_text(value: Any, depth: int = 0) -> Any:
    """Raise ValueError for a lone surrogate, an over-long string, an over-large or over-deep
    container anywhere in a free-form value; return the value unchanged otherwise."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"text longer than {MAX_TEXT} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text is not valid Unicode (a lone surrogate such as \\ud800)"
                             ) from None
        return value
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict) and len(value) > MAX_KEYS:
            raise ValueError(f"more than {MAX_KEYS} keys")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            check_text(key, depth)
            check_text(item, depth + 1)
    return value


class RequestModel(BaseModel):
    """Base of every JSON request body: unknown keys refused, floats finite, strings bounded
    and valid Unicode at any depth."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=MAX_TEXT)

    @field_validator("*", mode="after")
    @classmethod
    def _valid_text(cls, value: Any) -> Any:
        if isinstance(value, BaseModel):  # validated by its own class
            return value
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            return value
        return check_text(value)
