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
