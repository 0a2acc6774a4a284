"""`kyodo claims`: the national code masters table and レセ電 (UKE) import for claim_screening."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

claims_app = typer.Typer(help="claim_screening data: national masters, レセ電 (UKE) import.",
                         no_args_is_help=True, pretty_exceptions_enable=False)
masters_app = typer.Typer(help="The 支払基金 code masters (s, y, b, t, c) as a compact table.",
                          no_args_is_help=True)
claims_app.add_typer(masters_app, name="masters")
app, GROUP = claims_app, "claims"  # `kyodo claims ...` (training/cli.py finds it by task name)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(2)


@masters_app.command("build")
def masters_build(
    source: Annotated[Path, typer.Option(help="Folder of 支払基金 master files, e.g. a "
                                              "receiptisan csv/master/<year> folder.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the committed "
                                                  "table models/claim_screening/masters/"
                                                  "table).")] = None,
) -> None:
    """Build <kind>.parquet and manifest.json from the newest file of each kind in SOURCE."""
    from models.claim_screening import masters as M

    if not source.is_dir():
        raise _fail(f"--source {source}: not a folder")
    try:
        manifest = M.build(source, out or M.TABLE_DIR)
    except M.MasterError as exc:
        raise _fail(str(exc)) from exc
    for kind, info in manifest["kinds"].items():
        files = info.get("file") or ", ".join(f["file"] for f in info.get("files", []))
        dated = f" ({info['date']})" if "date" in info else ""
        typer.echo(f"{kind} {info['name']}: {info['rows']:,} rows from {files}{dated}")
    if manifest["missing"]:
        typer.secho(f"missing from {source}: {', '.join(manifest['missing'])}", fg="yellow",
                    err=True)
    typer.echo(f"master_version {manifest['master_version']} -> {out or M.TABLE_DIR}")


@masters_app.command("show")
def masters_show() -> None:
    """The masters in use (KYODO_CLAIM_MASTERS or the committed table): version, kinds, rows."""
    from models.claim_screening import masters as M

    m = M.in_use()
    typer.echo(json.dumps({"master_version": m.master_version,
                           "rows": {k: len(v) for k, v in m.tables.items()},
                           "missing": m.manifest.get("missing", [])}, ensure_ascii=False))


@claims_app.command("import-uke")
def import_uke(
    files: Annotated[list[Path], typer.Argument(help="レセ電 files (医科・歯科・調剤), any "
                                                     "extension.")],
    tenant: Annotated[str, typer.Option(help="Municipality code (6 digits) the claims "
                                             "belong to.")],
    out: Annotated[Path, typer.Option(help="Claim-lines CSV to write (UTF-8 with BOM).")],
) -> None:
    """Read UKE files into the product's claim-lines CSV; report what was skipped."""
    from models.claim_screening import masters as M
    from models.claim_screening import uke

    if not (len(tenant) == 6 and tenant.isdigit()):
        raise _fail(f"--tenant {tenant!r}: expected a 6-digit municipality code")
    try:
        result = uke.read_many(((str(f), f.read_bytes()) for f in files), tenant, M.in_use())
    except OSError as exc:
        raise _fail(f"{exc.filename}: {exc.strerror}") from exc
    except uke.UkeError as exc:
        raise _fail(str(exc)) from exc
    result.lines.to_csv(out, index=False, encoding="utf-8-sig")
    typer.echo(f"{result.claims:,} claims, {len(result.lines):,} lines -> {out}")
    info = M.version_info(sorted(result.lines["service_month"].unique()))
    typer.echo(f"master_version {info['master_version'] or '(none built)'}")
    for note in [*result.notes(), info.get("master_note", "")]:
        if note:
            typer.secho(note, fg="yellow", err=True)


