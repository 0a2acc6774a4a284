"""assets/road_masks (manifest, data card, masks) and bench/road_masks.py's scoring (no model)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.road_masks import (
    ASSETS,
    CRACK_SHARE,
    SPLITS,
    answer_cells,
    cell_truth,
    diagnostics,
    gate_held_out,
    load_manifest,
    merge_point,
    parse_args,
    pick_onboard,
    scratch_overrides,
    summary,
    transfer_cut,
    truth_level,
)

ALLOWED = ("MIT", "CC BY 4.0", "CC BY-SA 4.0", "Apache-2.0", "BSD")


def test_manifest_matches_the_data_card_and_the_files() -> None:
    rows = load_manifest()
    card = (ASSETS / "DATA_CARD.md").read_text()
    for split in SPLITS:
        n = sum(r["split"] == split for r in rows)
        assert re.search(rf"^\| {split} \| {n} \|", card, re.M), (split, n)
    assert len({r["file"] for r in rows}) == len(rows)
    for r in rows:
        assert r["commit"] in card and r["source"].removeprefix("github:") in card
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"])
        assert r["licence"].startswith(ALLOWED), r["licence"]
        assert not re.search(r"\bNC\b|non-?commercial", r["licence"], re.I)
    # a survey segment never straddles the split (overlapping frames)
    seg = {}
    for r in rows:
        assert seg.setdefault(r["segment"], r["split"]) == r["split"], r["segment"]
    size = sum((ASSETS / r[k]).stat().st_size for r in rows for k in ("file", "mask"))
    assert size < 15_000_000


def test_masks_are_binary_and_the_photos_size() -> None:
    for r in load_manifest():
        photo, mask = Image.open(ASSETS / r["file"]), Image.open(ASSETS / r["mask"])
        assert mask.mode == "1", r["mask"]
        assert photo.size == mask.size == (int(r["width"]), int(r["height"])), r["file"]
        share = float(np.asarray(mask).mean())
        assert abs(share - float(r["crack_share"])) < 1e-4, r["mask"]


def test_no_training_code_reads_the_mask_photos() -> None:
    """A check set: nothing under models/, training/ or configs/ may name it."""
    from tests.unit.test_road_street import training_code_naming

    assert training_code_naming("road_masks") == []


def test_manifest_errors_name_row_and_field(tmp_path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    bad = tmp_path / "manifest.csv"
    bad.write_text("file,mask,split,segment\na.jpg,a.png,check,s\na.jpg,a.png,train,s\n")
    with pytest.raises(ValueError, match=r"row 3 \(a.jpg\): split 'train'"):
        load_manifest(bad)
    bad.write_text("file,mask,split,segment\na.jpg,b.png,check,s\n")
    with pytest.raises(ValueError, match=r"row 2: mask 'b\.png' is missing"):
        load_manifest(bad)


def test_cell_truth_keeps_crack_and_clean_cells_and_leaves_out_the_rest() -> None:
    mask = np.zeros((20, 40), bool)  # 2 x 4 cells of 10 x 10 px
    mask[0:10, 0:2] = True  # cell (0, 0): 20% crack
    mask[15, 15] = True  # cell (1, 1): 1 px = 1%: a crack cell (>= CRACK_SHARE)
    mask[5, 25] = True  # cell (0, 2): 1 px of 100 = 1%
    mask[12:14, 35] = True  # cell (1, 3): 2%
    share, truth = cell_truth(mask, 2, 4)
    assert CRACK_SHARE == 0.01
    assert share[0] == pytest.approx(0.2)
    assert truth.tolist() == [1, 0, 1, 0, 0, 1, 0, 1]
    small = np.zeros((200, 400), bool)
    small[50, 50] = True  # 1 px in a 100 x 100 cell: 0.01%, neither crack nor clean
    assert cell_truth(small, 2, 4)[1].tolist() == [-1, 0, 0, 0, 0, 0, 0, 0]
    # the level of the mask: 4 of 8 cells cracked = 50% -> III; 1 of 8 -> I
    assert truth_level(truth) == "III"
    assert truth_level(np.array([1, 0, 0, 0, 0, 0, 0, 0])) == "I"
    assert truth_level(np.array([1, 1, 0, 0, 0, -1, 0, 0])) == "II"


def test_answer_cells_reads_scores_and_labels_of_the_served_grid() -> None:
    res = {"grid": [[{"p": {"none": 0.9, "D00": 0.1, "D10": 0.05, "D20": 0.0, "D40": 0.0},
                      "labels": ["none"]},
                     {"p": {"none": 0.2, "D00": 0.3, "D10": 0.7, "D20": 0.1, "D40": 0.0},
                      "labels": ["D10"]},
                     {"p": {"none": 0.2, "D00": 0.8, "D10": 0.0, "D20": 0.0, "D40": 0.0},
                      "labels": []}]]}  # not road surface: no label, though p is high
    score, flagged = answer_cells(res)
    assert score.tolist() == [0.1, 0.7, 0.8]
    assert flagged.tolist() == [False, True, False]


def _photo(truth, score, flagged, level, want, pothole=False, ratio=0.0, want_ratio=0.0):
    return {"truth": truth, "score": score, "dark": [1 - v for v in score],
            "flagged": flagged, "level": level,
            "truth_level": want, "level_ok": level == want, "pothole": pothole,
            "crack_ratio": ratio, "truth_crack_ratio": want_ratio, "pavement_share": 1.0}


def test_summary_scores_cells_levels_and_potholes() -> None:
    photos = [
        # cells: crack, none, left out, crack
        _photo([1, 0, -1, 1], [0.9, 0.2, 0.99, 0.4], [1, 0, 1, 0], "II", "II",
               ratio=0.25, want_ratio=0.5),
        _photo([0, 0, 1, 0], [0.5, 0.1, 0.8, 0.3], [1, 0, 1, 0], None, "I", pothole=True,
               ratio=0.5, want_ratio=0.25),
    ]
    s = summary(photos)
    assert s["cells"] == 7 and s["cells_left_out"] == 1 and s["crack_cells"] == 3
    # positives 0.9, 0.4, 0.8 vs negatives 0.2, 0.5, 0.1, 0.3: 11 of 12 pairs ranked right
    assert s["cell_auc"] == pytest.approx(11 / 12, abs=1e-4)
    assert s["dark_line_auc"] == pytest.approx(1 / 12, abs=1e-4)  # the reversed ranking
    # flagged: 0.9 (tp), 0.5 (fp), 0.8 (tp); missed 0.4: P 2/3, R 2/3
    assert s["cell_f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["cell_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["all_cracked_f1"] == pytest.approx(2 * 3 / (3 + 7), abs=1e-4)
    assert s["level_agreement"] == 0.5  # the withheld level is a disagreement
    assert s["levels"] == {"I": 0, "II": 1, "III": 0, "withheld": 1}
    assert s["pothole_photo_share"] == 0.5
    assert s["crack_ratio_mae"] == 0.25


def test_transfer_cut_is_picked_on_one_split_and_scored_on_the_other() -> None:
    fit = [_photo([1, 1, 0, 0, -1], [0.3, 0.2, 0.1, 0.05, 0.9], [0] * 5, "I", "I")]
    # a cut between 0.1 and 0.2 separates the fit cells (F1 1.0); the scored cells are the
    # same ranking shifted down, so the transferred cut misses one of two cracks
    scored = [_photo([1, 1, 0, 0], [0.25, 0.09, 0.02, 0.01], [0] * 4, "I", "I")]
    out = transfer_cut(fit, scored, "score")
    assert 0.1 < out["cut"] <= 0.2 and out["fit_f1"] == 1.0
    assert out["scored_recall"] == 0.5 and out["scored_precision"] == 1.0


def test_diagnostics_give_the_oracle_cut_segments_and_left_out_cells() -> None:
    a = {**_photo([1, 0, -1, 1], [0.9, 0.2, 0.99, 0.6], [1, 0, 1, 0], "II", "II", ratio=0.5,
                  want_ratio=0.5), "segment": "s1"}
    b = {**_photo([0, 1, -1, 0], [0.1, 0.7, 0.3, 0.5], [0, 1, 0, 1], "I", "I", ratio=0.25,
                  want_ratio=0.25), "segment": "s2"}
    d = diagnostics([a, b])
    # the best cut on the photos' own cells: 0.6 >= cut > 0.5 separates them (F1 1.0)
    assert d["oracle_cut"]["fit_f1"] == d["oracle_cut"]["scored_f1"] == 1.0
    assert d["left_out_cells_flagged"] == 0.5  # 1 of the 2 left-out cells
    assert d["mean_crack_ratio"] == 0.375 and d["mean_truth_crack_ratio"] == 0.375
    assert set(d["per_segment"]) == {"s1", "s2"} and d["per_segment"]["s1"]["photos"] == 1
    assert d["per_segment"]["s2"]["cell_f1"] == pytest.approx(2 / 3, abs=1e-4)


def test_gate_held_out_is_the_imported_photos_the_split_keeps_from_training(tmp_path) -> None:
    """The `imported_held_out` figures are of photos retrain never trained on: the task's own
    split of the ids the importer gives (<tenant>-<stem>)."""
    from training.sandbox import make_workspace
    from training.workspace import Workspace

    ws = Workspace.load(make_workspace(tmp_path / "ws", "road_damage", scratch_overrides()))
    task = ws.task("road_damage")
    mine = pick_onboard(load_manifest(), 100)
    held = gate_held_out(ws, task, mine)
    assert 10 <= len(held) <= 35 and all(r in mine for r in held)  # test_share 0.2 of 100
    ids = pd.DataFrame({"photo_id": [f"012050-{r['file'].split('/')[-1][:-4]}" for r in mine]})
    train, _ = task.split(ws.task_config(task), {"photos": ids, "tiles": ids.iloc[:0]})
    assert len(train["photos"]) + len(held) == len(mine)
    assert gate_held_out(ws, task, []) == []


def test_the_check_split_holds_no_highway_the_model_trains_on() -> None:
    """The road frames (assets/road_frames) come from the same survey collection; their train
    highways must not appear in the mask check, or the check would score trained roads. (16
    check photos are of BR-386, the frames' validation highway: never trained on.)"""
    import csv

    root = ASSETS.parent
    with open(root / "road_frames" / "manifest.csv", encoding="utf-8") as f:
        frames = list(csv.DictReader(f))
    trained = {(r["state"], r["highway"].split("-")[-1]) for r in frames if r["split"] == "train"}
    framed = {r["path"] for r in frames if r["split"] == "train"}
    with open(root / "road_masks" / "manifest.csv", encoding="utf-8") as f:
        check = [r for r in csv.DictReader(f) if r["split"] == "check"]
    assert trained and check
    for r in check:
        state, number = r["segment"].split("_")[:2]
        assert (state, number) not in trained, r["file"]
        assert r["path"] not in framed, r["file"]


def _rows(segments: dict[str, int]) -> list[dict[str, str]]:
    rows = [{"file": f"photos/{seg}_{i}.jpg", "segment": seg, "split": "onboard"}
            for seg, n in segments.items() for i in range(n)]
    return [*rows, {"file": "photos/c.jpg", "segment": "X", "split": "check"}]


def test_pick_onboard_is_nested_deterministic_and_spread_over_segments() -> None:
    rows = load_manifest()
    every = pick_onboard(rows)
    mine = [r for r in rows if r["split"] == "onboard"]
    assert sorted(r["file"] for r in every) == sorted(r["file"] for r in mine)  # each once
    assert len(every) == len(mine) == 100
    picks = {n: [r["file"] for r in pick_onboard(rows, n)] for n in (0, 10, 25, 50, 100)}
    assert picks[0] == []
    for small, big in ((10, 25), (25, 50), (50, 100)):
        assert picks[big][:small] == picks[small]  # nested
    assert [r["file"] for r in pick_onboard(list(reversed(rows)), 50)] == picks[50]
    assert [r["file"] for r in pick_onboard(rows, 25)] == picks[25]  # deterministic
    assert [r["file"] for r in pick_onboard(rows, 25, seed=1)] != picks[25]
    sizes = Counter(r["segment"] for r in mine)
    for n in (5, 10, 25, 50):
        counts = Counter(r["segment"] for r in pick_onboard(rows, n))
        assert len(counts) == min(n, len(sizes)) and set(counts) <= set(sizes)
        # a segment with photos left has at most one fewer than any other has
        left = [counts[s] for s in sizes if counts[s] < sizes[s]]
        assert max(counts.values()) - min(left) <= 1, counts


def test_pick_onboard_deals_round_robin_until_a_segment_runs_out() -> None:
    rows = _rows({"a": 5, "b": 1, "c": 3})
    order = pick_onboard(rows)
    assert [r["file"] for r in order].count("photos/c.jpg") == 0  # check photos never
    first = [r["segment"] for r in order]
    assert sorted(first[:3]) == ["a", "b", "c"]  # one of each first
    assert sorted(first[3:5]) == ["a", "c"] and sorted(first[5:7]) == ["a", "c"]
    assert first[7:] == ["a", "a"]
    with pytest.raises(ValueError, match="0 to 9"):
        pick_onboard(rows, 10)
    with pytest.raises(ValueError, match="-1"):
        pick_onboard(rows, -1)


def test_parse_args_forms_and_usage_errors(capsys) -> None:
    a = parse_args([])
    assert a.onboard is None and not a.control and not a.frames
    assert a.model_dir.parts[-3:] == ("build", "road_damage", "onnx")
    assert parse_args(["--onboard"]).onboard == -1  # all photos
    a = parse_args(["some/dir", "--onboard", "25", "--frames"])
    assert (a.onboard, a.frames, str(a.model_dir)) == (25, True, "some/dir")
    assert parse_args(["--control"]).control
    assert parse_args(["--onboard", "10", "--pick-seed", "1"]).pick_seed == 1
    assert parse_args(["--onboard", "--full"]).full and not parse_args(["--control"]).full
    for bad, says in ((["--onboard", "10", "--control"], "one at a time"),
                      (["--onboard", "-5"], "0 or more"), (["--frames"], "--frames goes"),
                      (["--full"], "--full goes"),
                      (["--onboard", "ten"], "invalid int")):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert says in capsys.readouterr().err, bad


def test_merge_point_replaces_the_same_point_and_keeps_the_others() -> None:
    curve = merge_point({}, {"n": 25, "frames": False, "cell_f1": 0.5})
    curve = merge_point(curve, {"n": 10, "frames": False, "cell_f1": 0.4})
    curve = merge_point(curve, {"n": 10, "frames": True, "cell_f1": 0.6})
    curve = merge_point(curve, {"n": 25, "frames": False, "cell_f1": 0.55})  # a rerun
    curve = merge_point(curve, {"n": 10, "frames": False, "pick_seed": 1, "cell_f1": 0.3})
    curve = merge_point(curve, {"n": 10, "frames": False, "full": True, "cell_f1": 0.7})
    assert [(p["n"], p["frames"], p["cell_f1"]) for p in curve["learning_curve"]] == [
        (10, False, 0.4), (25, False, 0.55), (10, False, 0.3), (10, True, 0.6),
        (10, False, 0.7)]


@pytest.mark.parametrize("frames", [False, True])
def test_the_scratch_workspace_turns_frames_off_and_keeps_the_other_real_keys(
        tmp_path, frames: bool) -> None:
    """The curve's "new camera" premise: the repo config trains on assets/road_frames (same
    survey); the onboarding workspace must not, unless --frames asks for it."""
    import yaml

    from training.sandbox import make_workspace
    from training.workspace import Workspace

    root = make_workspace(tmp_path / "ws", "road_damage", scratch_overrides(frames))
    repo = yaml.safe_load((ASSETS.parents[1] / "configs" / "road_damage.yaml").read_text())
    ws = Workspace.load(root)
    cfg = ws.task_config(ws.task("road_damage"))  # what onboard() reads and retrain trains
    assert cfg.real.frames is frames and cfg.model.threads == 1
    assert cfg.real.train == repo["real"]["train"] and cfg.real.repeat == repo["real"]["repeat"]
    assert cfg.real.nonroad_tiles == repo["real"]["nonroad_tiles"]


def test_full_keeps_the_configs_schedule_and_still_turns_frames_off(tmp_path) -> None:
    """--full is the documented retrain as a municipality runs it: the config's synthetic
    photos, epochs and threads; frames still off unless asked."""
    import yaml

    from training.sandbox import make_workspace
    from training.workspace import Workspace

    root = make_workspace(tmp_path / "ws", "road_damage", scratch_overrides(False, full=True))
    repo = yaml.safe_load((ASSETS.parents[1] / "configs" / "road_damage.yaml").read_text())
    ws = Workspace.load(root)
    cfg = ws.task_config(ws.task("road_damage"))
    assert cfg.real.frames is False
    assert cfg.model.epochs == repo["model"]["epochs"]
    assert cfg.model.threads == repo["model"]["threads"]
    assert cfg.generate.total_photos == repo["generate"]["total_photos"]
    short = scratch_overrides(False)
    assert short["generate"]["total_photos"] < repo["generate"]["total_photos"]
