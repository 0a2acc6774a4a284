"""kyodo retrain: reviewer feedback becomes labels, a new model is trained and gated."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from models.claim_screening.feedback import merge_feedback
from training import sandbox
from training.data import frame_path
from training.workspace import Workspace


def test_merge_feedback_counts_changed_unchanged_and_unknown() -> None:
    labels = pd.DataFrame({"claim_id": ["a", "b", "c"], "error_type": ["", "E1", ""],
                           "recoverable_points": ["0", "120", "0"]})
    feedback = pd.DataFrame({"claim_id": ["a", "b", "zz"], "error_type": ["confirmed", "E1", ""],
                             "recoverable_points": ["300", "120", "0"]})
    merged, counts = merge_feedback(labels, feedback)
    assert counts == {"changed": 1, "unchanged": 1, "unknown": 1}
    row = merged.set_index("claim_id").loc["a"]
    assert row["error_type"] == "confirmed" and int(row["recoverable_points"]) == 300
    assert list(merged["claim_id"]) == ["a", "b", "c"]


def test_retrain_applies_feedback_and_gates_the_new_version(tmp_path: Path) -> None:
    from serving.store import Store
    from tests.conftest import SMALL
    from training.retrain import retrain

    root = sandbox.build_champion(sandbox.make_workspace(tmp_path, "claim_screening", SMALL),
                                  "claim_screening")
    ws = Workspace.load(root)
    task = ws.task("claim_screening")
    path = frame_path(ws, task, "labels", "402303")
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    clean = labels[labels["error_type"] == ""]["claim_id"].tail(40).tolist()  # held-out months
    Store(ws.path("state") / "kyodo.db").save_feedback("402303", "claim_screening", [
        {"claim_id": c, "error_confirmed": True, "error_type": "confirmed",
         "recovered_points": 500} for c in clean] + [
        {"claim_id": "402303-209912-9999999", "error_confirmed": False}])
    summary = retrain(ws, task, progress=False)
    assert summary["feedback"]["402303"] == {"changed": 40, "unchanged": 0, "unknown": 1}
    relabelled = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("claim_id")
    assert (relabelled.loc[clean, "error_type"] == "confirmed").all()
    assert summary["holdout_changed"] and summary["candidate_version"] == "2"
    decision = summary["decision"]
    assert decision["promoted"] or "does not beat champion" in decision["reason"]
    assert summary["headline"]["before"] is not None and summary["headline"]["after"] > 0
    assert set(summary["per_tenant"]) >= {"402303"}
