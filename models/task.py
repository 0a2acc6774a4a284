"""The Task contract every kyodo task implements, and the explicit registry of tasks.

training/ and serving/ only talk to tasks through this protocol. Data moves as a `Frames`
mapping (frame name -> DataFrame, e.g. {"lines", "labels"}), each frame carrying a
`tenant_code` column so the pipeline can split, pool and report per municipality.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel

from models.configs import Tenant

Frames = Mapping[str, pd.DataFrame]


class Task(Protocol):
    """What a task provides to the shared pipeline."""

    name: str
    Config: type[BaseModel]
    frames: tuple[str, ...]  # frame names in a data folder, e.g. ("lines", "labels")
    # Bootstrap unit (a column of frames[0]: person, patient, photo) first, then the other id
    # columns that link frames; resampling draws units and renames every copy's ids.
    units: tuple[str, ...]

    def schema(self, frame: str) -> Any:
        """The pandera schema of one frame."""

    def generate(self, cfg: Any, tenants: list[Tenant], seed: int) -> dict[str, Frames]:
        """Synthetic data per tenant code, with ground truth (the oracle) in its frames."""

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        """Typed, validated frame or a ValueError naming field and row."""

    def split(self, cfg: Any, data: Frames) -> tuple[Frames, Frames]:
        """Train and held-out parts (held-out months, persons or photos)."""

    def select(self, data: Frames, tenant_codes: list[str]) -> Frames:
        """Only the given tenants' rows."""

    def fit(self, cfg: Any, train: Frames, progress: bool = False, seed: int = 0) -> Any:
        """A fitted native model."""

    def evaluate(self, cfg: Any, model: Any, test: Frames) -> dict[str, Any]:
        """Metrics: 'overall', 'per_tenant' and 'headline' (see training/report.py)."""

    def to_onnx(self, model: Any, opset: int) -> dict[str, bytes]:
        """Named ONNX graphs for the model."""

    def parity_inputs(self, model: Any, test: Frames) -> tuple[dict[str, np.ndarray],
                                                                dict[str, np.ndarray]]:
        """(graph name -> input matrix, graph name -> native output) for the parity gate."""

    def onnx_outputs(self, session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The exported model's outputs under the same names as parity_inputs' native ones."""

    def plots(self, model: Any, test: Frames, out: Path) -> list[Path]:
        """Task-specific evaluation plots written under `out`."""

    def feature_names(self, model: Any) -> list[str]:
        """Names of the ONNX input's columns, for drift reports (empty for image inputs)."""

    def assets(self, model: Any) -> dict[str, bytes]:
        """Non-ONNX files serving needs (reference tables, labels)."""


def registry() -> dict[str, Task]:
    """Every task by name; imports lazily so serving only loads what it serves."""
    from models.care_plan.task import CarePlan
    from models.checkup_nudge.task import CheckupNudge
    from models.claim_screening.task import ClaimScreening
    from models.road_damage.task import RoadDamage

    return {"claim_screening": ClaimScreening(), "checkup_nudge": CheckupNudge(),
            "care_plan": CarePlan(), "road_damage": RoadDamage()}


def get_task(name: str) -> Task:
    """The task called `name`, or a ValueError listing the known ones."""
    tasks = registry()
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(tasks))}")
    return tasks[name]
