"""Pooling gain report: bootstrap resampling, the per-tenant report, and pooling consent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from serving.insights import tenant_view
from training import data as D
from training.pooling import resample, task_report, write_report
from training.workspace import Workspace


def test_resample_keeps_units_whole_and_ids_unique(trained_root: Path) -> None:
    ws = Workspace.load(trained_root)
    task = ws.task("claim_screening")
    frames = task.select(D.load_pooled(ws, task, progress=False), ["402303"])
    sample = resample(task, frames, np.random.default_rng(0))
    lines, labels = sample["lines"], sample["labels"]
    assert lines["patient_id"].nunique() == frames["lines"]["patient_id"].nunique()
    # drawn with replacement: some patient appears as several copies "#0", "#1", ...
    assert lines["patient_id"].str.endswith("#1").any()
    # every copy keeps all of its claims' lines, and labels follow their claims
    per_claim = lines.groupby("claim_id").size()
    orig = frames["lines"].groupby("claim_id").size()
    base = per_claim.index.str.rsplit("#", n=1).str[0]
    assert (per_claim.to_numpy() == orig.reindex(base).to_numpy()).all()
    assert set(labels["claim_id"]) == set(lines["claim_id"])
    assert labels["claim_id"].is_unique


def test_pooling_report_rows_and_tenant_view(trained_root: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace.load(trained_root)
    rows = task_report(ws, ws.task("claim_screening"), bootstrap=4, progress=True)
    assert len(rows) == 13
    # progress: a bar over municipalities, and one over each municipality's fits and resamples
    # (a care_plan fit took minutes with nothing moving)
    shown = capsys.readouterr().err
    assert "pooling claim_screening: 100%" in shown and "13/13" in shown
    assert all(step in shown
               for step in ("local-only fit", "others-only fit", "bootstrap", "headlines"))
    assert "402303: " in shown and "/7 [" in shown  # 2 fits + 4 resamples + the headlines
    keys = {"population", "rows", "held_out", "metric", "pooled", "local", "others_only",
            "ci_low", "ci_high"}
    assert all(set(r) == keys for r in rows.values())
    # claims pooling is judged on the recovery curve up to capacity (unsaturated), not at 5%
    assert {r["metric"] for r in rows.values()} == {"mean_recovered_points_1_to_5pct_capacity"}
    itoshima = rows["402303"]
    assert itoshima["population"] == 103000 and itoshima["rows"] > 0
    assert itoshima["pooled"] > 0 and itoshima["others_only"] is not None
    if itoshima["local"] is not None:
        assert itoshima["ci_low"] <= itoshima["ci_high"]
    paths = write_report(ws, {"claim_screening": rows}, {"claim_screening": "points"})
    written = json.loads(paths[0].read_text())
    assert set(written["claim_screening"]) == set(rows) and paths[1].stat().st_size > 0
    view = tenant_view(written, "402303")["claim_screening"]
    assert view["own"] == written["claim_screening"]["402303"]
    assert "402303" not in json.dumps(view["others_gain"])
    assert len(view["others_gain"]) <= 12


def test_withdrawn_consent_excludes_tenant_from_next_training(trained_root: Path,
                                                               tmp_path: Path) -> None:
    from training.pipeline import train

    shutil.copytree(trained_root / "configs", tmp_path / "configs")
    (tmp_path / "data").symlink_to(trained_root / "data")
    path = tmp_path / "configs" / "tenants.yaml"
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    for t in cfg["tenants"]:
        if t["code"] == "402303":
            t["pooling_consent"] = False
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    ws = Workspace.load(tmp_path)
    task = ws.task("claim_screening")
    pooled = D.load_pooled(ws, task, progress=False)
    assert "402303" not in set(pooled["lines"]["tenant_code"])
    assert isinstance(pooled["lines"], pd.DataFrame) and len(pooled["lines"]) > 0
    evaluation = train(ws, task, progress=False)
    assert "402303" not in evaluation["per_tenant"] and "402303" not in evaluation["pooling"]
    assert len(evaluation["per_tenant"]) == 12
