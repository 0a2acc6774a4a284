"""`kyodo nudge`: uplift on any randomised-experiment CSV, and outreach lists from a roster."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pandas as pd

nudge_app = typer.Typer(help="checkup_nudge tools: outreach plans from the CLI, uplift on any RCT "
                        "CSV.", no_args_is_help=True, pretty_exceptions_enable=False)
app, GROUP = nudge_app, "nudge"  # `kyodo nudge ...` (training/cli.py finds it by the task's name)

Encoding = Annotated[str, typer.Option(help="Output encoding: utf-8-sig (Excel) or cp932.")]


def _write(table: pd.DataFrame, out: Path, encoding: str, line_end: str = "\r\n") -> None:
    """The table as staff open it, through the one formula-safe download writer."""
    from models.downloads import DownloadError, write_table

    try:
        write_table(table, out, encoding, line_end)
    except DownloadError as exc:
        raise _fail(f"{out}: {exc}") from exc


def _fail(message: str) -> typer.Exit:
    """Print a user error and return the exit (code 2) to raise."""
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise _fail(f"{path}: file not found")
    return path.read_bytes()


def _fmt(v: dict[str, float]) -> str:
    return f"{v['estimate']:+.4f}  [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]"


def _print_report(r: dict[str, Any]) -> None:
    arms = ", ".join(f"{a} ({n})" for a, n in r["arms"].items())
    typer.echo(f"rows: {r['rows']}; arms: {arms}")
    if r.get("clusters"):
        typer.echo(f"clusters: {r['clusters']} (folds keep a cluster together; CIs resample "
                   "whole clusters)")
    dropped = r["dropped_missing_outcome"]
    if dropped:
        typer.echo(f"dropped {dropped} row{'s' if dropped > 1 else ''} with a missing outcome")
    typer.echo(f"features used: {', '.join(r['features'])}")
    for col, why in r["excluded_columns"].items():
        typer.echo(f"  left out '{col}': {why}")
    typer.echo(f"learner: {r['learner']}  ({r['estimation']})")
    cmp = r["arm_comparison"]
    typer.echo("\nArms: events and mean outcome (doubly robust)")
    for a, n in cmp["events"].items():
        typer.echo(f"  {a:<20}{n:>8} events  {cmp['means'][a]:.4f}")
    if cmp["cannot_tell_apart"]:
        pairs = "; ".join(f"{a} vs {b}" for a, b in cmp["cannot_tell_apart"])
        typer.echo(f"  cannot be told apart (95% CI of the difference includes 0): {pairs}")
    pv = r["policy_value"]
    typer.echo("\nPolicy value: mean outcome per person, cross-fitted (95% bootstrap CI)")
    labels = {"recommended": f"RECOMMENDED: {r['decision']['recommended']}",
              "model": "uplift model (best arm per person)",
              "policy_tree": "policy tree (depth 2)",
              "best_single_arm": f"everyone gets best arm ({r['best_single_arm']})",
              "random_arm": "random arm", "control": "control for everyone",
              "recommended_minus_best_single_arm": "recommended - best single arm",
              "recommended_minus_random_arm": "recommended - random arm",
              "recommended_minus_control": "recommended - control"}
    for key, label in labels.items():
        typer.echo(f"  {label:<40}{_fmt(pv[key])}")
    typer.echo("\nGain over 'everyone gets the best arm' (cross-fitted, 95% CI; 'selected' "
               "decides)")
    gain_labels = {"selected": "selected (candidate chosen out of fold)"}
    for name, g in r["decision"]["gain_over_best_single_arm"].items():
        typer.echo(f"  {gain_labels.get(name, name):<40}{_fmt(g)}")
    typer.echo("Gain as served by --score (refitted on every row: cross-fitted gain plus the "
               "learning curve's next step; the CI adds the learned policies' spread)")
    for name, g in r["decision"]["served_gain_over_best_single_arm"].items():
        typer.echo(f"  {gain_labels.get(name, name):<40}{_fmt(g)}")
    typer.echo("  (95% CIs for the true gain. A gain measured on other persons has its own error "
               "s: it should fall within each side widened to sqrt(side^2 + (1.96 s)^2).)")
    if r["decision"]["recommended"] == "policy_tree":
        typer.echo("\nPolicy tree rules (refitted on every row):")
        for rule in r["policy_tree_rules"]:
            typer.echo(f"  {rule}")
    for message in r["messages"]:
        typer.secho(f"\n{message}", fg="yellow")


SCORE_HELP = ("Another CSV to score with the model and policy tree refitted on every row of "
              "FILE (the 'as served' gains are for these; the other figures are cross-fitted, "
              "for the same procedure on (K-1)/K of the rows). Output columns: "
              "the input, p_<arm> = P(outcome) under each arm, uplift_<arm> = p_<arm> - "
              "p_<control> per treated arm, and arm = the recommended policy's arm (input columns "
              "with one of these names are kept with the suffix _input).")


@nudge_app.command("fit-rct")
def fit_rct(
    file: Annotated[Path, typer.Argument(help="Randomised experiment CSV (UTF-8 or cp932).")],
    treatment: Annotated[str, typer.Option(help="Column with the arm each row received.")],
    outcome: Annotated[str, typer.Option(help="Binary outcome column (0/1).")],
    control: Annotated[str, typer.Option(help="Value of the treatment column for control.")],
    features: Annotated[str | None, typer.Option(
        help="Comma-separated covariates. Default: every other column except ids, outcome-like "
             "columns (non-zero only with one outcome) and columns that differ between arms "
             "(measured after treatment); the columns used and left out are printed.")] = None,
    propensity: Annotated[str | None, typer.Option(
        help="Column with each row's assignment probability (default: arm shares, "
             "cross-fitted).")] = None,
    cluster: Annotated[str | None, typer.Option(
        help="Column with the unit that was randomised when it is not the row (a household "
             "id: GGL 2008 mailed households). Rows of one cluster share a cross-fitting fold "
             "and every 95% CI resamples whole clusters (cluster bootstrap); the column is not "
             "a feature. Without it every row is its own unit.")] = None,
    drop_missing_outcome: Annotated[bool, typer.Option(
        help="Leave out rows whose outcome is empty/NA (the count is printed); without it a "
             "missing outcome is an error naming the row.")] = False,
    score: Annotated[Path | None, typer.Option(help=SCORE_HELP)] = None,
    out: Annotated[Path | None, typer.Option(
        help="Where to write --score predictions (CSV, LF line ends).")] = None,
    learner: Annotated[str, typer.Option(help="auto (t and s, chosen per fold), t, s or dr.")
                       ] = "auto",
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-fitting folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed (folds, bootstrap, boosting).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    encoding: Annotated[str, typer.Option(
        help="Encoding of --out: utf-8 (no BOM, default), utf-8-sig (Excel) or cp932.")
                        ] = "utf-8",
) -> None:
    """Learn which arm works for whom from an RCT; recommend a personalised policy only when
    its cross-fitted gain over the best simple policy has a 95% CI above zero and every arm
    has at least 100 events (a smaller trial is too small to personalise)."""
    from models.checkup_nudge.rct import RctInputError, read_table, score_rct
    from models.checkup_nudge.rct import fit_rct as run

    if (score is None) != (out is None):
        raise _fail("--score and --out go together")
    if learner not in ("auto", "t", "s", "dr"):
        raise _fail(f"--learner must be auto, t, s or dr, got {learner!r}")
    if encoding not in ("utf-8", "utf-8-sig", "cp932"):
        raise _fail(f"--encoding must be utf-8, utf-8-sig or cp932, got {encoding!r}")
    cols = [c.strip() for c in features.split(",") if c.strip()] if features else None
    try:
        # arm names are never read as missing values (a control arm called "none" or "NA")
        frame = read_table(_read(file), labels=[treatment, *([cluster] if cluster else [])])
        result = run(frame, treatment, outcome, control, cols, propensity,
                     seed, learner, folds,  # type: ignore[arg-type]
                     drop_missing_outcome=drop_missing_outcome, cluster=cluster)
    except RctInputError as exc:
        raise _fail(f"{file}: {exc}") from exc
    try:
        scored = score_rct(result, read_table(_read(score))) if score else None
    except RctInputError as exc:
        raise _fail(f"{score}: {exc}") from exc
    if as_json:
        typer.echo(json.dumps(result.report, indent=2, ensure_ascii=False))
    else:
        _print_report(result.report)
    if scored is not None and out is not None:
        _write(scored, out, encoding, line_end="\n")
        typer.echo(f"\nwrote {len(scored)} rows with arm, p_<arm> and uplift_<arm> to {out}")


@nudge_app.command("plan")
def plan(
    roster: Annotated[Path, typer.Argument(
        help="Resident roster: CSV/TSV (UTF-8, cp932, UTF-16) or xlsx; Japanese headers too.")],
    out: Annotated[Path, typer.Option(help="Outreach list CSV to write.")],
    budget: Annotated[float | None, typer.Option(
        help="Budget in yen (default: the model's yen per resident x residents).")] = None,
    model_dir: Annotated[Path, typer.Option(help="Folder with model.onnx and nudge.json.")] = Path(
        "build/checkup_nudge/onnx"),
    encoding: Encoding = "utf-8-sig",
    include_all: Annotated[bool, typer.Option(
        "--all", help="List every resident, not only those mailed.")] = False,
    allow_new_districts: Annotated[bool, typer.Option(
        help="Score districts the model has not seen with the municipality's average.")] = False,
    fiscal_year: Annotated[int | None, typer.Option(
        min=2000, max=2100, help="Fiscal year whose 特定健診 ages apply (default: the current "
        "one); residents outside them are left out and listed under 'excluded'.")] = None,
) -> None:
    """Score a roster with the exported model and write the outreach list within the budget."""
    from models.checkup_nudge.schema import RosterInputError, read_roster
    from models.checkup_nudge.scoring import (
        OnnxArmPredictor,
        list_table,
        plan_outreach,
        score_residents,
        unknown_districts,
    )
    from models.onnx_session import open_session

    if not (model_dir / "model.onnx").is_file():
        raise _fail(f"{model_dir}: no model.onnx; run `kyodo train checkup_nudge` and export")
    t0 = time.perf_counter()
    assets = json.loads((model_dir / "nudge.json").read_text(encoding="utf-8"))
    session = open_session(model_dir / "model.onnx")
    try:
        residents = read_roster(_read(roster), year=fiscal_year, name=roster.name)
        problem = None if allow_new_districts else unknown_districts(
            residents, assets, residents.attrs["lines"])
        if problem:
            raise _fail(f"{roster}: {problem} (--allow-new-districts)")
        # the arms' ONNX runs on every core: the CLI has the machine to itself
        predictor = OnnxArmPredictor(session, workers=os.cpu_count() or 1)
        scored = score_residents(residents, assets, predictor)
        yen = budget if budget is not None else assets["budget_yen_per_resident"] * len(scored)
        listing, summary = plan_outreach(scored, yen, assets["costs"], assets.get("policy"))
    except (RosterInputError, ValueError) as exc:
        raise _fail(f"{roster}: {exc}") from exc
    _write(list_table(listing, include_all), out, encoding)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["excluded"] = residents.attrs["excluded"]
    typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))


@nudge_app.command("import-xml")
def import_xml(
    files: Annotated[list[Path], typer.Argument(
        help="特定健診 standard XML files (HL7 CDA, one per person) or ZIPs of them.")],
    out: Annotated[Path, typer.Option(help="CSV to write.")],
    tenant: Annotated[str, typer.Option(
        help="6-digit municipality code: the join key is pseudonymised per municipality.")],
    roster: Annotated[Path | None, typer.Option(
        help="A roster with 保険者番号 + 記号 + 番号 (or 健診キー) columns: write it with BMI, "
             "収縮期血圧, HbA1c and LDL filled from the XML (the card columns are dropped). "
             "Without it, write one row per person: 健診キー and the results.")] = None,
    encoding: Encoding = "utf-8-sig",
) -> None:
    """Read 特定健診 XML results (JLAC10 codes) keyed by a pseudonymised card key; never writes
    the insurer or card numbers."""
    import re

    from models.checkup_nudge.checkup_xml import CheckupXmlError, read_results
    from models.checkup_nudge.schema import RosterInputError, read_roster

    if not re.fullmatch(r"\d{6}", tenant):
        raise _fail(f"--tenant must be a 6-digit municipality code, got {tenant!r}")
    try:
        results = read_results([(p.name, _read(p)) for p in files], tenant)
    except CheckupXmlError as exc:
        raise _fail(str(exc)) from exc
    summary: dict[str, Any] = results.summary()
    if roster is None:
        table = results.frame.drop(columns=["file"]).rename(columns={
            "checkup_key": "健診キー", "sex": "性別", "birth_date": "生年月日",
            "exam_date": "健診実施日", "bmi": "BMI", "sbp": "収縮期血圧", "hba1c": "HbA1c",
            "ldl": "LDLコレステロール"})
        table["性別"] = table["性別"].astype("Int64")
    else:
        try:
            table = read_roster(_read(roster), tenant, name=roster.name, results=results)
        except RosterInputError as exc:
            raise _fail(f"{roster}: {exc}") from exc
        summary = {**table.attrs["checkup_xml"], "excluded": table.attrs["excluded"]}
    _write(table, out, encoding)
    summary["rows_written"] = len(table)
    typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
