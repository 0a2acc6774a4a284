"""The Task contract every kyodo task implements, and the registry of the listed tasks.

training/ and serving/ only talk to tasks through this protocol. Data moves as a `Frames`
mapping (frame name -> DataFrame, e.g. {"lines", "labels"}), each frame carrying a
`tenant_code` column so the pipeline can split, pool and report per municipality. A tenant's
frames may carry binary files beside them (road photos and masks): a `FilesFrames`.

Each task class subclasses `Task[its Config, its fitted model]`, so it inherits the optional
hooks' defaults (`file_columns`, `pooling_metric`, `bootstrap_metric`, `apply_feedback`) and a
type checker holds its methods to the protocol; training/ code generic in `C` and `M` keeps a
task's config and model types together.

The registry holds no task: it imports `models.<name>.task` by import path for each name in
configs/platform.yaml's `tasks` (models/configs.py task_names), so this module imports no task
package and a new task is one folder and one line in that list (README: Adding a task).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from models.configs import Tenant, known_task, task_names
from models.split import select_tenants

if TYPE_CHECKING:
    import pandera.pandas as pa

    from serving.store import Store  # the HTTP-free durable store (a type only: no import)

Frames = Mapping[str, pd.DataFrame]
C = TypeVar("C", bound=BaseModel)  # a task's config (configs/<task>.yaml validated)
M = TypeVar("M")  # a task's fitted native model (what `fit` returns and build/<task>/model.pkl)


class FilesFrames(dict[str, pd.DataFrame]):
    """A tenant's frames plus binary files (path relative to the task's data folder -> bytes),
    which training/data.py writes beside the CSV files."""

    def __init__(self, frames: Mapping[str, pd.DataFrame], files: dict[str, bytes]) -> None:
        super().__init__(frames)
        self.files = files


def attached_files(frames: Frames) -> dict[str, bytes]:
    """The binary files a tenant's frames carry: a FilesFrames' files, else none."""
    return frames.files if isinstance(frames, FilesFrames) else {}


class TaskData(Protocol):
    """One task's data folder (data/<task>/) as a feedback hook writes it; training/data.py
    TaskFolder is it for a workspace. Frames are text: every column str, as in the CSV."""

    def read(self, frame: str, code: str) -> pd.DataFrame:
        """A tenant's frame as text; FileNotFoundError naming the file when it is missing."""

    def replace(self, frame: str, code: str, df: pd.DataFrame) -> None:
        """Write a tenant's frame anew."""

    def add(self, code: str, frames: Frames, keys: Mapping[str, list[str]]) -> None:
        """Add rows (and a FilesFrames' files): a row whose `keys[frame]` columns match one
        already there replaces it, so adding the same rows twice never duplicates them."""


Feedback = dict[str, dict[str, int]]  # per tenant code: counts, "changed" among them


