"""The file store (a local folder, or S3-compatible storage on moto's server), `kyodo purge`,
`kyodo tenants delete-data`, and the deleted municipality's ids answering 404 over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from models.configs import PlatformConfig, TenantsConfig, load_config
from serving.launcher import free_port
from serving.store import Store
from serving.store.files import FileStoreError, LocalFiles, S3Files, check_key, open_files
from tests.conftest import REPO
from tests.serving.conftest import bound_client
from training import sandbox

CHIBA, MURORAN, TASK = "121002", "012050", "claim_screening"
AUTH = {code: {"Authorization": f"Bearer kyodo-demo-{code}"} for code in (CHIBA, MURORAN)}
AWS = {"AWS_ACCESS_KEY_ID": "kyodo", "AWS_SECRET_ACCESS_KEY": "kyodo-secret",
       "AWS_DEFAULT_REGION": "us-east-1"}


def _result(index: int) -> dict:
    """What the analyze endpoint keeps per photo: a 4 x 3 grid the model saw no damage on."""
    from models.road_damage.analyze import summarise

    probs = np.zeros((12, 5), np.float32)
    probs[:, 0] = 0.9
    return {"index": index, "name": f"p{index}.jpg", "lat": 35.6, "lon": 140.1,
            "taken_at": "2026-10-01T09:00:00", "warnings": [], **summarise(probs, 4, 3, 0.5)}


def _fill(store: Store, tenant: str, age_days: float = 0) -> None:
    """One road batch (2 photos, 3 files), a correction, a queue, feedback and a request."""
    batch = f"b-{tenant}-{int(age_days)}"
    store.save_road_batch(batch, tenant, "1", [
        {**_result(0), "overlay": b"\x89PNG" + b"o" * 1000, "image": b"\xff\xd8" + b"i" * 2000},
        {**_result(1), "overlay": b"\x89PNG-b", "image": None}])
    store.save_road_corrections(tenant, [{"batch_id": batch, "index": 0, "correct": True}])
    if age_days:
        with store.db.transaction() as conn:
            conn.execute("UPDATE road_batch SET created = created - ? WHERE batch_id = ?",
                         (age_days * 86400, batch))
        return
    store.save_queue(f"q-{tenant}", tenant, TASK, "2026-10", 1, 0.5, "1",
                     [{"rank": 1, "claim_id": "c1", "patient_pseudonym": "P-1"}])
    store.save_feedback(tenant, TASK, [{"claim_id": "c1", "error_confirmed": True}])
    store.record_usage(tenant, TASK, "score", 1, 2.0, "1", 200)


# ---- the file stores ----

def test_keys_cannot_leave_the_store(tmp_path: Path) -> None:
    files = LocalFiles(tmp_path / "files")
    for bad in ("../x", "/etc/passwd", "a/../../x", "a//b", "", "a/.hidden/..", "a\\b"):
        with pytest.raises(ValueError, match="file key"):
            files.put(bad, b"x", "text/plain")
    assert check_key("road_damage/121002/ab12/0-overlay.png")


def test_local_files_put_get_delete(tmp_path: Path) -> None:
    files = open_files(tmp_path / "files", root="")  # "" = not configured: the default folder
    assert isinstance(files, LocalFiles) and files.root == tmp_path / "files"
    files.put("t/1/a.png", b"A", "image/png")
    files.put("t/1/a.png", b"AA", "image/png")  # replaced whole
    files.put("t/2/b.png", b"B", "image/png")
    assert files.get("t/1/a.png") == b"AA" and files.get("t/9/none.png") is None
    assert not list((tmp_path / "files").rglob(".tmp-*"))  # no temporary file left behind
    assert files.delete(["t/1/a.png", "t/1/missing.png"]) == 1
    assert files.delete_prefix("t") == 1 and not (tmp_path / "files" / "t").exists()
    assert files.delete_prefix("never") == 0


def test_an_unwritable_store_is_a_file_store_error_and_leaves_no_rows(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the folder should be")
    store = Store(tmp_path / "kyodo.db", files=LocalFiles(tmp_path / "blocked"))
    with pytest.raises(FileStoreError, match="cannot write road_damage/121002/b-121002-0/0-"):
        _fill(store, CHIBA)
    assert store.road_batches(CHIBA) == []


def test_an_unreachable_s3_server_is_a_file_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**AWS, "KYODO_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                        "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    files = S3Files("s3://kyodo-files")
    with pytest.raises(FileStoreError, match=r"s3://kyodo-files: cannot read a\.png"):
        files.get("a.png")


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """moto's S3-compatible server in this process (a thread) with a bucket `kyodo-files`."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, aws_access_key_id="kyodo",
                 aws_secret_access_key="kyodo-secret", region_name="us-east-1",
                 ).create_bucket(Bucket="kyodo-files")
    yield url
    server.stop()


