"""LightGBM training on a real dask.distributed cluster (LocalCluster, 2 worker processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from training import sandbox

pytestmark = pytest.mark.slow


def _train_tasks(dask_scheduler: Any) -> int:
    """Tasks of lightgbm.dask's training function the scheduler has seen (runs on it)."""
    return sum(n for prefix, n in (
        (p.name, sum(p.state_counts.values())) for p in dask_scheduler.task_prefixes.values())
        if "train_part" in prefix)


def test_kyodo_train_on_a_two_worker_cluster(tmp_path: Path) -> None:
    from dask.distributed import Client, LocalCluster

    from tests.conftest import SMALL
    from training.data import write_generated
    from training.workspace import Workspace

    root = sandbox.make_workspace(tmp_path, "claim_screening", SMALL)
    ws = Workspace.load(root)
    write_generated(ws, ws.task("claim_screening"), progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        env = {**os.environ, "KYODO_ROOT": str(root), "OMP_WAIT_POLICY": "PASSIVE"}
        done = subprocess.run(
            [sys.executable, "-m", "training.cli", "train", "claim_screening",
             "--cluster", cluster.scheduler_address],
            env=env, capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "(2 workers)" in done.stderr
        # pooled model + 13 local-only models, each a classifier and a stake regressor
        assert client.run_on_scheduler(_train_tasks) >= 2 * 2
    out = json.loads(done.stdout[done.stdout.index("{"):])
    head = out["headline"]
    assert 0 < head["value"] <= head["oracle"] and head["value"] > 0.8 * head["baseline"]
    evaluation = json.loads((root / "build/claim_screening/evaluation.json").read_text())
    assert len(evaluation["pooling"]) == 13


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    root = sandbox.make_workspace(tmp_path, "claim_screening", {})
    env = {**os.environ, "KYODO_ROOT": str(root)}
    done = subprocess.run([sys.executable, "-m", "training.cli", "train", "claim_screening",
                           "--cluster", "tcp://127.0.0.1:9"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2 and "cannot reach the Dask scheduler" in done.stderr
