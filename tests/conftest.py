"""Shared fixtures: a tiny trained workspace (data, MLflow store, BentoML store) in a temp dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from models.configs import small_overrides, task_names
from training import sandbox  # imports neither bentoml nor mlflow: the env below still applies

REPO = Path(__file__).resolve().parents[1]
# BentoML reads its home once; point it at a throw-away store before anything imports it.
_BENTO_HOME = Path(tempfile.mkdtemp(prefix="kyodo-bento-"))
os.environ["BENTOML_HOME"] = str(_BENTO_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads starve 2 cores
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("KYODO_ROOT", None)
os.environ.pop("KYODO_DATABASE_URL", None)  # the service store: each test picks its own

# Each listed task's config shrunk for tests: the `small` block of its configs/<task>.yaml
# (models/configs.py small_overrides), so a new task brings its own.
SMALL_CONFIGS = {t: small_overrides(REPO / "configs" / f"{t}.yaml") for t in task_names()}
SMALL = SMALL_CONFIGS["claim_screening"]
SMALL_ROAD = SMALL_CONFIGS["road_damage"]


def make_workspace(root: Path, overrides: dict | None = None,
                   task: str = "claim_screening") -> Path:
    """A workspace with the repo's configs, the task's config shrunk for tests (its `small`
    block unless overrides are given)."""
    return sandbox.make_workspace(root, task, overrides)


def champion(factory: pytest.TempPathFactory, task: str) -> Path:
    """`task` trained and promoted on tiny data (SMALL_CONFIGS) in a new workspace."""
    return sandbox.build_champion(make_workspace(factory.mktemp(f"ws-{task}"), task=task), task)


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """claim_screening trained and promoted on tiny data; returns the workspace root."""
    return champion(tmp_path_factory, "claim_screening")


@pytest.fixture(scope="session")
def nudge_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """checkup_nudge trained and promoted on tiny data; returns the workspace root."""
    return champion(tmp_path_factory, "checkup_nudge")


@pytest.fixture(scope="session")
def care_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """care_plan trained and promoted on tiny data; returns the workspace root."""
    return champion(tmp_path_factory, "care_plan")


@pytest.fixture(scope="session")
def road_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """road_damage trained and promoted on tiny data; returns the workspace root."""
    return champion(tmp_path_factory, "road_damage")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the throw-away BentoML store."""
    shutil.rmtree(_BENTO_HOME, ignore_errors=True)
