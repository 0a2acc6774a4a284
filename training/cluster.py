"""Training on a Dask cluster when configured (kyodo train --cluster, KYODO_DASK_SCHEDULER)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from models import lgbm


@contextmanager
def connect(address: str | None) -> Iterator[None]:
    """LightGBM fits inside the block run on the scheduler's workers; without an address, here."""
    if not address:
        yield
        return
    from dask.distributed import Client

    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        typer.secho(f"cannot reach the Dask scheduler at {address}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    workers = len(client.scheduler_info()["workers"])
    typer.echo(f"training LightGBM on {address} ({workers} workers)", err=True)
    try:
        with lgbm.on_cluster(client):
            yield
    finally:
        client.close()
