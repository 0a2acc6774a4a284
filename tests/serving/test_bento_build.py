"""`bentoml build` makes a serving-only Bento that serves the champions (make test-slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from serving.launcher import bentoml_serve
from tests.conftest import REPO

pytestmark = pytest.mark.slow
TRAINING_ONLY = ("torch", "transformers", "lightgbm", "mlflow", "scikit-learn", "dvc")


def test_bento_has_serving_code_and_deps_only_and_serves(trained_root: Path,
                                                         tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bentoml", "build", "-f", "bentofile.yaml",
                           "--output", "tag", "."], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    tag = done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    path = Path(os.environ["BENTOML_HOME"]) / "bentos" / tag.replace(":", "/")
    src = path / "src"
    assert (src / "serving/service.py").is_file() and (src / "serving/static/kyodo.js").is_file()
    assert (src / "models/road_damage/photo.py").is_file()
    assert (src / "models/claim_screening/masters/table/manifest.json").is_file()
    assert (src / "configs/platform.yaml").is_file() and not (src / "training").exists()
    reqs = (path / "env/python/requirements.txt").read_text().lower()
    assert "onnxruntime" in reqs and not any(p in reqs for p in TRAINING_ONLY)
    assert yaml.safe_load((path / "bento.yaml").read_text())["service"] == "serving.service:Kyodo"

    serve = bentoml_serve({"KYODO_ROOT": str(trained_root)}, tmp_path / "bento.log", target=tag)
    with serve as url, urllib.request.urlopen(f"{url}/v1/models", timeout=30) as r:
        models = json.load(r)["models"]
    assert [m["task"] for m in models] == ["claim_screening"]
