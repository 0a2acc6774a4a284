"""MLflow tracking and registry on a real PostgreSQL server and artifacts on S3-compatible
storage (moto's standalone S3 server: no MinIO binary installs from PyPI), selected by
environment variables only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from serving.launcher import free_port
from tests.pgserver import create_database, postgres_server
from training import sandbox

pytestmark = pytest.mark.slow
BUCKET = "kyodo-mlflow"
AWS_KW = {"aws_access_key_id": "kyodo", "aws_secret_access_key": "kyodo-secret",
          "region_name": "us-east-1"}


def _kyodo(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "training.cli", *args], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"kyodo {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port with a bucket `kyodo-mlflow`; yields its endpoint URL."""
    import boto3

    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                boto3.client("s3", endpoint_url=url, **AWS_KW).create_bucket(Bucket=BUCKET)
                break
            except Exception:  # not listening yet
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_train_export_promote_against_postgresql_and_s3(tmp_path: Path) -> None:
    import boto3

    from tests.conftest import SMALL

    root = sandbox.make_workspace(tmp_path / "ws", "claim_screening", SMALL)
    with postgres_server() as server, s3_server() as s3:
        url = create_database(server, "mlflow")
        env = {**os.environ, "KYODO_ROOT": str(root), "OMP_WAIT_POLICY": "PASSIVE",
               "MLFLOW_TRACKING_URI": url.replace("postgresql://", "postgresql+psycopg2://"),
               "KYODO_ARTIFACT_ROOT": f"s3://{BUCKET}/artifacts", "MLFLOW_S3_ENDPOINT_URL": s3,
               "AWS_ACCESS_KEY_ID": "kyodo", "AWS_SECRET_ACCESS_KEY": "kyodo-secret",
               "AWS_DEFAULT_REGION": "us-east-1", "BENTOML_HOME": str(tmp_path / "bento")}
        _kyodo(env, "data", "generate", "--task", "claim_screening")
        _kyodo(env, "train", "claim_screening")
        _kyodo(env, "export", "claim_screening")
        promoted = _kyodo(env, "promote", "claim_screening")
        assert json.loads(promoted)["promoted"] is True
        import psycopg2

        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT name, version FROM model_versions")
            assert cur.fetchall() == [("claim_screening", 1)]
            cur.execute("SELECT alias, version FROM registered_model_aliases")
            assert cur.fetchall() == [("champion", 1)]
            cur.execute("SELECT count(*) FROM runs")
            assert cur.fetchone()[0] >= 1
        listing = boto3.client("s3", endpoint_url=s3, **AWS_KW).list_objects_v2(Bucket=BUCKET)
        keys = [o["Key"] for o in listing.get("Contents", [])]
        assert any(k.endswith("model.onnx") for k in keys)
        assert any(k.endswith("native/model.pkl") for k in keys)
    # nothing went to the local defaults; promote read the ONNX model back from S3 to package it
    assert not (root / "mlflow" / "mlflow.db").exists()
    assert not (root / "mlflow" / "artifacts").exists()
    assert (tmp_path / "bento").is_dir()
