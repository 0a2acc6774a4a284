"""Shared fixtures: a tiny trained workspace (data, MLflow store, BentoML store) in a temp dir."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

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

SMALL = {"generate": {"total_claims": 8000}, "model": {"n_estimators": 80}}
SMALL_NUDGE = {"generate": {"total_residents": 12000, "min_residents": 120}, "bootstrap": 20,
               "learner": "s", "model": {"n_estimators": 30}}
SMALL_CARE = {"generate": {"total_persons": 2400, "min_persons": 300}, "eval_persons": 200,
              "model": {"n_estimators": 25, "num_leaves": 7, "min_child_samples": 20}}

# 4 x 3 tiles of 64 px per photo, a few dozen photos, a tiny ResNet for two epochs, synthetic
# tiles only (not the demo's ImageNet EfficientNet with real crops): seconds
SMALL_ROAD = {"generate": {"total_photos": 24, "min_photos": 5, "min_test_photos": 3},
              "grid": {"long_side": 256},
              "parity_tiles": 64, "model": {"architecture": "resnet", "init": "scratch",
                                            "freeze_blocks": 0, "epochs": 2,
                                            "hidden_sizes": [8, 16, 16, 16],
                                            "embedding_size": 8, "threads": 1},
              "real": {"train": False}}
# Each listed task's config shrunk for tests, by task name (tests/unit/test_tasks_list.py
# checks every task in configs/platform.yaml has one)
SMALL_CONFIGS = {"claim_screening": SMALL, "checkup_nudge": SMALL_NUDGE, "care_plan": SMALL_CARE,
                 "road_damage": SMALL_ROAD}


def make_workspace(root: Path, overrides: dict | None = None,
                   task: str = "claim_screening") -> Path:
    """A workspace with the repo's configs, the task's config shrunk for tests."""
    return sandbox.make_workspace(root, task, SMALL_CONFIGS[task] if overrides is None
                                  else overrides)


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
