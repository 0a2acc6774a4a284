"""What every `kyodo` command needs first: the workspace, with config errors as exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from models.configs import ConfigError
from training.workspace import Workspace


def workspace() -> Workspace:
    """The workspace (KYODO_ROOT or here); a bad config prints file, key and reason, exits 2."""
    os.environ.setdefault("BENTOML_HOME", str(Path(".bentoml").resolve()))
    # before lightgbm loads OpenMP: idle threads sleep instead of spinning on 2 busy cores
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return Workspace.load()
    except ConfigError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