class Task(Protocol[C, M]):
    """What a task provides to the shared pipeline."""

    name: str
    Config: type[C]
    frames: tuple[str, ...]  # frame names in a data folder, e.g. ("lines", "labels")
    # Bootstrap unit (a column of frames[0]: person, patient, photo) first, then the other id
    # columns that link frames; resampling draws units and renames every copy's ids.
    units: tuple[str, ...]
    # Optional: CSV columns per frame holding paths relative to data/<task>/ (training/data.py
    # resolves them to absolute paths when it reads the frame).
    file_columns: ClassVar[dict[str, tuple[str, ...]]] = {}

    def schema(self, frame: str) -> pa.DataFrameSchema:
        """The pandera schema of one frame."""

    def generate(self, cfg: C, tenants: list[Tenant], seed: int) -> Mapping[str, Frames]:
        """Synthetic data per tenant code, with ground truth (the oracle) in its frames."""

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        """Typed, validated frame or a ValueError naming field and row."""

    def split(self, cfg: C, data: Frames) -> tuple[Frames, Frames]:
        """Train and held-out parts (held-out months, persons or photos)."""

    def select(self, data: Frames, tenant_codes: list[str]) -> Frames:
        """Only the given tenants' rows. Default: each frame's rows by its tenant_code column."""
        return select_tenants(data, self.frames, tenant_codes)

    def fit(self, cfg: C, train: Frames, progress: bool = False, seed: int = 0) -> M:
        """A fitted native model."""

    def evaluate(self, cfg: C, model: M, test: Frames) -> dict[str, Any]:
        """Metrics: 'overall', 'per_tenant' and 'headline' (see training/report.py)."""

    def to_onnx(self, model: M, opset: int) -> dict[str, bytes]:
        """Named ONNX graphs for the model."""

    def parity_inputs(self, model: M, test: Frames) -> tuple[dict[str, np.ndarray],
                                                                dict[str, np.ndarray]]:
        """(graph name -> input matrix, graph name -> native output) for the parity gate."""

    def onnx_outputs(self, session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The exported model's outputs under the same names as parity_inputs' native ones."""

    def plots(self, model: M, test: Frames, out: Path) -> list[Path]:
        """Task-specific evaluation plots written under `out`."""

    def feature_names(self, model: M) -> list[str]:
        """Names of the ONNX input's columns, for drift reports (empty for image inputs)."""

    def assets(self, model: M) -> dict[str, bytes]:
        """Non-ONNX files serving needs (reference tables, labels)."""

    def pooling_metric(self, cfg: C, model: M, test: Frames) -> tuple[str, float]:
        """(name, value) of the metric pooling is judged on. Default: the headline; a task
        overrides it where its headline saturates on a small tenant's holdout (so cannot rank
        models) or costs too much for the bootstrap's hundreds of calls."""
        head = self.evaluate(cfg, model, test)["headline"]
        return str(head["metric"]), float(head["value"])

    def bootstrap_metric(self, cfg: C, model: M, test: Frames) -> Callable[[Frames], float]:
        """The pooling metric of `model` as a function of a bootstrap resample of `test`
        (training/pooling.py `resample`: units drawn with replacement, the k-th copy's ids
        suffixed "#k"); the pooling report calls it on each of its resamples. Default:
        pooling_metric on the resample. A task whose metric costs much per unit may work out
        each held-out unit's part once here and combine the parts per resample; it must return
        what pooling_metric returns on the resample, to the last bit."""
        return lambda sample: float(self.pooling_metric(cfg, model, sample)[1])

    def apply_feedback(self, store: Store, data: TaskData) -> Feedback:
        """Staff feedback the service recorded in `store` written into this task's data, first
        step of `kyodo retrain` (training/retrain.py); per tenant code the counts, with
        "changed" (rows added or altered). Default: the task takes no feedback ({})."""
        return {}

    def comparison_config(self, cfg: C) -> C:
        """The config of the models fitted only to be compared with the pooled one on a
        tenant's holdout (the pooling report's local-only and others-only models). Default: cfg.
        A task may leave out what only costs time there: data every tenant shares alike (it is
        no tenant's) where it does not move the pooling metric, and outputs the metric does not
        read. The task says why the comparison stays fair."""
        return cfg


AnyTask = Task[Any, Any]  # a task from the registry: each has its own config and model types


def task_module(name: str) -> str:
    """Import path of a task's module by convention: models/<name>/task.py."""
    return f"models.{name}.task"


def load_task(name: str) -> AnyTask:
    """The task `name` from its module, imported by path: the one `Task` subclass defined there
    whose `name` is `name`. ValueError for an unlisted name (listing the tasks); ImportError
    naming the module and the convention when the package or the class is missing."""
    known_task(name)
    module = importlib.import_module(task_module(name))
    found = [v for v in vars(module).values() if isinstance(v, type) and Task in v.__mro__
             and v.__module__ == module.__name__ and getattr(v, "name", None) == name]
    if len(found) != 1:
        raise ImportError(f"{module.__file__}: expected one Task subclass with name = {name!r}, "
                          f"found {len(found)} (README: Adding a task)")
    return found[0]()


def registry() -> dict[str, AnyTask]:
    """Every listed task by name, in configs/platform.yaml's order. Serving never calls it: it
    loads a task module (load_task) only for a task without its own serving module, served by
    the generic routes (serving/generic.py), and never the four real tasks'."""
    return {name: load_task(name) for name in task_names()}


def get_task(name: str) -> AnyTask:
    """The task called `name`, or a ValueError listing the known ones. Imports only that task."""
    return load_task(name)
