"""A real PostgreSQL server for tests: Debian's binaries, a throw-away cluster on a free port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from serving.launcher import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.skip(f"PostgreSQL server binaries ({name}) are not installed "
                    "(Debian: apt-get install postgresql)")
    return found[-1]


def _as_owner(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as the `postgres` account when we are root
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away cluster; yield its URL (user postgres, database postgres); stop it."""
    # its own /tmp folder: the server account cannot enter root's 0700 pytest folders
    base = Path(tempfile.mkdtemp(prefix="kyodo-pg-"))
    data, sock = base / "pgdata", base / "pgsock"
    for d in (data, sock):
        d.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        for d in (data, sock):
            shutil.chown(d, "postgres")
    port = free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(_as_owner([_bin("initdb"), "-D", str(data), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C"]), **run)
    subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-w", "-l", str(base / "pg.log"),
                              "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1",
                              "start"]), **run)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A new database on the server at url; returns its URL."""
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return url.rsplit("/", 1)[0] + f"/{name}"