@claims_app.command("export-uke")
def export_uke(
    tenant: Annotated[str, typer.Option(help="Municipality code whose claims CSV to export.")],
    out: Annotated[Path, typer.Option(help="Folder for the UKE files (one per 医療機関 / 薬局).")],
    source: Annotated[Path | None, typer.Option(help="Claims CSV (default: the workspace's "
                                                     "data/claim_screening/<tenant>.csv).")
                      ] = None,
    month: Annotated[str | None, typer.Option(help="Only claims of this month (YYYY-MM).")
                     ] = None,
) -> None:
    """Write claims as レセ電 files: 医科・歯科 (IR) with 傷病名 from the masters' 傷病名マスター
    (ICD-10 -> 傷病名コード), procedures and drugs with their codes; 調剤 (YK) with a 剤 (SH, CZ,
    IY) per drug line and 調剤料・加算料 in the CZ fee slots (no 傷病名: the layout has none)."""
    from models.claim_screening import codes as C
    from models.claim_screening import masters as M
    from models.claim_screening import uke
    from models.claim_screening.schema import ClaimsInputError, read_claims

    path = source or _workspace_data() / f"{tenant}.csv"
    try:
        lines = read_claims(path.read_bytes())
    except OSError as exc:
        raise _fail(f"{path}: {exc.strerror}") from exc
    except ClaimsInputError as exc:
        raise _fail(f"{path}: {exc}") from exc
    lines = lines[lines["tenant_code"] == tenant]
    if month:
        lines = lines[lines["service_month"] == month]
    if lines.empty:
        raise _fail(f"{path}: no claims of tenant {tenant}" + (f" in {month}" if month else ""))
    book = {**M.in_use().disease_codes({c: c for c in lines.loc[
        lines["line_kind"] == "diagnosis", "code"].unique()}), **C.DISEASE_CODES}
    export = uke.write_uke(lines, book)
    out.mkdir(parents=True, exist_ok=True)
    for name, raw in export.files.items():
        (out / name).write_bytes(raw)
    typer.echo(f"{len(export.claim_ids):,} claims -> {len(export.files)} UKE files in {out}")


@claims_app.command("generate")
def generate_claims(
    out: Annotated[Path, typer.Option(help="Folder for claims.csv, truth.csv and, with --uke, "
                                           "the UKE files.")],
    tenant: Annotated[str, typer.Option(help="Municipality code (6 digits).")] = "402303",
    claims: Annotated[int, typer.Option(help="About how many claims.", min=100)] = 10_000,
    months: Annotated[int, typer.Option(help="Months of claims.", min=1, max=36)] = 12,
    start_month: Annotated[str, typer.Option(help="First month (YYYY-MM).")] = "2025-04",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    write_uke: Annotated[bool, typer.Option("--uke", help="Also write the claims as レセ電 "
                                                          "files (one per 医療機関 / 薬局).")
                         ] = False,
) -> None:
    """Synthetic claims drawn from the national masters (codes, 点数, 上限回数, ages): claims.csv
    carries ICD-10 codes, the UKE files the 傷病名コード of the 傷病名マスター they map to;
    truth.csv holds each claim's injected error type and recoverable points."""
    from models.claim_screening import codes as C
    from models.claim_screening import uke
    from models.claim_screening.generate import GenerateSpec, generate

    if not (len(tenant) == 6 and tenant.isdigit()):
        raise _fail(f"--tenant {tenant!r}: expected a 6-digit municipality code")
    spec = GenerateSpec(total_claims=claims, months=months, start_month=start_month)
    lines, truth = generate([(tenant, 1)], spec, seed)[tenant]
    out.mkdir(parents=True, exist_ok=True)
    lines.to_csv(out / "claims.csv", index=False, encoding="utf-8-sig")
    truth.to_csv(out / "truth.csv", index=False, encoding="utf-8-sig")
    typer.echo(f"{len(truth):,} claims, {len(lines):,} lines -> {out / 'claims.csv'}")
    if write_uke:
        export = uke.write_uke(lines, C.DISEASE_CODES)
        folder = out / "uke"
        folder.mkdir(exist_ok=True)
        for name, raw in export.files.items():
            (folder / name).write_bytes(raw)
        with (out / "uke_claim_ids.csv").open("w", encoding="utf-8") as f:
            f.write("claim_id,uke_claim_id\n")
            f.writelines(f"{a},{b}\n" for a, b in export.claim_ids.items())
        typer.echo(f"{len(export.claim_ids):,} claims -> {len(export.files)} UKE files in "
                   f"{folder} (調剤 as YK files); ids in uke_claim_ids.csv")


def _workspace_data() -> Path:
    from training.console import workspace

    return workspace().path("data") / "claim_screening"
