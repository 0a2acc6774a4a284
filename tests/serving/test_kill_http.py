"""Kill tests (make test-slow): feedback records written in a steady stream while one of two
workers, then the whole service, is killed with SIGKILL. No acknowledged record may be lost,
and the service must come back (recovery times are figures of `make bench`, not asserted)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.kill import kill_run


@pytest.mark.slow
def test_killed_workers_and_service_lose_no_acknowledged_feedback(
        trained_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"  # configs and the champion pointer; a store of its own
    shutil.copytree(trained_root / "configs", root / "configs")
    (root / "state").mkdir()
    shutil.copy(trained_root / "state" / "champions.json", root / "state")
    out = kill_run({"KYODO_ROOT": str(root)}, tmp_path / "bentoml.log", "kyodo-demo-402303",
                   workers=2, write_s=2)
    assert out["acknowledged"] > 50, out  # writes went on around both kills
    assert out["lost"] == [], out
    assert out["worker_recovery_s"] is not None, out  # a replacement worker loaded
    assert out["service_recovery_s"] is not None, out  # the restarted service acknowledged
