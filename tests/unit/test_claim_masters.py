"""National masters loader: layouts, newest file per kind, ICD-10 mapping, the committed table."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from models.claim_screening import masters as M

# Made-up rows in the 基本マスター layouts (codes and names invented; real masters are cp932).


def _row(kind: str, width: int, cells: dict[int, str]) -> str:
    values = ["0"] * width
    values[1] = kind.upper()
    for i, v in cells.items():
        values[i] = v
    return ",".join(f'"{v}"' for v in values)


def _s_row(code: str, name: str, points: str, max_count: str = "0", ages: tuple = ("00", "00"),
           ) -> str:
    return _row("s", 123, {2: code, 4: name, 11: points, 35: max_count, 40: ages[0],
                           41: ages[1], 84: "D", 86: "20240601", 87: "99999999"})


def _b_row(code: str, name: str, icd: str, icd2013: str = "") -> str:
    return _row("b", 46, {2: code, 5: name, 7: name, 13: icd, 15: icd2013, 21: "20240601",
                          22: "20240601", 23: "99999999"})


def _write(folder: Path, name: str, rows: list[str]) -> None:
    (folder / name).write_bytes(("\r\n".join(rows) + "\r\n").encode("cp932"))


def test_build_reads_newest_file_per_kind_and_maps_icd10(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _write(src, "s_ALL20240401.csv", [_s_row("990000010", "古い検査", "10")])
    _write(src, "s_ALL20250301.csv", [
        _s_row("990000010", "架空検査", "12", "1"),
        _s_row("990000020", "架空乳幼児加算", "38", ages=("00", "06"))])
    _write(src, "b_20250101.txt", [_b_row("9900001", "架空糖尿病", "E119", "E119"),
                                   _b_row("9900002", "架空高血圧", "I10", "")])
    out = tmp_path / "table"
    manifest = M.build(src, out)
    assert manifest["master_version"] == "2025-03-01"
    assert manifest["kinds"]["s"]["file"] == "s_ALL20250301.csv"
    assert manifest["kinds"]["s"]["rows"] == 2 and manifest["missing"] == ["y", "t", "c"]
    masters = M.load(out)
    s = masters.tables["s"].set_index("code")
    assert s.loc["990000010", "points"] == 12.0 and s.loc["990000010", "max_count"] == 1.0
    assert s.loc["990000020", "max_age_years"] == 6
    assert masters.icd10_of("9900001") == "E11" and masters.icd10_of("9900002") == "I10"
    assert masters.icd10_of("0000999") is None
    assert masters.months_after(["2025-03", "2025-04"]) == ["2025-04"]


def test_bad_master_row_names_file_line_and_column(tmp_path: Path) -> None:
    bad = _s_row("990000010", "架空", "abc").encode("cp932")
    with pytest.raises(M.MasterError, match=r"s_x line 1: column 'points' is 'abc'"):
        M.read_master(bad, "s", "s_x")
    with pytest.raises(M.MasterError, match=r"line 1: 3 columns"):
        M.read_master(b'"0","S","1"', "s", "s_x")
    with pytest.raises(M.MasterError, match="マスター種別"):
        M.read_master(_b_row("9900001", "x", "E11").encode("cp932"), "s", "s_x")


def test_updates_apply_on_the_newest_whole_file_from_zips(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rows = [_s_row("990000010", "架空検査", "12"), _s_row("990000020", "架空処置", "30"),
            _s_row("990000030", "消える行為", "5")]
    whole = ("\r\n".join(rows) + "\r\n").encode("cp932")
    with zipfile.ZipFile(src / "s_20250301.zip", "w") as z:  # 支払基金's name; member says ALL
        z.writestr("s_ALL20250301.csv", whole)
    _write(src, "s_ALL20240101.csv", [_s_row("990000010", "古い", "1")])  # older whole: ignored
    _write(src, "s_20250201.csv", [_s_row("990000010", "前の差分", "99")])  # before: ignored
    partial = ['"5"', '"S"', '"990000010"'] + ['""'] * 8 + ['"14.00"'] + ['""'] * 111
    _write(src, "s_20250401.csv", [",".join(partial),                    # 変更: points only
                                   _row("s", 3, {0: "1", 2: "990000030"}),  # 抹消
                                   _s_row("990000040", "新規行為", "7").replace('"0"', '"3"', 1)])
    manifest = M.build(src, tmp_path / "out")
    assert manifest["kinds"]["s"]["file"] == "s_20250301.zip"
    assert [u["file"] for u in manifest["kinds"]["s"]["updates"]] == ["s_20250401.csv"]
    assert manifest["master_version"] == "2025-04-01"
    s = M.load(tmp_path / "out").tables["s"].set_index("code")
    assert sorted(s.index) == ["990000010", "990000020", "990000040"]
    assert s.loc["990000010", "points"] == 14.0 and s.loc["990000010", "name"] == "架空検査"


def test_committed_table_matches_its_manifest_and_the_published_codes() -> None:
    manifest = json.loads((M.TABLE_DIR / "manifest.json").read_text(encoding="utf-8"))
    masters = M.load()
    assert masters.master_version == manifest["master_version"] and not manifest["missing"]
    for kind, info in manifest["kinds"].items():
        assert len(masters.tables[kind]) == info["rows"] > 1000
    assert max(p.stat().st_size for p in M.TABLE_DIR.iterdir()) < 2_000_000
    s = masters.tables["s"].set_index("code")
    assert s.loc["111000110", "points"] == 291 and s.loc["111000370", "max_age_years"] == 6
    assert s.loc["113001810", "max_count"] == 2  # 特定疾患療養管理料: twice a month
    assert masters.icd10_of("8833421") == "I10"  # 本態性高血圧症


def test_disease_codes_pick_current_codes_that_map_back() -> None:
    from models.claim_screening import codes as C

    masters = M.load()
    names = {d.code: d.name for d in C.DIAGNOSES}
    picked = masters.disease_codes(names)
    assert set(picked) == set(names)
    assert all(masters.icd10_of(code) == icd for icd, code in picked.items())
    b = masters.tables["b"].set_index("code")
    assert b.at[picked["I10"], "name"] == "本態性高血圧症"


def test_limits_apply_the_unit_of_the_count() -> None:
    """算定回数 per day, week, month, 3 months, 2 weeks, per patient; a special condition (999)
    is no count. The month is the frame's unit (one count per code and claim month)."""
    assert M.monthly_limit("121", 2) == (62, 1)  # 1日2回: at most 2 x 31 in a month
    assert M.monthly_limit("138", 1) == (6, 1)  # weekly: a month touches at most 6 weeks
    assert M.monthly_limit("142", 1) == (3, 1)
    assert M.monthly_limit("131", 2) == (2, 1)
    assert M.monthly_limit("144", 1) == (1, 3)  # once in 3 months: 縦覧 over 3 months
    assert M.monthly_limit("144", 2) == (2, 1)  # twice in 3 months: only the month is checked
    assert M.monthly_limit("053", 1) == (1, 1200)
    assert M.monthly_limit("999", 1) is None and M.monthly_limit("131", 0) is None
    table = "\r\n".join([
        '0,"160000001","検査Ａ",121,"日",1,0,,,,,"20240601","99999999"',
        '0,"160000001","検査Ａ",131,"月",4,0,,,,,"20240601","99999999"',  # tighter of the two
        '0,"160000002","検査Ｂ",144,"３月",1,0,,,,,"20240601","99999999"',
        '0,"160000003","処置Ｃ",138,"週",2,0,,,,,"20240601","99999999"',
        '0,"160000004","指導Ｄ",999,"カスタム",1,1,,,,,"20240601","99999999"',
    ]).encode("cp932")
    limits = M.read_limits(table, "算定回数テーブル.csv")
    assert limits["unit_code"].tolist() == ["121", "131", "144", "138", "999"]
    s = pd.DataFrame({"code": ["160000001", "160000005"], "max_count": [9.0, 2.0]})
    got = M.Masters({}, {"s": s, "limits": limits}).limits().set_index("code")
    assert got.loc["160000001"].tolist() == [4, 1]
    assert got.loc["160000002"].tolist() == [1, 3] and got.loc["160000003"].tolist() == [12, 1]
    assert "160000004" not in got.index  # a condition, not a count
    assert "160000005" not in got.index  # the 算定回数テーブル replaces the s master's counts
    # without it, the s master's 上限回数 is a count per レセプト, i.e. per month
    plain = M.Masters({}, {"s": s}).limits().set_index("code")
    assert plain["max_per_month"].to_dict() == {"160000001": 9, "160000005": 2}
    with pytest.raises(M.MasterError, match=r"t\.csv line 1: column 6 \(算定回数\) is 'x'"):
        M.read_limits(b'0,"1","a",131,"m",x,0', "t.csv")


def test_build_reads_the_limits_table_next_to_the_masters(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _write(src, "s_ALL20250307.csv", [_s_row("111000110", "初診料", "291")])
    (src / "05算定回数テーブル.csv").write_bytes(
        '0,"111000110","初診料",121,"日",1,0,,,,,"20240601","99999999"\r\n'.encode("cp932"))
    manifest = M.build(src, tmp_path / "out")
    assert manifest["kinds"]["limits"]["rows"] == 1
    loaded = M.load(tmp_path / "out")
    assert loaded.limits().to_dict("records") == [
        {"code": "111000110", "max_per_month": 31, "every_months": 1}]
