"""`kyodo claims import-uke` and `kyodo claims masters build` from the command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from tests.unit.test_claim_masters import _b_row, _write
from tests.unit.test_uke import RAW
from training.cli import app


def test_import_uke_writes_claim_lines_and_names_bad_files(tmp_path: Path) -> None:
    good, bad, out = tmp_path / "a.dat", tmp_path / "b.UKE", tmp_path / "out.csv"
    good.write_bytes(RAW)
    bad.write_bytes(RAW[: RAW.index(b"\r\nGO,")])  # truncated: no GO record
    runner = CliRunner()
    r = runner.invoke(app, ["claims", "import-uke", str(good), "--tenant", "402303",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    lines = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert lines["claim_id"].nunique() == 2 and set(lines["tenant_code"]) == {"402303"}
    r = runner.invoke(app, ["claims", "import-uke", str(good), str(bad), "--tenant", "402303",
                            "--out", str(out)])
    assert r.exit_code == 2 and "b.UKE line" in r.output and "without a GO" in r.output


def test_masters_build_command(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    _write(src, "b_20250101.txt", [_b_row("9900001", "架空糖尿病", "E119")])
    r = CliRunner().invoke(app, ["claims", "masters", "build", "--source", str(src),
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "b 傷病名マスター: 1 rows" in r.output and (out / "b.parquet").exists()


def test_export_uke_then_import_gives_back_the_medical_claims(tmp_path: Path) -> None:
    from models.claim_screening import uke
    from models.claim_screening.generate import GenerateSpec, generate

    lines, _ = generate([("402303", 100000)], GenerateSpec(total_claims=600), 11)["402303"]
    src, folder, back = tmp_path / "c.csv", tmp_path / "uke", tmp_path / "back.csv"
    lines.to_csv(src, index=False)
    runner = CliRunner()
    r = runner.invoke(app, ["claims", "export-uke", "--tenant", "402303", "--source", str(src),
                            "--out", str(folder)])
    assert r.exit_code == 0, r.output
    files = sorted(folder.iterdir())
    r = runner.invoke(app, ["claims", "import-uke", *map(str, files), "--tenant", "402303",
                            "--out", str(back)])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(back, dtype=str, encoding="utf-8-sig")
    want = uke.representable(lines)
    assert got["claim_id"].nunique() == want["claim_id"].nunique()
    # 傷病名 went out as 傷病名コード of the committed master and came back as the same ICD-10
    assert sorted(got.loc[got["line_kind"] == "diagnosis", "code"]) == sorted(
        want.loc[want["line_kind"] == "diagnosis", "code"])


def test_generate_writes_csv_with_icd10_and_uke_with_disease_codes(tmp_path: Path) -> None:
    from models.claim_screening import codes as C
    from models.claim_screening import masters as M

    r = CliRunner().invoke(app, ["claims", "generate", "--out", str(tmp_path), "--claims", "800",
                                 "--months", "4", "--seed", "2", "--uke"])
    assert r.exit_code == 0, r.output
    lines = pd.read_csv(tmp_path / "claims.csv", dtype=str, encoding="utf-8-sig")
    truth = pd.read_csv(tmp_path / "truth.csv", dtype=str, encoding="utf-8-sig")
    assert set(truth["claim_id"]) == set(lines["claim_id"])
    dx = set(lines.loc[lines["line_kind"] == "diagnosis", "code"])
    assert dx <= set(C.DIAGNOSIS_BY_CODE)  # the CSV carries ICD-10 categories
    files = sorted((tmp_path / "uke").iterdir())
    records = [rec.split(",") for f in files
               for rec in f.read_bytes().rstrip(b"\x1a").decode("cp932").split("\r\n")]
    sy = {rec[1] for rec in records if rec[0] == "SY"}
    # the UKE carries 傷病名コード of the committed 傷病名マスター, each mapping back to an ICD-10
    masters = M.in_use()
    assert sy and {masters.icd10_of(code) for code in sy} <= dx
    ids = pd.read_csv(tmp_path / "uke_claim_ids.csv", dtype=str)
    assert set(ids["claim_id"]) == set(lines["claim_id"])  # 調剤 claims as YK files too
    assert any(f.name.startswith("RECEIPTY_") for f in files)