def test_s3_files_by_environment_variables(s3_url: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    for name, value in {**AWS, "KYODO_FILE_ROOT": "s3://kyodo-files/svc",
                        "MLFLOW_S3_ENDPOINT_URL": s3_url}.items():
        monkeypatch.setenv(name, value)  # MLflow's endpoint variable serves both
    store = Store(tmp_path / "state" / "kyodo.db")
    assert isinstance(store.files, S3Files) and store.files.location == "s3://kyodo-files/svc"
    _fill(store, CHIBA)
    _fill(store, MURORAN)
    assert store.road_overlay(CHIBA, f"b-{CHIBA}-0", 0) == b"\x89PNG" + b"o" * 1000
    assert store.road_overlay(CHIBA, f"b-{CHIBA}-0", 1) == b"\x89PNG-b"
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")

    def keys() -> list[str]:
        listing = s3.list_objects_v2(Bucket="kyodo-files")
        return sorted(o["Key"] for o in listing.get("Contents", []))

    assert f"svc/road_damage/{CHIBA}/b-{CHIBA}-0/0-image.jpg" in keys() and len(keys()) == 6
    assert not (tmp_path / "state" / "files").exists()  # nothing went to the local folder
    done = store.delete_tenant(CHIBA)
    assert done["road_files"] == 3 and done["bytes"] == 1004 + 2002 + 6
    assert [k.split("/")[2] for k in keys()] == [MURORAN] * 3
    assert store.road_overlay(CHIBA, f"b-{CHIBA}-0", 0) is None
    assert store.files.get("road_damage/none.png") is None
    with pytest.raises(ValueError, match="s3://bucket"):
        open_files(tmp_path, "s3://")


def test_boto3_is_imported_only_for_an_s3_root(tmp_path: Path) -> None:
    script = ("import sys; from serving.store import Store; s = Store(sys.argv[1]); "
              "s.save_road_batch('b', '121002', '1', [{'index': 0, 'name': 'a', "
              "'overlay': b'x'}]); assert s.road_overlay('121002', 'b', 0) == b'x'; "
              "print('boto3' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "KYODO_FILE_ROOT"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "kyodo.db")], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


# ---- the commands ----

@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with two road municipalities' records, files and training data."""
    root = sandbox.make_workspace(tmp_path / "ws", TASK, {})
    monkeypatch.setenv("KYODO_ROOT", str(root))
    monkeypatch.delenv("KYODO_FILE_ROOT", raising=False)
    store = Store(root / "state" / "kyodo.db")
    for code in (CHIBA, MURORAN):
        _fill(store, code)
        _fill(store, code, age_days=500)
        for rel in (f"claim_screening/{code}.csv", f"claim_screening/labels/{code}.csv",
                    f"road_damage/{code}.csv", f"road_damage/tiles/{code}.csv",
                    f"road_damage/images/{code}/p1.jpg", f"road_damage/masks/{code}/p1.png"):
            (root / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "data" / rel).write_text("x")
    return root


def _kyodo(*args: str) -> str:
    from training.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_kyodo_purge_by_retention_tenant_and_date(workspace: Path) -> None:
    files = workspace / "state" / "files" / "road_damage"
    old = f"b-{CHIBA}-500"
    dry = _kyodo("purge", "--dry-run")  # default: photo_retention_days (400) ago
    assert "would delete 2 batches analysed before" in dry and "6 files" in dry
    assert f"{2 * (1004 + 2002 + 6):,} bytes" in dry and (files / CHIBA / old).is_dir()
    out = _kyodo("purge", "--before", "2099-01-01", "--tenant", CHIBA)
    assert out.startswith(f"deleted 2 batches of {CHIBA} analysed before 2099-01-01")
    assert "4 photos, 6 files, 2 corrections" in out and "freed" in out
    assert not [p for p in (files / CHIBA).rglob("*") if p.is_file()]
    assert len(list((files / MURORAN).rglob("*.*"))) == 6  # the other municipality's files
    out = _kyodo("purge")
    assert out.startswith("deleted 1 batches") and "3 files" in out  # Muroran's old batch
    store = Store(workspace / "state" / "kyodo.db")
    assert [b["batch_id"] for b in store.road_batches(MURORAN)] == [f"b-{MURORAN}-0"]
    from training.cli import app

    bad = CliRunner().invoke(app, ["purge", "--before", "01/02/2026"])
    assert bad.exit_code == 2 and "expected a date YYYY-MM-DD" in bad.output
    bad = CliRunner().invoke(app, ["purge", "--tenant", "千葉市"])
    assert bad.exit_code == 2 and "6-digit" in bad.output


def test_kyodo_tenants_delete_data(workspace: Path) -> None:
    data = workspace / "data"
    listed = _kyodo("tenants", "delete-data", CHIBA)  # no --yes: says what, deletes nothing
    assert "would delete" in listed and "nothing deleted: run again with --yes" in listed
    assert (data / "claim_screening" / f"{CHIBA}.csv").is_file()
    out = _kyodo("tenants", "delete-data", CHIBA, "--yes")
    assert f"{CHIBA} 千葉市: deleted" in out and "kept: 1 usage (billing) records" in out
    for line in ("queues                   1", "road_batches             2",
                 "road_files               6", "training files           6"):
        assert line in out
    assert "data/road_damage/images/121002" in out and "kyodo retrain" in out
    left = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    assert left == sorted(f"{d}".replace("CODE", MURORAN) for d in (
        "claim_screening/CODE.csv", "claim_screening/labels/CODE.csv", "road_damage/CODE.csv",
        "road_damage/tiles/CODE.csv", "road_damage/images/CODE/p1.jpg",
        "road_damage/masks/CODE/p1.png"))
    assert not (workspace / "state" / "files" / "road_damage" / CHIBA).exists()
    again = _kyodo("tenants", "delete-data", CHIBA, "--yes")
    assert "road_batches             0" in again and "training files           0" in again
    from training.cli import app

    bad = CliRunner().invoke(app, ["tenants", "delete-data", "12100", "--yes"])
    assert bad.exit_code == 2 and "6-digit" in bad.output


# ---- over HTTP ----

@pytest.fixture
def http(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    """The service app on a runtime with its own store (no models: these routes need none)."""
    from serving.runtime import Runtime

    store = Store(tmp_path / "state" / "kyodo.db")
    rt = Runtime(tmp_path, load_config(REPO / "configs" / "platform.yaml", PlatformConfig),
                 load_config(REPO / "configs" / "tenants.yaml", TenantsConfig), store)
    rt.by_key = {t.api_key_sha256: t for t in rt.tenants.tenants}
    with bound_client(rt) as client:
        yield client, store


def test_a_deleted_municipalitys_ids_answer_404_and_the_others_are_served(
        http: tuple[TestClient, Store]) -> None:
    client, store = http
    for code in (CHIBA, MURORAN):
        _fill(store, code)
    urls = {code: [f"/v1/road_damage/batches/b-{code}-0",
                   f"/v1/road_damage/batches/b-{code}-0/photos/0/overlay.png",
                   f"/v1/road_damage/batches/b-{code}-0/export?format=csv",
                   f"/v1/claim_screening/queues/q-{code}"] for code in (CHIBA, MURORAN)}
    assert [client.get(u, headers=AUTH[CHIBA]).status_code for u in urls[CHIBA]] == [200] * 4
    store.delete_tenant(CHIBA)
    for url in urls[CHIBA]:
        r = client.get(url, headers=AUTH[CHIBA])
        assert r.status_code == 404 and "error" in r.json(), url
    assert client.get("/v1/road_damage/batches", headers=AUTH[CHIBA]).json() == {"batches": []}
    assert client.get("/v1/claim_screening/feedback", headers=AUTH[CHIBA]).json() == {
        "items": []}
    assert len(client.get("/v1/claim_screening/feedback",
                          headers=AUTH[MURORAN]).json()["items"]) == 1
    for url in urls[MURORAN]:
        assert client.get(url, headers=AUTH[MURORAN]).status_code == 200, url
    png = client.get(urls[MURORAN][1], headers=AUTH[MURORAN])
    assert png.content == b"\x89PNG" + b"o" * 1000 and png.headers["content-type"] == "image/png"


def test_kyodo_files_migrate_empties_the_blob_columns(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.serving.test_store_backends import _legacy_road_tables

    root = sandbox.make_workspace(tmp_path / "ws", TASK, {})
    monkeypatch.setenv("KYODO_ROOT", str(root))
    monkeypatch.delenv("KYODO_FILE_ROOT", raising=False)
    db = root / "state" / "kyodo.db"
    _legacy_road_tables(db, None, photos=3)
    out = _kyodo("files", "migrate", "--vacuum")
    assert "moved 3 photos' blobs (5 files, 43 bytes (0.0 MB))" in out
    assert str(root / "state" / "files") in out and "kyodo.db" in out
    assert Store(db).road_overlay("402303", "legacy", 2) == b"\x89PNG-old\x02"
    assert "moved 0 photos' blobs" in _kyodo("files", "migrate")


def test_a_file_store_outage_is_a_503_without_the_cause(http: tuple[TestClient, Store],
                                                         tmp_path: Path) -> None:
    client, store = http
    _fill(store, CHIBA)
    store.files = LocalFiles(tmp_path / "state" / "kyodo.db")  # a file: every read fails
    r = client.get(f"/v1/road_damage/batches/b-{CHIBA}-0/photos/0/overlay.png",
                   headers=AUTH[CHIBA])
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    assert "photo store is unavailable" in r.json()["error"] and str(tmp_path) not in r.text
