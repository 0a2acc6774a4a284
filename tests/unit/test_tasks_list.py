"""One list of tasks (configs/platform.yaml `tasks`): every listed task has its package, config,
route, page, CLI and DVC stages, found by name; a fifth task added to a copy of the repository
as one folder, one config and one list line gets all of them (its DVC stages, the CLI from data
to promote, the generic routes answering through the app with its champion, the generic page and
its demo line, its test size, retrain step and cost-bench entry) without editing any shared file
(issue 18)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from bench.costs import sent_tasks
from models.configs import (
    ConfigError,
    CostsConfig,
    PlatformConfig,
    Tenant,
    load_config,
    load_task_config,
    task_labels,
    task_names,
)
from models.task import registry
from serving.api import PAGES, TaskWiringError, app, task_router
from tests.conftest import REPO, SMALL_CONFIGS
from training.cli import _tasks, task_groups
from training.cli import app as cli


def _stages(root: Path) -> list[str]:
    """The stage names DVC resolves dvc.yaml to under root."""
    out = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"],
                         cwd=root, check=True, capture_output=True, text=True, timeout=120)
    return out.stdout.split()


def test_the_list_is_platform_yaml_tasks() -> None:
    raw = yaml.safe_load((REPO / "configs" / "platform.yaml").read_text(encoding="utf-8"))
    assert task_labels() == raw["tasks"]
    assert task_names() == ("claim_screening", "checkup_nudge", "care_plan", "road_damage")
    assert "tasks" not in raw["serving"]  # /readyz reads the same list (no second one)


def test_every_listed_task_has_package_config_route_page_cli_and_stages() -> None:
    tasks = registry()
    assert tuple(tasks) == task_names()
    paths = app.openapi()["paths"]
    client = TestClient(app)
    js = client.get("/ui/assets/kyodo.js").text
    for name, task in tasks.items():
        assert (REPO / "models" / name / "task.py").is_file() and task.name == name
        load_task_config(REPO / "configs" / f"{name}.yaml", task.Config)
        assert task_router(name).routes
        assert any(p.startswith(f"/v1/{name}/") for p in paths), name
        assert name in PAGES and client.get(f"/ui/{name}").status_code == 200
        assert f'"{name}": "{task_labels()[name]}"' in js  # the pages' Japanese label
        assert name in SMALL_CONFIGS  # tests can build a tiny champion of it
    assert "kyodo:task-labels" not in js
    pages = CliRunner().invoke(cli, ["tenants", "pages", "--port", "3000"])  # `make demo`
    assert pages.exit_code == 0 and len(pages.output.splitlines()) == len(tasks), pages.output
    for line, (name, label) in zip(pages.output.splitlines(), task_labels().items(), strict=True):
        assert line.split()[:2] == [f"http://localhost:3000/ui/{name}", label]
    assert sent_tasks() == task_names()  # bench/costs.py sends a month of every listed task
    assert _tasks("all") == sorted(task_names())
    assert set(task_groups()) == {"claims", "nudge", "road"}  # care_plan has no own group
    assert sorted(_stages(REPO)) == sorted(f"{s}@{t}" for s in ("train", "export")
                                           for t in task_names())


def test_the_contract_imports_no_task_package() -> None:
    """models/task.py loads tasks by import path (no import cycle with the task packages)."""
    tree = ast.parse((REPO / "models" / "task.py").read_text(encoding="utf-8"))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported for t in task_names() if m.startswith(f"models.{t}")}


def test_a_bad_list_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text("tasks: [claim_screening]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="tasks"):
        task_labels(path)
    path.write_text("tasks:\n  Claim-Screening: レセプト点検\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lower-case Python identifier"):
        task_labels(path)


def test_the_old_serving_tasks_key_says_where_the_list_went(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text("serving:\n  tasks: [claim_screening]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top-level `tasks`"):
        load_config(path, PlatformConfig)


def test_tenants_and_costs_accept_only_listed_tasks() -> None:
    raw = yaml.safe_load((REPO / "configs" / "tenants.yaml").read_text(encoding="utf-8"))
    tenant = {**raw["tenants"][0], "tasks": ["claim_screening", "toy"]}
    with pytest.raises(ValidationError, match=r"unknown task 'toy'.*configs/platform\.yaml"):
        Tenant.model_validate(tenant)
    with pytest.raises(ValidationError, match="unknown task 'toy'"):
        CostsConfig.model_validate({"development_yen": {"toy": 1.0}})


def test_an_unlisted_task_has_no_router() -> None:
    with pytest.raises(TaskWiringError, match=r"'nope' is not listed in configs/platform\.yaml"):
        task_router("nope")


# ---- a fifth task: its package, its config, one list line; routes, page and CLI by convention --
# (models/ stays free of HTTP: a task without serving/<task>.py gets the generic routes built
# from its Task and the generic page, serving/generic.py and static/_task.html)

TOY_TASK = '''"""A toy task: numbered rows per tenant, y = 2x, fitted by a one-weight model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel

