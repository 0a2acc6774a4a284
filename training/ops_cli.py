"""`kyodo costs`, `kyodo audit purge`, `kyodo purge` and `kyodo tenants delete-data`: operating
the shared service from the command line."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from training.console import workspace as _workspace
from training.workspace import Workspace

if TYPE_CHECKING:
    from serving.store import Store

audit_app = typer.Typer(help="The prediction audit trail.", no_args_is_help=True)
files_app = typer.Typer(help="The file store of road photos and overlays.",
                        no_args_is_help=True)


def _store(ws: Workspace) -> Store:
    from serving.store import Store

    return Store(ws.path("state") / "kyodo.db")


def costs(
    month: Annotated[str, typer.Option(help="Billing month YYYY-MM (Japan time).")],
    format: Annotated[Literal["csv", "csv_cp932", "xlsx"] | None, typer.Option(
        help="Also export the table (csv, csv_cp932 or xlsx) next to the JSON.")] = None,
) -> None:
    """Each tenant's bill by task, stand-alone estimate and saving; writes reports/costs/."""
    from models.costs import bill_table, monthly_bills
    from models.downloads import DownloadError, table_bytes

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


def _cutoff(before: str | None, days: int) -> tuple[float, str]:
    """Unix seconds of 00:00 Japan time on `before` (YYYY-MM-DD), else `days` ago; and the day."""
    from models.costs import JST

    if before is None:
        day = datetime.fromtimestamp(time.time() - days * 86400, JST).date()
    else:
        try:
            day = date.fromisoformat(before)
        except ValueError:
            typer.secho(f"--before {before!r}: expected a date YYYY-MM-DD (Japan time)",
                        fg="red", err=True)
            raise typer.Exit(2) from None
    return datetime(day.year, day.month, day.day, tzinfo=JST).timestamp(), day.isoformat()


def _files_or_exit(work: Callable[[], dict[str, int]]) -> dict[str, int]:
    """work(), or exit 1 saying the file store failed (rows already deleted stay deleted: the
    files left behind are named by no row; rerun when the store is back)."""
    from serving.store.files import FileStoreError

    try:
        return work()
    except FileStoreError as exc:
        typer.secho(f"{exc}\nrerun when the file store is back", fg="red", err=True)
        raise typer.Exit(1) from exc


def _check_code(code: str) -> None:
    if not re.fullmatch(r"\d{6}", code):
        typer.secho(f"{code!r}: expected a 6-digit 全国地方公共団体コード", fg="red", err=True)
        raise typer.Exit(2)


def _size(n: int) -> str:
    return f"{n:,} bytes ({n / 1e6:,.1f} MB)"


def purge(
    before: Annotated[str | None, typer.Option(
        help="Delete what was analysed before this day, YYYY-MM-DD, 00:00 Japan time "
             "(default: today minus operations.photo_retention_days).")] = None,
    tenant: Annotated[str | None, typer.Option(
        help="Only this municipality (6-digit code).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Count only; delete nothing.")] = False,
) -> None:
    """Delete road photos, overlays, their metadata and corrections older than the retention
    period (files and database rows); prints counts and bytes freed."""
    if tenant is not None:
        _check_code(tenant)
    ws = _workspace()
    cutoff, day = _cutoff(before, ws.platform.operations.photo_retention_days)
    done = _files_or_exit(lambda: _store(ws).delete_road(tenant, before=cutoff,
                                                         dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    who = f" of {tenant}" if tenant else ""
    typer.echo(f"{verb} {done['batches']} batches{who} analysed before {day} (Japan time): "
               f"{done['photos']} photos, {done['files']} files, {done['corrections']} "
               f"corrections; {_size(done['bytes'])} {'to free' if dry_run else 'freed'}")


def tenant_data_files(data: Path, code: str) -> list[Path]:
    """A tenant's training files under data/<task>/: files named <code>.* anywhere (frames,
    labels/, tiles/) and folders named <code> (images/<code>/, masks/<code>/)."""
    if not data.is_dir():
        return []
    found = [p for task in sorted(data.iterdir()) if task.is_dir() for p in task.rglob("*")
             if p.name.split(".")[0] == code]
    # a folder's contents go with it: list the top-most matches only
    return sorted(p for p in found if not any(q in p.parents for q in found))


def delete_data(
    code: Annotated[str, typer.Argument(help="The municipality's 6-digit code.")],
    yes: Annotated[bool, typer.Option("--yes", help="Really delete (else: list only).")] = False,
) -> None:
    """Delete one municipality's data on request: its review queues, feedback, audit trail,
    drift counts, road photos, overlays and corrections (database and files) and its training
    files data/<task>/<code>.*; usage (billing) records are kept. Models already trained on
    the data are replaced at the next training."""
    _check_code(code)
    ws = _workspace()
    known = {t.code: t.name for t in ws.tenants.tenants}
    done = _files_or_exit(lambda: _store(ws).delete_tenant(code, dry_run=not yes))
    files = tenant_data_files(ws.path("data"), code)
    if yes:
        for path in files:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    verb = "deleted" if yes else "would delete"
    typer.echo(f"{code} {known.get(code, '(not in configs/tenants.yaml)')}: {verb}")
    for kind in ("queues", "queue_items", "feedback", "audit", "drift", "road_batches",
                 "road_photos", "road_files", "road_corrections"):
        typer.echo(f"  {kind:<17} {done[kind]:>8}")
    typer.echo(f"  {'photo bytes':<17} {_size(done['bytes'])}")
    typer.echo(f"  {'training files':<17} {len(files):>8}")
    for path in files:
        typer.echo(f"    {path.relative_to(ws.root) if path.is_relative_to(ws.root) else path}")
    typer.echo(f"  kept: {done['usage_kept']} usage (billing) records")
    if not yes:
        typer.echo("nothing deleted: run again with --yes")
        return
    if code in known:
        typer.echo("its key still works: remove it from configs/tenants.yaml, so that nothing "
                   "new is recorded and no synthetic data is generated for it")
    typer.echo("next: retrain each task (`kyodo retrain <task>`: the new models no longer learn "
               "from its data) and `dvc gc` to drop old data versions from the DVC cache")


@files_app.command("migrate")
def files_migrate(vacuum: Annotated[bool, typer.Option(
        help="Then VACUUM the SQLite file, so it gives the space back (locks it meanwhile).")]
        = False) -> None:
    """Move photos and overlays that older stores kept as blobs in the database to the file
    store (they are served either way; afterwards the database holds metadata only)."""
    from serving.store.sqldb import SQLiteDB

    ws = _workspace()
    store = _store(ws)
    moved = _files_or_exit(store.migrate_road_blobs)
    typer.echo(f"moved {moved['photos']} photos' blobs ({moved['files']} files, "
               f"{_size(moved['bytes'])}) to {store.files.location}")
    if vacuum and isinstance(store.db, SQLiteDB):
        before = store.path.stat().st_size
        store.db.connection().execute("VACUUM")
        typer.echo(f"{store.path}: {_size(before)} -> {_size(store.path.stat().st_size)}")


def register(app: typer.Typer, tenants_app: typer.Typer) -> None:
    """Add the operations commands to the `kyodo` CLI (`tenants`: the `kyodo tenants` group)."""
    app.command()(costs)
    app.command()(purge)
    app.add_typer(audit_app, name="audit")
    app.add_typer(files_app, name="files")
    tenants_app.command("delete-data")(delete_data)

