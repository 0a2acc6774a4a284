"""The tasks' split and select keep the rows they held before the shared helper (models/split.py)
replaced the per-task copies: digests of each part, recorded from the copies, for fixed frames."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.split import hold_out, select_tenants, tenant_share
from models.task import Frames, get_task

TENANTS = ["402303", "382108", "012050", "122025"]
# task -> (the unit column, the first frame (one row per unit), the frames that link to it)
SHAPES = {"care_plan": ("person_id", "persons", ("outcomes", "oracle")),
          "checkup_nudge": ("resident_id", "residents", ("campaigns", "oracle")),
          "road_damage": ("photo_id", "photos", ("tiles",))}


def _frames(task: str, seed: int) -> Frames:
    """Units spread unevenly over four tenants, 0-4 linked rows each, ids in shuffled order."""
    unit, first, linked = SHAPES[task]
    rng = np.random.default_rng(seed)
    n = 1200
    ids = np.array([f"{unit[0].upper()}{i:05d}" for i in rng.permutation(n)])
    tenant = rng.choice(TENANTS, n, p=[0.55, 0.25, 0.15, 0.05])
    out = {first: pd.DataFrame({unit: ids, "tenant_code": tenant, "x": rng.random(n)})}
    for name in linked:
        rows = rng.integers(0, 5, n)
        out[name] = pd.DataFrame({unit: np.repeat(ids, rows),
                                  "tenant_code": np.repeat(tenant, rows),
                                  "k": np.arange(rows.sum())})
    return out


def _claims(seed: int) -> Frames:
    """Claim lines over six months and four tenants; labels for 80% of the claims."""
    rng = np.random.default_rng(seed)
    n = 3000
    claim = np.array([f"C{i:06d}" for i in rng.permutation(n)])
    per = rng.integers(1, 4, n)
    lines = pd.DataFrame({"claim_id": np.repeat(claim, per),
                          "tenant_code": np.repeat(rng.choice(TENANTS, n), per),
                          "service_month": np.repeat(rng.choice(
                              [f"2025-{m:02d}" for m in range(1, 7)], n), per)})
    labelled = rng.random(n) < 0.8
    labels = pd.DataFrame({"claim_id": claim[labelled],
                           "points": rng.integers(0, 900, labelled.sum())})
    return {"lines": lines, "labels": labels}


def _digest(parts: Frames | tuple[Frames, ...]) -> str:
    """sha256 (12 hex digits) of every frame's rows in order (the index left out)."""
    h = hashlib.sha256()
    for frames in parts if isinstance(parts, tuple) else (parts,):
        for name in sorted(frames):
            h.update(name.encode() + frames[name].to_csv(index=False).encode())
    return h.hexdigest()[:12]


# Recorded from the per-task copies of split/select (before models/split.py), seeds 0 and 1.
SPLIT = {("care_plan", 0): "a3ea0f4646a6", ("care_plan", 1): "165d9e29f51c",
         ("checkup_nudge", 0): "3cfc2d474165", ("checkup_nudge", 1): "76ccedb848a1",
         ("road_damage", 0): "ea079c0301ce", ("road_damage", 1): "7297ee37b765"}
SELECT = {("care_plan", 0): "86c5a0f1e66f", ("care_plan", 1): "d861d1561a1b",
          ("checkup_nudge", 0): "384437d8bdc0", ("checkup_nudge", 1): "6291c3fc4094",
          ("road_damage", 0): "90e17c656324", ("road_damage", 1): "304b6c79025b",
          ("claim_screening", 0): "bb7ccd8c5f4c", ("claim_screening", 1): "9d15cc6143e1"}
CFG = SimpleNamespace(test_share=0.2)


@pytest.mark.parametrize(("task", "seed"), sorted(SPLIT))
def test_split_holds_out_the_same_rows(task: str, seed: int) -> None:
    assert _digest(get_task(task).split(CFG, _frames(task, seed))) == SPLIT[task, seed]


@pytest.mark.parametrize(("task", "seed"), sorted(SELECT))
def test_select_keeps_the_same_rows(task: str, seed: int) -> None:
    data = _claims(seed) if task == "claim_screening" else _frames(task, seed)
    assert _digest(get_task(task).select(data, ["382108", "012050"])) == SELECT[task, seed]


def test_hold_out_partitions_every_frame_by_unit() -> None:
    data = _frames("care_plan", 2)
    test_ids = tenant_share(data["persons"], "person_id", 0.3)
    train, test = hold_out(data, ("persons", "outcomes", "oracle"), "person_id", test_ids)
    for name, df in data.items():
        assert len(train[name]) + len(test[name]) == len(df)
        assert not set(train[name]["person_id"]) & set(test[name]["person_id"])
        assert set(test[name]["person_id"]) <= set(test_ids)
    # the share holds per tenant, the smallest one (5% of 1,200 units) too
    share = test["persons"].groupby("tenant_code").size() / data["persons"].groupby(
        "tenant_code").size()
    assert share.between(0.27, 0.33).all(), share


def test_hold_out_names_the_empty_frame() -> None:
    empty = {"photos": pd.DataFrame({"photo_id": [], "tenant_code": []}),
             "tiles": pd.DataFrame({"photo_id": [], "tenant_code": []})}
    with pytest.raises(ValueError, match="no photos to split"):
        get_task("road_damage").split(CFG, empty)


def test_select_follows_the_link_where_a_frame_has_no_tenant() -> None:
    data = _claims(3)
    out = select_tenants(data, ("lines", "labels"), ["122025"], link="claim_id")
    assert set(out["lines"]["tenant_code"]) == {"122025"}
    assert set(out["labels"]["claim_id"]) <= set(out["lines"]["claim_id"])
    assert len(out["labels"]) > 0 and list(out["labels"].index) == list(range(len(out["labels"])))
