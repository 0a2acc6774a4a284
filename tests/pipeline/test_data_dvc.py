"""Regenerating the demo data on a fresh machine reproduces exactly what data.dvc records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO


def test_regenerated_data_matches_data_dvc(tmp_path: Path) -> None:
    recorded = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]
    (tmp_path / "configs").symlink_to(REPO / "configs")
    dvc = [sys.executable, "-m", "dvc"]
    kyodo = [sys.executable, "-m", "training.cli"]
    env_cwd = {"cwd": tmp_path, "check": True, "capture_output": True, "text": True}
    subprocess.run([*kyodo, "data", "generate"], **env_cwd, env=_env(tmp_path))
    subprocess.run([*dvc, "init", "--no-scm", "-q"], **env_cwd)
    subprocess.run([*dvc, "config", "core.analytics", "false"], **env_cwd)
    subprocess.run([*dvc, "add", "-q", "data"], **env_cwd)
    fresh = yaml.safe_load((tmp_path / "data.dvc").read_text())["outs"][0]
    assert (fresh["md5"], fresh["size"], fresh["nfiles"]) == (
        recorded["md5"], recorded["size"], recorded["nfiles"])


def _env(root: Path) -> dict[str, str]:
    import os

    return {**os.environ, "KYODO_ROOT": str(root), "PYTHONPATH": str(REPO)}
