"""The durable store is a package of its own (serving/store/): no HTTP stack behind it, the
only part of serving/ that training/ imports, and the same tables as before it was split."""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from serving.store import Store
from tests.conftest import REPO

HTTP_STACK = ("fastapi", "starlette", "bentoml", "uvicorn")
# sqlite_master (type, name, tbl_name, sql) of a store with every table, as written by the
# store before it became a package (serving/store.py + road_store.py at main c32f3fc)
SCHEMA = REPO / "tests" / "fixtures" / "store_schema.json"

LOAD = """
import importlib, json, pkgutil, sys, tempfile, pathlib
import serving.store, training
for found in pkgutil.walk_packages(training.__path__, "training."):
    importlib.import_module(found.name)
store = serving.store.Store(pathlib.Path(tempfile.mkdtemp()) / "kyodo.db")
store.record_request({"request_id": "r1", "ts": 1.0, "tenant": "402303", "task": "claim_screening",
                      "endpoint": "score", "rows": 1, "images": 0, "compute_ms": 1.0,
                      "model_version": "1", "status": 200, "drift": {"score": [1]}})
store.save_road_batch("b1", "402303", "1", [{"index": 0, "name": "p.jpg", "overlay": b"png"}])
assert store.road_overlay("402303", "b1", 0) == b"png" and store.delete_tenant("402303")
print(json.dumps(sorted(sys.modules)))
"""


def _imports(path: Path) -> list[str]:
    """Every module a file imports (top level or inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
    return found


def _schema(db: Path) -> list[list[str]]:
    with sqlite3.connect(db) as conn:
        return [list(r) for r in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE "
            "'sqlite_%' ORDER BY type, name")]


def test_the_store_and_all_of_training_load_no_http_stack() -> None:
    """A fresh interpreter imports the store and every training module, then uses the store
    (metering, audit, drift, road files, a tenant's deletion): nothing of the HTTP stack."""
    out = subprocess.run([sys.executable, "-c", LOAD], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=120)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "training.cli" in modules and "serving.store.road" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in HTTP_STACK)
    assert not loaded, f"the store or training/ loaded {loaded[:5]}"
    assert not [m for m in modules if m.startswith("serving.") and
                not m.startswith("serving.store")]


def test_training_imports_nothing_from_serving_but_the_store() -> None:
    """Every import statement of training/ (lazy ones too) that names serving names
    serving.store; the store package imports nothing else of serving/ and no HTTP library."""
    wrong = [f"{p.relative_to(REPO)}: {m}" for p in sorted((REPO / "training").rglob("*.py"))
             for m in _imports(p) if m.split(".")[0] == "serving"
             and m != "serving.store" and not m.startswith("serving.store.")]
    assert not wrong, wrong
    store = sorted((REPO / "serving" / "store").glob("*.py"))
    assert len(store) >= 6
    leaks = [f"{p.relative_to(REPO)}: {m}" for p in store for m in _imports(p)
             if m.split(".")[0] in HTTP_STACK
             or (m.split(".")[0] == "serving" and not m.startswith("serving.store"))]
    assert not leaks, leaks


def test_a_new_database_has_the_tables_of_before(tmp_path: Path) -> None:
    store = Store(tmp_path / "kyodo.db")
    store.road_batches("402303")  # road tables are created on first use
    assert _schema(tmp_path / "kyodo.db") == json.loads(SCHEMA.read_text(encoding="utf-8"))


def test_a_database_written_before_opens_unchanged(tmp_path: Path) -> None:
    """Tables and rows as the store wrote them before it was split are read back, and opening
    changes no table or index."""
    db = tmp_path / "kyodo.db"
    before = json.loads(SCHEMA.read_text(encoding="utf-8"))
    with sqlite3.connect(db) as conn:
        for _, _, _, sql in sorted(before, key=lambda r: r[0] == "index"):  # tables first
            conn.execute(sql)
        conn.execute("INSERT INTO usage (ts, tenant, task, endpoint, rows, images, compute_ms, "
                     "model_version, status, request_id) VALUES (5, '402303', "
                     "'claim_screening', 'score', 7, 0, 12.5, '3', 200, 'r-old')")
        conn.execute("INSERT INTO feedback VALUES ('402303', 'claim_screening', 'C1', 6, 1, "
                     "'duplicate', 120, 'memo', 'q1', '3')")
        conn.execute("INSERT INTO audit (request_id, ts, tenant, task, endpoint, model_version,"
                     " status, rows, subjects, summary) VALUES ('r-old', 5, '402303', "
                     "'claim_screening', 'score', '3', 200, 7, '[\"P1\"]', '{}')")
        conn.execute("INSERT INTO road_batch VALUES ('b-old', '121002', 4, 1, '2')")
        conn.execute("INSERT INTO road_photo VALUES ('b-old', 0, '121002', 'a.jpg', "
                     "'{\"level\": 2}')")
        conn.execute("INSERT INTO road_correction (tenant, ts, batch_id, idx, tile_row, "
                     "tile_col, correct, labels, note, model_version) VALUES ('121002', 8, "
                     "'b-old', 0, NULL, NULL, 0, '[\"crack\"]', '', '2')")
    store = Store(db)
    assert store.usage("402303") == [{"task": "claim_screening", "endpoint": "score",
                                      "requests": 1, "rows": 7, "images": 0,
                                      "compute_ms": 12.5}]
    assert store.feedback("402303", "claim_screening")[0]["recovered_points"] == 120
    assert store.audit("402303", subject="P1")[0]["request_id"] == "r-old"
    assert store.road_photos("121002", "b-old") == [{"level": 2}]
    assert store.road_corrections("121002")[0]["labels"] == ["crack"]
    assert _schema(db) == before
