"""`kyodo report ...`: what pooling brought each municipality, and how its inputs drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from models.configs import task_names
from training.console import workspace
from training.workspace import Workspace

if TYPE_CHECKING:
    from serving.store.audit import References

report_app = typer.Typer(help="Reports across tenants: pooling gain, input drift.",
                         no_args_is_help=True)


@report_app.command("pooling")
def pooling(
    task: Annotated[str, typer.Option(help="Task or 'all' (every task with a trained model).")]
    = "all",
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the CI.")] = 50,
) -> None:
    """Per tenant: pooled vs local-only vs others-only headline, 95% CI of pooled - local."""
    from training.pooling import task_report, write_report

    ws = workspace()
    names = sorted(task_names()) if task == "all" else [task]
    trained = [n for n in names if (ws.root / "build" / n / "model.pkl").is_file()]
    if not trained:
        typer.secho(f"no trained model for {', '.join(names)}; run `kyodo train` first",
                    fg="red", err=True)
        raise typer.Exit(1)
    report, metrics = {}, {}
    for name in trained:
        report[name] = task_report(ws, ws.task(name), bootstrap)
        metrics[name] = next(iter(report[name].values()))["metric"]
        _table(name, report[name])
    for path in write_report(ws, report, metrics):
        typer.echo(f"wrote {path}")


def _table(name: str, rows: dict) -> None:
    typer.echo(f"\n{name}: {next(iter(rows.values()))['metric']}")
    typer.echo(f"  {'tenant':<7} {'rows':>8} {'pooled':>12} {'local':>12} {'others':>12} "
               f"{'pooled-local 95% CI':>26}")
    for code, r in rows.items():
        ci = ("" if r["ci_low"] is None else f"[{r['ci_low']:,.3f}, {r['ci_high']:,.3f}]")
        typer.echo(f"  {code:<7} {r['rows']:>8,} {_n(r['pooled'])} {_n(r['local'])} "
                   f"{_n(r['others_only'])} {ci:>26}")


def _n(v: float | None) -> str:
    return f"{'-':>12}" if v is None else f"{v:>12,.3f}"


def _drift_verdict(row: dict, threshold: float, min_rows: int) -> str:
    """One drift row's verdict for the CLI: FLAGGED (with the features), stable, or, under
    `operations.drift_min_rows` rows counted, too few rows to judge (the PSI of a few rows is
    mostly sampling noise; the operations page shows such a PSI as 注意（件数少）, not 安定)."""
    if row["flagged"]:
        return f"FLAGGED: {', '.join(row['flagged'])}"
    if row["rows_counted"] < min_rows:
        high = [f["feature"] for f in row["features"]
                if f["psi"] is not None and f["psi"] >= threshold]
        return (f"too few rows to judge (< {min_rows:,}"
                + (f"; PSI >= {threshold:g} on {len(high)} features)" if high else ")"))
    return "stable"


def _references(ws: Workspace) -> References:
    """task -> (version, reference bins) of each promoted champion (state/champions.json) as
    packaged in the BentoML store; a champion that cannot be read is named and skipped, as
    serving skips a package it cannot load."""
    import bentoml

    from models.drift import REFERENCE
    from training.registry import read_champions

    out: References = {}
    for task, entry in read_champions(ws).items():
        try:
            path = Path(bentoml.models.get(entry["tag"]).path)
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            reference = path / REFERENCE
            if reference.is_file():
                out[task] = (str(meta.get("version", "")),
                             json.loads(reference.read_text(encoding="utf-8")))
        except (bentoml.exceptions.BentoMLException, OSError, ValueError, KeyError,
                TypeError) as exc:
            typer.secho(f"{task}: cannot read its champion {entry!r} ({exc}); skipped",
                        fg="yellow", err=True)
    return out


@report_app.command("drift")
def drift(days: Annotated[float | None, typer.Option(
        min=0.01, help="Window of requests (default: operations.drift_days).")] = None,
          ) -> None:
    """PSI per task, tenant and input feature: the champion's reference vs recent requests."""
    from serving.store import Store

    ws = workspace()  # the configs are validated (and errors told) first
    ops = ws.platform.operations
    window = days or ops.drift_days
    rows = Store(ws.path("state") / "kyodo.db").audit_trail.drift_report(
        _references(ws), window, ops.drift_psi_threshold, ops.drift_min_rows)
    threshold = ops.drift_psi_threshold
    typer.echo(f"PSI over the last {window:g} days (flag at >= {threshold:g})")
    for r in rows:
        top = ", ".join(f"{f['feature']} {f['psi']:.3f}" for f in r["features"][:3]
                        if f["psi"] is not None)
        flag = _drift_verdict(r, threshold, ops.drift_min_rows)
        typer.echo(f"  {r['task']:<16} {r['tenant']:<7} v{r['model_version']:<4} "
                   f"{r['rows_counted']:>9,} rows  {flag}  (top: {top})")
    if not rows:
        typer.echo("  no requests to the current champions in the window")
    out = ws.path("reports") / "drift.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"days": window, "threshold": threshold, "drift": rows},
                              indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out}")