from models.configs import Tenant
from models.split import hold_out, tenant_share
from models.task import Frames, Task

ROWS = pa.DataFrameSchema({
    "row_id": pa.Column(str), "tenant_code": pa.Column(str, required=False),
    "x": pa.Column(float, description="the input"),
    "y": pa.Column(float, nullable=True, required=False, description="the label")})


class ToyConfig(BaseModel):
    rows: int = 3
    parity_tolerance: float = 1e-5
    parity_max_mismatch_share: float = 0.0


class Toy(Task[ToyConfig, float]):
    name = "toy"
    Config = ToyConfig
    frames = ("rows",)
    units = ("row_id",)

    def schema(self, frame: str) -> pa.DataFrameSchema:
        return ROWS

    def generate(self, cfg: ToyConfig, tenants: list[Tenant], seed: int) -> dict[str, Frames]:
        x = np.arange(1.0, cfg.rows + 1)
        return {t.code: {"rows": pd.DataFrame({
            "row_id": [f"{t.code}-{i}" for i in range(cfg.rows)], "tenant_code": t.code,
            "x": x, "y": 2 * x})} for t in tenants}

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        if "x" not in df:
            raise ValueError("column x is missing")
        return df.astype({"x": float, "y": float})

    def split(self, cfg: ToyConfig, data: Frames) -> tuple[Frames, Frames]:
        return hold_out(data, self.frames, "row_id", tenant_share(data["rows"], "row_id", 0.5))

    def fit(self, cfg: ToyConfig, train: Frames, progress: bool = False, seed: int = 0) -> float:
        x, y = train["rows"]["x"], train["rows"]["y"]
        return float((x * y).sum() / (x * x).sum())

    def evaluate(self, cfg: ToyConfig, model: float, test: Frames) -> dict[str, Any]:
        return {"overall": {"slope": model}, "per_tenant": {},
                "headline": {"metric": "slope", "value": model}}

    def to_onnx(self, model: float, opset: int) -> dict[str, bytes]:
        from onnx import TensorProto, helper  # training only: serving imports this module

        io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in "xy"]
        graph = helper.make_graph(
            [helper.make_node("Mul", ["x", "w"], ["y"])], "toy", io[:1], io[1:],
            [helper.make_tensor("w", TensorProto.FLOAT, [1], [model])])
        onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return {"score": onnx_model.SerializeToString()}

    def parity_inputs(self, model: float, test: Frames) -> tuple[dict[str, np.ndarray],
                                                                    dict[str, np.ndarray]]:
        X = test["rows"][["x"]].to_numpy(np.float32)
        return {"score": X}, {"score": X * model}

    def onnx_outputs(self, session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"score": session.run(None, {"input": inputs["score"]})[0]}

    def plots(self, model: float, test: Frames, out: Path) -> list[Path]:
        return []

    def feature_names(self, model: float) -> list[str]:
        return ["x"]

    def assets(self, model: float) -> dict[str, bytes]:
        return {}
