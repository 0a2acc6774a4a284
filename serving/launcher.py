"""Run the service as a real `bentoml serve` process on a free loopback port (tests, benches)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TARGET = "serving.service:Kyodo"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def bentoml_serve(env: dict[str, str], log: Path, timeout_s: float = 180,
                  target: str = TARGET, degraded_ok: bool = False,
                  workers: int | None = 1) -> Iterator[str]:
    """Serve until /readyz answers 200 and yield the base URL; always stop the process group.

    `env` is added to this process's environment (e.g. KYODO_ROOT of a workspace);
    `degraded_ok`: also yield once loading has finished with a task missing (503 naming it);
    `workers`: worker processes (KYODO_WORKERS; None: the workspace's serving.workers, else
    one per core). Tests default to one: it loads fastest on a shared machine.
    """
    with served(env, log, timeout_s, target, degraded_ok, workers) as (url, _):
        yield url


@contextmanager
def served(env: dict[str, str], log: Path, timeout_s: float = 180, target: str = TARGET,
           degraded_ok: bool = False, workers: int | None = 1,
           ) -> Iterator[tuple[str, subprocess.Popen]]:
    """bentoml_serve that also yields the `bentoml serve` process (the workers' parent), for
    tests that kill workers or the whole service."""
    port = free_port()
    cmd = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1",
           "--port", str(port)]
    extra = {"KYODO_WORKERS": str(workers)} if workers else {}
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env, **extra}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc, log, timeout_s, degraded_ok)
        yield url, proc
    finally:
        stop(proc)


def worker_pids(proc: subprocess.Popen) -> list[int]:
    """The pids of the service's worker processes (BentoML's circus arbiter forks them)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return sorted(c.pid for c in children
                  if any("_bentoml_impl.worker.service" in a for a in _cmdline(c)))


def _cmdline(p: object) -> list[str]:
    import psutil

    try:
        return p.cmdline()  # type: ignore[attr-defined]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float,
                degraded_ok: bool = False) -> None:
    """Poll GET /readyz until 200 (or a 503 listing tasks, with degraded_ok); raise with the
    server log's tail if it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {proc.returncode}:\n{_tail(log)}")
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)
            if r.status_code == 200 or (degraded_ok and r.status_code == 503
                                        and r.json().get("tasks")):
                return
        except (httpx.TransportError, ValueError):  # not up, or not our JSON yet
            pass
        time.sleep(0.25)
    raise TimeoutError(f"bentoml serve not ready after {timeout_s:.0f} s:\n{_tail(log)}")


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.is_file() else ""


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the arbiter stops its workers), SIGKILL if it
    lingers; workers still alive then (circus starts each in its own session) are killed too."""
    workers = worker_pids(proc)
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            break
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    kill_all(workers)


def kill_all(pids: list[int]) -> None:
    """SIGKILL each of these worker processes that is still running."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
