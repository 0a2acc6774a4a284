"""Data files: data/<task>/<tenant>.csv (inputs) and data/<task>/labels/<tenant>.csv (outcomes).

A task whose data includes binary files (road_damage: photos and masks) returns, per tenant, a
models.task.FilesFrames ({path relative to data/<task>/: bytes} in `files`), written beside the
CSV files; its `file_columns` ({frame: columns}) name the CSV columns holding such relative
paths, which read_frame makes absolute. Tasks without either are unaffected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from models.task import Frames, Task, attached_files
from training.workspace import Workspace


def frame_path(ws: Workspace, task: Task, frame: str, code: str) -> Path:
    """Where one tenant's frame is stored: the first frame (the input) at the task folder's top,
    the others (labels) in sub-folders named after them."""
    base = ws.path("data") / task.name
    return base / f"{code}.csv" if frame == task.frames[0] else base / frame / f"{code}.csv"


def write_generated(ws: Workspace, task: Task, progress: bool = True) -> dict[str, int]:
    """Generate synthetic data for every subscriber and write it; returns rows per tenant."""
    cfg = ws.task_config(task)
    tenants = ws.subscribers(task.name)
    per_tenant = task.generate(cfg, tenants, ws.platform.seed)
    counts = {}
    for code, frames in tqdm(per_tenant.items(), desc=f"write {task.name}", disable=not progress):
        write_tenant(ws, task, code, frames)
        counts[code] = len(frames[task.frames[0]])
    return counts


def write_tenant(ws: Workspace, task: Task, code: str, frames: Frames) -> None:
    """One tenant's frames as CSV files, and its binary files (if any) beside them."""
    for frame, df in frames.items():
        _write_csv(frame_path(ws, task, frame, code), df)
    _write_files(ws, task, frames)


def append_tenant(ws: Workspace, task: Task, code: str, frames: Frames,
                  keys: Mapping[str, list[str]]) -> None:
    """Add rows (and binary files) to a tenant's data: a row whose keys are already there
    replaces the old one, so re-adding the same photos or labels never duplicates them."""
    for name, df in frames.items():
        path = frame_path(ws, task, name, code)
        old = pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None
        new = df.astype(str)
        merged = new if old is None else pd.concat([old, new]).drop_duplicates(keys[name],
                                                                               keep="last")
        _write_csv(path, merged)
    _write_files(ws, task, frames)


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, lineterminator="\n")


def _write_files(ws: Workspace, task: Task, frames: Frames) -> None:
    """A FilesFrames' binary files under data/<task>/ (none for plain frames)."""
    for rel, blob in attached_files(frames).items():
        path = ws.path("data") / task.name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)


@dataclass(frozen=True)
class TaskFolder:
    """A task's data folder in a workspace, as its feedback hook writes it (models/task.py
    TaskData): frames as text, the first frame at the folder's top (frame_path)."""

    ws: Workspace
    task: Task

    def read(self, frame: str, code: str) -> pd.DataFrame:
        """A tenant's frame as text; FileNotFoundError naming the file when it is missing."""
        path = frame_path(self.ws, self.task, frame, code)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run `kyodo data generate` or add the file")
        return pd.read_csv(path, dtype=str, keep_default_na=False)

    def replace(self, frame: str, code: str, df: pd.DataFrame) -> None:
        """Write a tenant's frame anew."""
        _write_csv(frame_path(self.ws, self.task, frame, code), df)

    def add(self, code: str, frames: Frames, keys: Mapping[str, list[str]]) -> None:
        """append_tenant."""
        append_tenant(self.ws, self.task, code, frames, keys)


def read_frame(ws: Workspace, task: Task, frame: str, code: str) -> pd.DataFrame:
    """One tenant's frame, validated by the task's schema."""
    path = frame_path(ws, task, frame, code)
    df = TaskFolder(ws, task).read(frame, code)
    try:
        df = task.validate(frame, df)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    for col in task.file_columns.get(frame, ()):
        base = ws.path("data") / task.name
        df[col] = [str(base / v) if v else "" for v in df[col]]
    return df


def load_pooled(ws: Workspace, task: Task, progress: bool = True, consent_only: bool = True,
                ) -> Frames:
    """Every subscribing tenant's frames concatenated (only tenants that consent to pooling)."""
    tenants = [t for t in ws.subscribers(task.name) if t.pooling_consent or not consent_only]
    parts: dict[str, list[pd.DataFrame]] = {f: [] for f in task.frames}
    for t in tqdm(tenants, desc=f"load {task.name}", disable=not progress):
        for frame in task.frames:
            parts[frame].append(read_frame(ws, task, frame, t.code))
    if not tenants:
        raise ValueError(f"no tenant with pooling consent subscribes to {task.name}")
    return {f: pd.concat(v, ignore_index=True) for f, v in parts.items()}
