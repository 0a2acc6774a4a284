"""The `kyodo` command line: data, train, export, promote, rollback, models, feedback, serve."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from models.configs import task_labels, task_names
from training.console import workspace as _ws
from training.ops_cli import register as register_ops
from training.report_cli import report_app

app = typer.Typer(help="kyodo: shared cloud AI for municipalities. Run from the repository root.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Generate and validate the pooled data under data/.",
                       no_args_is_help=True)
feedback_app = typer.Typer(help="Reviewer feedback recorded by the service.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants and their demo API keys.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(feedback_app, name="feedback")
app.add_typer(tenants_app, name="tenants")
register_ops(app, tenants_app)  # costs, purge, audit purge, tenants delete-data
app.add_typer(report_app, name="report")


def task_groups() -> dict[str, typer.Typer]:
    """Each listed task's own command group, if it has one, by convention: training/<task>_cli.py
    exposing `app` (a Typer) and `GROUP`, its command name (default: the task's name)."""
    groups: dict[str, typer.Typer] = {}
    for task in task_names():
        if importlib.util.find_spec(f"training.{task}_cli") is None:
            continue  # optional: train, export, promote, data ... cover every task already
        module = importlib.import_module(f"training.{task}_cli")
        groups[getattr(module, "GROUP", task)] = module.app
    return groups


for _group, _app in task_groups().items():
    app.add_typer(_app, name=_group)

TaskArg = Annotated[str, typer.Argument(help="Task name, e.g. claim_screening.")]


def _tasks(name: str) -> list[str]:
    known = sorted(task_names())
    if name == "all":
        return known
    if name not in known:
        typer.secho(f"unknown task {name!r}; known: {', '.join(known)}", fg="red", err=True)
        raise typer.Exit(2)
    return [name]


def _echo(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


@data_app.command("generate")
def data_generate(task: Annotated[str, typer.Option(help="Task or 'all'.")] = "all") -> None:
    """Generate deterministic synthetic data for every subscribing tenant (seeded from configs)."""
    from training.data import write_generated

    ws = _ws()
    for name in _tasks(task):
        counts = write_generated(ws, ws.task(name))
        typer.echo(f"{name}: {sum(counts.values()):,} rows for {len(counts)} tenants "
                   f"under {ws.path('data') / name}")


@data_app.command("validate")
def data_validate(task: Annotated[str, typer.Option(help="Task or 'all'.")] = "all") -> None:
    """Validate every tenant file against the task's schema; exit 1 naming file, column and row."""
    from training.data import load_pooled

    ws = _ws()
    for name in _tasks(task):
        try:
            frames = load_pooled(ws, ws.task(name), consent_only=False)
        except (ValueError, FileNotFoundError) as exc:
            typer.secho(f"{name}: INVALID: {exc}", fg="red", err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"{name}: OK ({', '.join(f'{k}: {len(v):,} rows' for k, v in frames.items())})")


@app.command()
def train(task: TaskArg, cluster: Annotated[str | None, typer.Option(
        envvar="KYODO_DASK_SCHEDULER",
        help="Dask scheduler address (tcp://host:8786): LightGBM trains on its workers.")] = None,
          ) -> None:
    """Fit the pooled model and local-only baselines, evaluate on held-out data, log to MLflow."""
    from training.cluster import connect
    from training.pipeline import train as run

    ws = _ws()
    with connect(cluster):
        for name in _tasks(task):
            evaluation = run(ws, ws.task(name))
            _echo({"task": name, "headline": evaluation["headline"],
                   "run_id": evaluation["run_id"]})


@app.command()
def export(task: TaskArg) -> None:
    """Export to ONNX, check parity with the native model, register a new MLflow version."""
    from training.export import ParityError
    from training.pipeline import export as run

    ws = _ws()
    for name in _tasks(task):
        try:
            result = run(ws, ws.task(name))
        except ParityError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from exc
        _echo({"task": name, "version": result["version"], "parity": result["parity"]})


@app.command()
def promote(task: TaskArg,
            version: Annotated[str | None, typer.Option(help="Version (default latest).")] = None,
            force: Annotated[bool, typer.Option(
                "--force", help="Promote although the headline ties or trails the champion's "
                                "(every other check still runs); needs --reason.")] = False,
            reason: Annotated[str | None, typer.Option(
                help="Why a --force promotion is right; kept with who/when and both headlines "
                     "in the champion history and on the MLflow version.")] = None,
            ) -> None:
    """Make a version the champion if it beats the current one on the same holdout (or, with
    --force --reason, on purpose although it does not)."""
    from training.registry import OverrideError, PromotionRefused
    from training.registry import promote as run

    ws = _ws()
    try:
        _echo(run(ws, ws.task(task), version, who=os.environ.get("USER", "cli"), force=force,
                  reason=reason))
    except OverrideError as exc:
        typer.secho(f"not promoted: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    except PromotionRefused as exc:
        typer.secho(f"not promoted: {exc}", fg="yellow", err=True)
        raise typer.Exit(1) from exc


@app.command()
def retrain(task: TaskArg) -> None:
    """Staff feedback -> labels -> new data version (DVC) -> train -> export -> gated promote."""
    from training.retrain import retrain as run

    ws = _ws()
    _echo(run(ws, ws.task(task), who=os.environ.get("USER", "cli")))


@app.command()
def rollback(task: TaskArg) -> None:
    """Restore the previous champion."""
    from training.registry import PromotionRefused
    from training.registry import rollback as run

    ws = _ws()
    try:
        _echo(run(ws, ws.task(task), who=os.environ.get("USER", "cli")))
    except PromotionRefused as exc:
        typer.secho(str(exc), fg="yellow", err=True)
        raise typer.Exit(1) from exc


@app.command()
def models(task: Annotated[str, typer.Option(help="Task or 'all'.")] = "all") -> None:
    """List registered model versions, aliases and headline metrics."""
    from training.registry import list_models

    ws = _ws()
    rows = list_models(ws, _tasks(task))
    if not rows:
        typer.echo("no registered models yet: run `kyodo train` and `kyodo export`")
    for r in rows:
        typer.echo(f"{r['task']:<16} v{r['version']:<4} {','.join(r['aliases']) or '-':<10} "
                   f"{r['metric']}={r['value']}  trained {r['trained_at']}")


@feedback_app.command("export")
def feedback_export(
    task: Annotated[str, typer.Option(help="Task.")] = "claim_screening",
    out: Annotated[Path, typer.Option(help="Output folder for <tenant>.csv label files.")] = Path(
        "feedback"),
) -> None:
    """Write reviewer outcomes as training labels (claim_id, error_type, recoverable_points)."""
    from serving.store import Store

    ws = _ws()
    store = Store(ws.path("state") / "kyodo.db")
    written = store.export_labels(task, out)
    for code, n in written.items():
        typer.echo(f"{code}: {n} labels -> {out / f'{code}.csv'}")
    if not written:
        typer.echo("no feedback recorded yet")


@tenants_app.command("pages")
def tenants_pages(port: Annotated[int, typer.Option(help="The service's port.")] = 3000) -> None:
    """Each listed task's page (configs/platform.yaml `tasks`) with a subscriber's demo key: the
    first municipality in configs/tenants.yaml that subscribes to it (any subscriber's works)."""
    ws = _ws()
    for name, label in task_labels().items():
        first = next((t for t in ws.tenants.tenants if name in t.tasks), None)
        key = f"key kyodo-demo-{first.code}, {first.name}" if first else "no subscriber"
        typer.echo(f"{f'http://localhost:{port}/ui/{name}':<44} {label} ({key})")


@tenants_app.command("keys")
def tenants_keys() -> None:
    """Print the demo API keys (kyodo-demo-<code>) and check them against the stored hashes."""
    from models.configs import hash_api_key

    ws = _ws()
    admin = "kyodo-demo-admin"
    ok = hash_api_key(admin) == ws.tenants.admin_key_sha256
    typer.echo(f"{'admin':<8} {'管理者':<8} {admin:<24} {'ok' if ok else 'hash differs'}")
    for t in ws.tenants.tenants:
        key = f"kyodo-demo-{t.code}"
        ok = hash_api_key(key) == t.api_key_sha256
        typer.echo(f"{t.code:<8} {t.name:<8} {key:<24} {'ok' if ok else 'custom key'} "
                   f"tasks={','.join(t.tasks)}")


@app.command()
def serve(port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
          workers: Annotated[int | None, typer.Option(
              min=1, help="Worker processes (default: serving.workers in configs/platform.yaml, "
                          "else one per CPU core).")] = None) -> None:
    """Serve the champion models, API and pages with BentoML (foreground)."""
    _ws()
    cmd = [sys.executable, "-m", "bentoml", "serve", "serving.service:Kyodo", "--port", str(port)]
    env = {**os.environ, **({"KYODO_WORKERS": str(workers)} if workers else {})}
    raise typer.Exit(subprocess.call(cmd, env=env))


if __name__ == "__main__":
    app()