'''
TOY_CONFIG = "rows: 4\nsmall:\n  rows: 2\n"
# the CLI in the workspace: data, train, export, promote, the demo's page lines, retrain's step
CLI = """
import json, os, shutil
env = dict(os.environ)
import tests.conftest as conftest  # its SMALL_CONFIGS; undo its own store and environment
shutil.rmtree(conftest._BENTO_HOME, ignore_errors=True)
os.environ.update(env)
from typer.testing import CliRunner
from models.task import get_task
from training.cli import app as cli
from training.retrain import apply_feedback
from training.workspace import Workspace

runner = CliRunner()
runs = {" ".join(a): runner.invoke(cli, a) for a in (
    ["data", "generate", "--task", "toy"], ["data", "validate", "--task", "toy"],
    ["train", "toy"], ["export", "toy"], ["promote", "toy"], ["tenants", "pages"])}
ws = Workspace.load()
print(json.dumps({
    "task": type(get_task("toy")).__name__,
    "cli": {k: [r.exit_code, r.output] for k, r in runs.items()},
    "config": ws.task_config(ws.task("toy")).rows,
    "small": conftest.SMALL_CONFIGS["toy"],
    "feedback": apply_feedback(ws, ws.task("toy")),
}, ensure_ascii=False))
"""
# the service on that workspace, through the app: the generic routes and page
SERVE = """
import json, sys
from fastapi.testclient import TestClient
from bench.costs import sent_tasks
from serving.api import app
from serving.deps import install
from serving.runtime import Runtime

rt = Runtime.load()
install(app, rt)
client = TestClient(app)
key = {"Authorization": "Bearer kyodo-demo-232017"}  # the workspace's toy subscriber
rows = [{"row_id": "a", "x": 1.5}, {"row_id": "b", "x": "4", "y": None}]
doc = app.openapi()
print(json.dumps({
    "score": client.post("/v1/toy/score", json={"rows": rows}, headers=key).json(),
    "model": client.get("/v1/toy/model", headers=key).json(),
    "missing": client.post("/v1/toy/score", json={"rows": [{"row_id": "a"}]}, headers=key).json(),
    "unknown": client.post("/v1/toy/score", json={"rows": [{"row_id": "a", "x": 1, "z": 2}]},
                           headers=key).json(),
    "other": client.post("/v1/toy/score", json={"rows": rows},
                         headers={"Authorization": "Bearer kyodo-demo-472018"}).status_code,
    "paths": sorted(p for p in doc["paths"] if p.startswith("/v1/toy/")),
    "x_type": doc["components"]["schemas"]["ToyRow"]["properties"]["x"],
    "page": [client.get("/ui/toy").status_code, client.get("/ui/toy").text],
    "label": '"toy": "おもちゃ"' in client.get("/ui/assets/kyodo.js").text,
    "ready": rt.readiness(),  # /readyz waits for it
    "costs_bench": "toy" in sent_tasks(),
    "heavy": sorted({m.split(".")[0] for m in sys.modules}
                    & {"torch", "transformers", "lightgbm", "sklearn", "mlflow"}),
}, ensure_ascii=False))
"""


def _copy_repo(dst: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("models", "serving", "training", "configs", "bench"):
        shutil.copytree(REPO / part, dst / part, ignore=skip)
    for part in ("dvc.yaml", "Makefile", "tests/__init__.py", "tests/conftest.py"):
        (dst / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / part, dst / part)
    return dst


def _python(root: Path, code: str, workspace: Path | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """`code` run on the code under root, in `workspace` (its configs, data and state: KYODO_ROOT)
    or root itself."""
    ws = workspace or root
    env = {**os.environ, "PYTHONPATH": str(root), "KYODO_ROOT": str(ws)}
    return subprocess.run([sys.executable, "-c", code], cwd=ws, env=env, capture_output=True,
                          text=True, timeout=300)


def _last_json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _printed(output: str) -> dict:
    """The JSON object a kyodo command printed (MLflow's log lines around it left out)."""
    start = output.index('{\n  "')
    return json.JSONDecoder().raw_decode(output[start:])[0]


def test_a_fifth_task_gets_stage_route_page_and_cli(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path / "repo")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    # its package, its config (with its test size) and the one list line: nothing else
    (root / "models" / "toy").mkdir()
    (root / "models" / "toy" / "__init__.py").write_text("", encoding="utf-8")
    (root / "models" / "toy" / "task.py").write_text(TOY_TASK, encoding="utf-8")
    (root / "configs" / "toy.yaml").write_text(TOY_CONFIG, encoding="utf-8")
    platform = root / "configs" / "platform.yaml"
    text = platform.read_text(encoding="utf-8")
    platform.write_text(text.replace("  road_damage: 道路損傷検知\n",
                                     "  road_damage: 道路損傷検知\n  toy: おもちゃ\n"),
                        encoding="utf-8")

    # a workspace of that code (KYODO_ROOT, as `make demo` and the service use one) where
    # Toyohashi subscribes to the toy: an operator's configs/tenants.yaml, not the code's
    ws = tmp_path / "ws"
    shutil.copytree(root / "configs", ws / "configs")
    tenants = ws / "configs" / "tenants.yaml"
    doc = yaml.safe_load(tenants.read_text(encoding="utf-8"))
    doc["tenants"][0]["tasks"].append("toy")
    tenants.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    got = _last_json(_python(root, CLI, ws))
    assert got["task"] == "Toy"
    cli_runs = got["cli"]
    assert all(code == 0 for code, _ in cli_runs.values()), cli_runs
    assert "toy: 4 rows for 1 tenants" in cli_runs["data generate --task toy"][1]
    assert "toy: OK (rows: 4 rows)" in cli_runs["data validate --task toy"][1]
    assert _printed(cli_runs["train toy"][1])["headline"] == {"metric": "slope", "value": 2.0}
    assert _printed(cli_runs["export toy"][1])["parity"]["passed"]
    assert _printed(cli_runs["promote toy"][1])["promoted"]
    line, = [s for s in cli_runs["tenants pages"][1].splitlines() if "/ui/toy" in s]
    assert line.split() == ["http://localhost:3000/ui/toy", "おもちゃ", "(key",  # `make demo`
                            "kyodo-demo-232017,", "豊橋市)"]
    assert got["config"] == 4 and got["small"] == {"rows": 2}  # tests shrink it by its block
    assert got["feedback"] == {}  # `kyodo retrain toy`: the Protocol's default hook

    served = _last_json(_python(root, SERVE, ws))
    assert served["score"]["model_version"] == "1" and served["score"]["unit"] == "row_id"
    assert [(s["id"], round(s["score"], 4)) for s in served["score"]["scores"]] == [
        ("a", 3.0), ("b", 8.0)]  # the champion's y = 2x, through ONNX
    model = served["model"]
    assert (model["label"], model["inputs"], model["unit"]) == ("おもちゃ", ["x"], "row_id")
    assert model["headline_metric"] == "slope" and model["headline_value"] == 2.0
    assert served["missing"]["error"].startswith("rows.0.x: missing"), served["missing"]
    assert "rows.0.z" in served["unknown"]["error"], served["unknown"]
    assert served["other"] == 403  # Naha does not subscribe
    assert served["paths"] == ["/v1/toy/model", "/v1/toy/score"]
    assert served["x_type"]["anyOf"][0] == {"type": "number"}  # typed from the schema
    status, page = served["page"]
    assert status == 200 and "<h1>おもちゃ</h1>" in page and 'data-task="toy"' in page
    assert served["label"]
    assert served["ready"]["tasks"]["toy"]["state"] == "ready"
    assert served["costs_bench"] is False  # no month workload: reported as not sent
    assert served["heavy"] == []  # the served toy pulled no training stack in

    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root,
                   check=True, timeout=120)
    assert {"train@toy", "export@toy"} <= set(_stages(root))

    show = "tasks: ; @echo $(TASKS)"
    make = subprocess.run(["make", "-s", "--no-print-directory", "--eval", show,
                           f"BIN={Path(sys.executable).parent}", "tasks"], cwd=root, text=True,
                          capture_output=True, timeout=60)
    assert make.stdout.split() == [*task_names(), "toy"], make.stderr  # `make train` promotes
    # exactly what the toy touched in the code: one folder, one config, the list line;
    # serving/, dvc.yaml, cli.py, retrain.py, kyodo.js, bench/, the Makefile, the tests'
    # conftest and configs/tenants.yaml are as they were
    changed = sorted(str(p.relative_to(root)) for p, b in before.items() if p.read_bytes() != b)
    assert changed == ["configs/platform.yaml"]
    skip = ("__pycache__", ".dvc", ".dvcignore")
    added = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                   and p not in before and not set(p.relative_to(root).parts) & set(skip))
    assert added == ["configs/toy.yaml", "models/toy/__init__.py", "models/toy/task.py"]
