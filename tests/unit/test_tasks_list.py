"""One list of tasks (configs/platform.yaml `tasks`): every listed task has its package, config,
route, page, CLI and DVC stages, found by name; a fifth task added to a copy of the repository
gets all of them (and its test size, retrain step, demo line and cost-bench entry) without
editing any shared file; a listed task without its router or page stops the service at start
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


def test_an_unlisted_router_module_is_an_error() -> None:
    with pytest.raises(TaskWiringError, match=r"serving/nope\.py does not exist"):
        task_router("nope")


# ---- a fifth task: its package, its config, one list line; its router and page by name ----
# (models/ stays free of HTTP, so the route and the page are the two serving files named
# after the task; everything else is derived from the list)

TOY_TASK = '''"""A toy task: a few numbered rows per tenant."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel

from models.configs import Tenant
from models.task import Frames, Task


class ToyConfig(BaseModel):
    rows: int = 3


class Toy(Task[ToyConfig, float]):
    name = "toy"
    Config = ToyConfig
    frames = ("rows",)
    units = ("row_id",)

    def generate(self, cfg: ToyConfig, tenants: list[Tenant], seed: int) -> dict[str, Frames]:
        return {t.code: {"rows": pd.DataFrame({
            "row_id": [f"{t.code}-{i}" for i in range(cfg.rows)], "tenant_code": t.code,
            "x": range(cfg.rows)})} for t in tenants}

    def validate(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        if "x" not in df:
            raise ValueError("column x is missing")
        return df.astype({"x": float})

    def evaluate(self, cfg: ToyConfig, model: float, test: Frames) -> dict[str, Any]:
        return {"headline": {"metric": "x", "value": model}}
'''
TOY_CONFIG = "rows: 4\nsmall:\n  rows: 2\n"
TOY_ROUTER = '''from fastapi import APIRouter

router = APIRouter(prefix="/v1/toy", tags=["toy"])


@router.get("/hello")
def hello() -> dict[str, str]:
    return {"task": "toy"}
'''
TOY_PAGE = "<!doctype html><html lang=\"ja\"><title>おもちゃ</title><h1>おもちゃ</h1></html>\n"
CHECK = """
import json
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from bench.costs import sent_tasks
from models.task import get_task
from serving.api import app
from tests.conftest import SMALL_CONFIGS
from training.cli import app as cli
from training.retrain import apply_feedback
from training.workspace import Workspace

client = TestClient(app)
runner = CliRunner()
gen = runner.invoke(cli, ["data", "generate", "--task", "toy"])
val = runner.invoke(cli, ["data", "validate", "--task", "toy"])
pages = runner.invoke(cli, ["tenants", "pages", "--port", "3000"])
ws = Workspace.load(".")
print(json.dumps({
    "task": type(get_task("toy")).__name__,
    "route": client.get("/v1/toy/hello").json(),
    "in_openapi": "/v1/toy/hello" in app.openapi()["paths"],
    "page": client.get("/ui/toy").status_code,
    "label": '"toy": "おもちゃ"' in client.get("/ui/assets/kyodo.js").text,
    "cli": [gen.exit_code, gen.output, val.exit_code, val.output],
    "config": ws.task_config(ws.task("toy")).rows,
    "small": SMALL_CONFIGS["toy"],
    "feedback": apply_feedback(ws, ws.task("toy")),
    "demo_line": [line for line in pages.output.splitlines() if "/ui/toy" in line],
    "costs_bench": "toy" in sent_tasks(),
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


def _python(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "KYODO_ROOT": str(root)}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_fifth_task_gets_stage_route_page_and_cli(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path / "repo")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    # its package, its config (with its test size), the one list line (and a municipality
    # subscribing, to generate data)
    (root / "models" / "toy").mkdir()
    (root / "models" / "toy" / "__init__.py").write_text("", encoding="utf-8")
    (root / "models" / "toy" / "task.py").write_text(TOY_TASK, encoding="utf-8")
    (root / "configs" / "toy.yaml").write_text(TOY_CONFIG, encoding="utf-8")
    platform = root / "configs" / "platform.yaml"
    text = platform.read_text(encoding="utf-8")
    platform.write_text(text.replace("  road_damage: 道路損傷検知\n",
                                     "  road_damage: 道路損傷検知\n  toy: おもちゃ\n"),
                        encoding="utf-8")
    tenants = root / "configs" / "tenants.yaml"
    doc = yaml.safe_load(tenants.read_text(encoding="utf-8"))
    doc["tenants"][0]["tasks"].append("toy")
    tenants.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    # listed, but its router or its page forgotten: the service does not start
    no_page = _python(root, "import serving.api")
    assert no_page.returncode != 0 and "serving/static/toy.html" in no_page.stderr
    (root / "serving" / "static" / "toy.html").write_text(TOY_PAGE, encoding="utf-8")
    no_router = _python(root, "import serving.api")
    assert no_router.returncode != 0 and "serving/toy.py does not exist" in no_router.stderr
    (root / "serving" / "toy.py").write_text(TOY_ROUTER, encoding="utf-8")

    out = _python(root, CHECK)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["task"] == "Toy" and got["route"] == {"task": "toy"} and got["in_openapi"]
    assert got["page"] == 200 and got["label"]
    gen_code, gen_out, val_code, val_out = got["cli"]
    assert gen_code == 0 and "toy: 4 rows for 1 tenants" in gen_out, gen_out
    assert val_code == 0 and "toy: OK (rows: 4 rows)" in val_out, val_out
    assert got["config"] == 4 and got["small"] == {"rows": 2}  # tests shrink it by its block
    assert got["feedback"] == {}  # `kyodo retrain toy`: the Protocol's default hook
    line, = got["demo_line"]  # printed by `make demo`
    assert line.split() == ["http://localhost:3000/ui/toy", "おもちゃ", "(key",
                            "kyodo-demo-232017,", "豊橋市)"]
    assert got["costs_bench"] is False  # no month workload: reported as not sent

    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root,
                   check=True, timeout=120)
    assert {"train@toy", "export@toy"} <= set(_stages(root))

    show = "tasks: ; @echo $(TASKS)"
    make = subprocess.run(["make", "-s", "--no-print-directory", "--eval", show,
                           f"BIN={Path(sys.executable).parent}", "tasks"], cwd=root, text=True,
                          capture_output=True, timeout=60)
    assert make.stdout.split() == [*task_names(), "toy"], make.stderr  # `make train` promotes
    # exactly what the toy touched: its package, its config, its router and page (by name),
    # the list line and the subscription; dvc.yaml, api.py, cli.py, retrain.py, kyodo.js,
    # bench/, the Makefile and the tests' conftest are as they were
    changed = sorted(str(p.relative_to(root)) for p, b in before.items() if p.read_bytes() != b)
    assert changed == ["configs/platform.yaml", "configs/tenants.yaml"]
    skip = ("__pycache__", ".dvc", ".dvcignore", "data", "reports", "state", "mlflow", "build")
    added = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                   and p not in before and not set(p.relative_to(root).parts) & set(skip))
    assert added == ["configs/toy.yaml", "models/toy/__init__.py", "models/toy/task.py",
                     "serving/static/toy.html", "serving/toy.py"]
