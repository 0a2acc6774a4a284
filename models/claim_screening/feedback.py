"""Reviewer outcomes as labels: the latest reviewer decision replaces a claim's label."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from models.task import Feedback, TaskData

if TYPE_CHECKING:
    from serving.store import Store

LABEL_COLUMNS = ["claim_id", "error_type", "recoverable_points"]


def merge_feedback(labels: pd.DataFrame, feedback: pd.DataFrame,
                   ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labels with reviewer outcomes applied, and counts: changed, unchanged, and unknown
    (claims the data has no lines for; they wait for the month's claim export)."""
    fb = feedback.drop_duplicates("claim_id", keep="last").set_index("claim_id")
    merged = labels.set_index("claim_id").copy()
    known = fb.index.intersection(merged.index)
    before = merged.loc[known, LABEL_COLUMNS[1:]].astype(str)
    merged.loc[known, "error_type"] = fb.loc[known, "error_type"].fillna("").astype(str)
    merged.loc[known, "recoverable_points"] = (fb.loc[known, "recoverable_points"]
                                               .astype(int).astype(str))
    after = merged.loc[known, LABEL_COLUMNS[1:]].astype(str)
    changed = int((before != after).any(axis=1).sum())
    counts = {"changed": changed, "unchanged": len(known) - changed,
              "unknown": len(fb) - len(known)}
    return merged.reset_index()[LABEL_COLUMNS], counts


def apply_feedback(store: Store, data: TaskData, task: str = "claim_screening") -> Feedback:
    """Reviewer outcomes recorded by the service -> data/claim_screening/labels/<code>.csv;
    per tenant the counts of merge_feedback."""
    out: Feedback = {}
    with tempfile.TemporaryDirectory() as tmp:
        for code in store.export_labels(task, Path(tmp)):
            feedback = pd.read_csv(Path(tmp) / f"{code}.csv", dtype=str, keep_default_na=False)
            merged, out[code] = merge_feedback(data.read("labels", code), feedback)
            data.replace("labels", code, merged)
    return out
