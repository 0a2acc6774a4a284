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


def test_road_corrections_become_training_photos_once(tmp_path: Path) -> None:
    import numpy as np

    from models.road_damage.analyze import summarise
    from serving.store import Store
    from tests.conftest import SMALL_ROAD
    from training.data import load_pooled, write_generated
    from training.retrain import apply_feedback

    ws = Workspace.load(sandbox.make_workspace(tmp_path, "road_damage", SMALL_ROAD))
    task = ws.task("road_damage")
    write_generated(ws, task, progress=False)
    before = load_pooled(ws, task, progress=False)
    first = before["photos"].iloc[0]
    probs = np.zeros((12, 5), np.float32)
    probs[:, 0] = 0.9  # the model saw no damage on any of the 4 x 3 tiles
    result = {"index": 0, "name": "patrol.jpg", "overlay": b"\x89PNG",
              "image": Path(first["file"]).read_bytes(), **summarise(probs, 4, 3, 0.5)}
    store = Store(ws.path("state") / "kyodo.db")
    store.save_road_batch("b1", "121002", "1", [result])
    store.save_road_corrections("121002", [
        {"batch_id": "b1", "index": 0, "row": 1, "col": 2, "correct": False, "labels": ["D20"]}])
    assert apply_feedback(ws, task) == {"121002": {"changed": 1, "tiles": 12}}
    assert apply_feedback(ws, task) == {"121002": {"changed": 1, "tiles": 12}}
    after = load_pooled(ws, task, progress=False)  # validated by the task's schema
    assert len(after["photos"]) == len(before["photos"]) + 1  # added once, replaced after
    tiles = after["tiles"][after["tiles"]["photo_id"] == "121002-fb-b1-0"]
    assert len(tiles) == 12
    fixed = tiles[(tiles["row"].astype(int) == 1) & (tiles["col"].astype(int) == 2)].iloc[0]
    assert int(fixed["D20"]) == 1 and int(fixed["none"]) == 0
    assert int(tiles["none"].astype(int).sum()) == 11


def test_retrain_road_damage_turns_corrections_into_a_gated_new_version(
        tmp_path: Path, monkeypatch) -> None:
    """End to end: champion v1 -> a crew's correction and a municipality's imported image +
    mask photo (`kyodo road import masks`, README's onboarding path) -> retrain -> v2 trained
    on both, gated."""
    import json

    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from models.road_damage.analyze import summarise
    from serving.store import Store
    from tests.conftest import SMALL_ROAD
    from training.cli import app
    from training.retrain import retrain

    root = sandbox.build_champion(sandbox.make_workspace(tmp_path, "road_damage", SMALL_ROAD),
                                  "road_damage")
    ws = Workspace.load(root)
    task = ws.task("road_damage")
    first = pd.read_csv(frame_path(ws, task, "photos", "121002"), dtype=str).iloc[0]
    photo = (ws.path("data") / task.name / first["file"]).read_bytes()
    probs = np.zeros((12, 5), np.float32)
    probs[:, 0] = 0.9
    result = {"index": 0, "name": "patrol.jpg", "overlay": b"\x89PNG", "image": photo,
              **summarise(probs, 4, 3, 0.5)}
    store = Store(ws.path("state") / "kyodo.db")
    store.save_road_batch("b1", "121002", "1", [result])
    store.save_road_corrections("121002", [
        {"batch_id": "b1", "index": 0, "row": 0, "col": 0, "correct": False, "labels": ["D00"]}])
    def tiles_seen() -> int:  # every tile of the data: fitted, validated or held out
        ev = json.loads((root / "build" / task.name / "evaluation.json").read_text())
        return sum(ev["overall"][k] for k in ("train_tiles", "val_tiles", "tiles"))

    v1_tiles = tiles_seen()
    for folder in ("img", "gt"):
        (tmp_path / folder).mkdir()
    Image.fromarray(np.full((192, 256, 3), 110, np.uint8)).save(tmp_path / "img" / "a.jpg")
    mask = np.zeros((192, 256), np.uint8)
    mask[10:60, 20:22] = 255
    Image.fromarray(mask).save(tmp_path / "gt" / "a.png")
    monkeypatch.setenv("KYODO_ROOT", str(root))
    imported = CliRunner().invoke(app, ["road", "import", "masks", str(tmp_path / "img"),
                                        str(tmp_path / "gt"), "--tenant", "012050", "--append"])
    assert imported.exit_code == 0, imported.output
    assert "next: kyodo retrain road_damage" in imported.output
    summary = retrain(ws, task, progress=False)
    assert tiles_seen() == v1_tiles + 12 + 12  # the corrected photo and the imported one
    assert summary["feedback"] == {"121002": {"changed": 1, "tiles": 12}}
    assert summary["labels_changed"] == 1 and summary["candidate_version"] == "2"
    decision = summary["decision"]
    assert decision["promoted"] or "does not beat champion" in decision["reason"]
    photos = pd.read_csv(frame_path(ws, task, "photos", "121002"), dtype=str)
    assert "121002-fb-b1-0" in set(photos["photo_id"])
    assert summary["headline"]["metric"] == "tile_crack_f1"
