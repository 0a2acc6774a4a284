"""The serving process never imports torch, transformers, full mlflow or lightgbm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from serving.service import Kyodo
from serving.api import app
from serving.deps import get_runtime
from serving.claim_screening import EXAMPLE_CLAIM
rt = Kyodo.inner().runtime
app.dependency_overrides[get_runtime] = lambda: rt
r = TestClient(app).post('/v1/claim_screening/score', json={'claims': [EXAMPLE_CLAIM]},
                         headers={'Authorization': 'Bearer kyodo-demo-402303'})
assert r.status_code == 200, r.text
print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))
"""


def test_serving_imports_no_heavy_training_stack(trained_root: Path) -> None:
    env = {**os.environ, "KYODO_ROOT": str(trained_root)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=180)
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "onnxruntime" in modules and "bentoml" in modules
    assert not modules & {"torch", "transformers", "mlflow", "lightgbm", "sklearn"}


ROAD_SCRIPT = """
import json, sys, pathlib
from fastapi.testclient import TestClient
from serving.service import Kyodo
from serving.api import app
from serving.deps import get_runtime
rt = Kyodo.inner().runtime
app.dependency_overrides[get_runtime] = lambda: rt
photo = sorted(pathlib.Path(sys.argv[1]).rglob('*.jpg'))[0].read_bytes()
r = TestClient(app).post('/v1/road_damage/analyze', files=[('files', ('p.jpg', photo))],
                         headers={'Authorization': 'Bearer kyodo-demo-121002'})
assert r.status_code == 200, r.text
print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))
"""


def test_road_damage_serving_imports_no_torch(road_root: Path) -> None:
    env = {**os.environ, "KYODO_ROOT": str(road_root)}
    images = str(road_root / "data" / "road_damage" / "images")
    out = subprocess.run([sys.executable, "-c", ROAD_SCRIPT, images], cwd=REPO, env=env,
                         check=True, capture_output=True, text=True, timeout=180)
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "onnxruntime" in modules and "PIL" in modules
    assert not modules & {"torch", "transformers", "mlflow", "lightgbm", "sklearn", "scipy"}
