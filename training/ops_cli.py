"""`kyodo costs` and `kyodo audit purge`: operating the shared service from the command line."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from training.console import workspace as _workspace
from training.workspace import Workspace

if TYPE_CHECKING:
    from serving.store import Store

audit_app = typer.Typer(help="The prediction audit trail.", no_args_is_help=True)


def _store(ws: Workspace) -> Store:
    from serving.store import Store

    return Store(ws.path("state") / "kyodo.db")


def costs(
    month: Annotated[str, typer.Option(help="Billing month YYYY-MM (Japan time).")],
    format: Annotated[Literal["csv", "csv_cp932", "xlsx"] | None, typer.Option(
        help="Also export the table (csv, csv_cp932 or xlsx) next to the JSON.")] = None,
) -> None:
    """Each tenant's bill by task, stand-alone estimate and saving; writes reports/costs/."""
    from models.costs import bill_table
    from serving.costs import monthly_bills
    from serving.downloads import DownloadError, table_bytes

    ws = _workspace()
    try:
        result = monthly_bills(_store(ws), ws.platform.costs, ws.tenants.tenants, month)
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    out = ws.path("reports") / "costs"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{month}.json"
    path.write_text(json.dumps(result["bills"], indent=2, ensure_ascii=False), encoding="utf-8")
    table = bill_table(result["bills"])
    typer.echo(table.to_string(index=False))
    typer.echo(f"total {result['total_yen']:,} yen allocated; stand-alone total "
               f"{result['standalone_total_yen']:,} yen -> {path}")
    if format:
        ext = "xlsx" if format == "xlsx" else "csv"
        export = out / f"{month}{'-sjis' if format == 'csv_cp932' else ''}.{ext}"
        try:
            export.write_bytes(table_bytes(table, format))
        except DownloadError as exc:
            typer.secho(f"{export}: {exc}", fg="red", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"table -> {export}")


@audit_app.command("purge")
def audit_purge(days: Annotated[int | None, typer.Option(
        help="Keep this many days (default: operations.audit_retention_days).")] = None,
        ) -> None:
    """Delete audit records older than the retention period."""
    ws = _workspace()
    keep = days if days is not None else ws.platform.operations.audit_retention_days
    removed = _store(ws).purge_audit(time.time() - keep * 86400)
    typer.echo(f"purged {removed} audit records older than {keep} days")


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `kyodo` CLI."""
    app.command()(costs)
    app.add_typer(audit_app, name="audit")

