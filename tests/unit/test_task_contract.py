"""The Task protocol's optional hooks: every task inherits their defaults, and training/ reads
them without probing (models/task.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from models.task import FilesFrames, Frames, Task, attached_files, registry
from training.pooling import judged


class ToyConfig(BaseModel):
    share: float = 0.5


class Toy(Task[ToyConfig, float]):
    """A task that overrides none of the optional hooks."""

    name = "toy"
    Config = ToyConfig
    frames = ("rows",)
    units = ("row_id",)

    def evaluate(self, cfg: ToyConfig, model: float, test: Frames) -> dict[str, Any]:
        return {"headline": {"metric": "mean_x", "value": model * test["rows"]["x"].mean()}}


def test_every_registered_task_subclasses_the_protocol() -> None:
    for name, task in registry().items():
        assert Task in type(task).__mro__, name  # inherits the defaults below
        assert task.name == name


def test_defaults_of_the_optional_hooks() -> None:
    toy = Toy()
    rows = pd.DataFrame({"row_id": ["a", "b", "c"], "tenant_code": ["1", "2", "1"],
                         "x": [1.0, 2.0, 4.0]})
    assert toy.file_columns == {}
    assert toy.pooling_metric(ToyConfig(), 2.0, {"rows": rows}) == ("mean_x", 2.0 * 7 / 3)
    assert judged(toy, ToyConfig(), 2.0, {"rows": rows}) == ("mean_x", 2.0 * 7 / 3)
    # the bootstrap's metric: pooling_metric on the resample it is given, not on `test`
    on_resample = toy.bootstrap_metric(ToyConfig(), 2.0, {"rows": rows})
    assert on_resample({"rows": rows.iloc[[2, 2, 0]]}) == 2.0 * 9 / 3
    assert list(toy.select({"rows": rows}, ["1"])["rows"]["row_id"]) == ["a", "c"]


class Untouchable:
    """A TaskData that fails on any use: the default feedback hook must not write data."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the default apply_feedback used data.{name}")


def test_the_default_feedback_hook_takes_no_feedback(tmp_path: Path) -> None:
    from serving.store import Store

    store = Store(tmp_path / "kyodo.db")
    assert Toy().apply_feedback(store, Untouchable()) == {}


def test_overrides_are_the_tasks_own() -> None:
    tasks = registry()
    assert tasks["road_damage"].file_columns == {"photos": ("file", "mask_file")}
    assert type(tasks["claim_screening"]).pooling_metric is not Task.pooling_metric
    assert type(tasks["care_plan"]).pooling_metric is Task.pooling_metric
    own_bootstrap = {n for n, t in tasks.items() if type(t).bootstrap_metric
                     is not Task.bootstrap_metric}
    assert own_bootstrap == {"care_plan"}  # its headline recommends ~1,000 plans per person
    own_feedback = {n for n, t in tasks.items() if type(t).apply_feedback
                    is not Task.apply_feedback}
    assert own_feedback == {"claim_screening", "road_damage"}  # `kyodo retrain` reads them


def test_attached_files_only_from_files_frames() -> None:
    frames = {"photos": pd.DataFrame({"photo_id": ["p"]})}
    assert attached_files(frames) == {}
    assert attached_files(FilesFrames(frames, {"images/p.jpg": b"x"})) == {"images/p.jpg": b"x"}
