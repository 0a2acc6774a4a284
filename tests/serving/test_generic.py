"""The generic routes of a listed task without serving/<task>.py (serving/generic.py): the
request row typed from the task's schema, and the tasks it refuses at start. The routes answering
through the app with a trained champion: tests/unit/test_tasks_list.py's toy task."""

from __future__ import annotations

import importlib
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pandera.pandas as pa
import pytest
from pydantic import BaseModel, ValidationError

from models.task import Task
from serving import generic
from serving.generic import TaskWiringError, generic_router

ROWS = pa.DataFrameSchema({"row_id": pa.Column(str), "n": pa.Column(int),
                           "x": pa.Column(float, description="an input"), "b": pa.Column(bool),
                           "at": pa.Column("datetime64[ns]")})


class Cfg(BaseModel):
    pass


class Rows(Task[Cfg, float]):
    name = "rows"
    Config = Cfg
    frames = ("rows",)
    units = ("row_id",)

    def schema(self, frame: str) -> Any:
        return ROWS


class NoSchema(Rows):
    name = "no_schema"

    def schema(self, frame: str) -> Any:
        return None  # what a Task that never declares schema() gives


def test_the_row_is_typed_by_the_schema_and_only_the_unit_is_required() -> None:
    row = generic._row_model(Rows(), "rows", "row_id")
    props = row.model_json_schema()["properties"]
    assert [props[c]["anyOf"][0] for c in ("n", "x", "b", "at")] == [
        {"type": "integer"}, {"type": "number"}, {"type": "boolean"},
        {"type": "string", "format": "date-time"}]
    assert props["x"]["description"] == "an input"
    assert row.model_json_schema()["required"] == ["row_id"]
    ok = row.model_validate({"row_id": "a", "x": "1.5", "at": "2026-04-01T00:00:00"})
    assert ok.x == 1.5 and ok.at == datetime(2026, 4, 1) and ok.n is None
    with pytest.raises(ValidationError, match="z"):
        row.model_validate({"row_id": "a", "z": 1})  # unknown columns are refused
    with pytest.raises(ValidationError, match="n"):
        row.model_validate({"row_id": "a", "n": "many"})


def test_a_task_without_a_schema_stops_the_service() -> None:
    with pytest.raises(TaskWiringError, match=r"models/no_schema/task\.py: schema\('rows'\)"):
        generic._row_model(NoSchema(), "rows", "row_id")


def test_an_unlisted_task_stops_the_service() -> None:
    with pytest.raises(TaskWiringError, match="'nope' is not listed"):
        generic_router("nope")


def test_a_task_importing_the_training_stack_stops_the_service(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A task module that imports a training library (here a stand-in module) would load it
    into every serving worker: refused, naming the module and the library."""
    (tmp_path / "kyodo_heavy_standin.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(generic, "TRAINING_STACK", ("kyodo_heavy_standin",))

    def load(name: str) -> Rows:
        importlib.import_module("kyodo_heavy_standin")
        return Rows()

    monkeypatch.setattr(generic, "load_task", load)
    try:
        with pytest.raises(TaskWiringError, match=r"models/care_plan/task\.py imports "
                                                  "kyodo_heavy_standin"):
            generic._task("care_plan")
    finally:
        sys.modules.pop("kyodo_heavy_standin", None)
