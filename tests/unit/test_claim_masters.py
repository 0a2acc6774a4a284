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
    # 医科電子点数表 (支払基金, the rows published in 05算定回数テーブル / 03-2背反テーブル2)
    limits = masters.limits().set_index("code")
    assert limits.loc["140029610", "max_per_month"] == 31  # 消炎鎮痛等処置: 日 1
    assert limits.loc["113001810", "max_per_month"] == 2  # 特定疾患療養管理料: 月 2
    month = masters.exclusions("month")
    kept_banned = set(zip(month["kept"], month["banned"], strict=True))
    assert ("111000110", "113707110") in kept_banned  # 初診料 month: no 生活習慣病管理料２
    assert ("113707110", "111000110") not in kept_banned
    assert set(masters.tables["exclusions"]["scope"]) == {"month", "same_time", "week"}


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
    """算定回数 per day, week, month, 3 months, 2 weeks, per patient; units that are no period
    (一連 141, 入院中 133, 初診時 159) and rows with a 特例条件 are no certain count. The month is
    the frame's unit (one count per code and claim month)."""
    assert M.monthly_limit("121", 2) == (62, 1)  # 1日2回: at most 2 x 31 in a month
    assert M.monthly_limit("138", 1) == (6, 1)  # weekly: a month touches at most 6 weeks
    assert M.monthly_limit("142", 1) == (3, 1)
    assert M.monthly_limit("131", 2) == (2, 1)
    assert M.monthly_limit("144", 1) == (1, 3)  # once in 3 months: 縦覧 over 3 months
    assert M.monthly_limit("144", 2) == (2, 1)  # twice in 3 months: only the month is checked
    assert M.monthly_limit("053", 1) == (1, 1200)
    assert M.monthly_limit("161", 1) == (1, 24)  # ２年
    for unit in ("141", "133", "159", "162", "999"):
        assert M.monthly_limit(unit, 1) is None
    assert M.monthly_limit("131", 0) is None
    table = "\r\n".join([
        '"0","160000001","検査Ａ","121","日","1","0","0","0","0","0","0","20240601","99999999"',
        '"0","160000001","検査Ａ","131","月","4","0","0","0","0","0","0","20240601","99999999"',
        '"0","160000002","検査Ｂ","144","３月","1","0","0","0","0","0","0","20240601","99999999"',
        '"0","160000003","処置Ｃ","138","週","2","0","0","0","0","0","0","20240601","99999999"',
        '"0","160000004","指導Ｄ","131","月","1","1","0","0","0","0","0","20240601","99999999"',
        '"0","160000006","撮影Ｅ","141","一連","1","0","0","0","0","0","0","20240601","99999999"',
    ]).encode("cp932")
    limits = M.read_limits(table, "算定回数テーブル.csv")
    assert limits["unit_code"].tolist() == ["121", "131", "144", "138", "131", "141"]
    assert limits["special"].tolist() == ["0", "0", "0", "0", "1", "0"]
    s = pd.DataFrame({"code": ["160000001", "160000005", "160000002"],
                      "max_count": [9.0, 2.0, 0.0]})
    got = M.Masters({}, {"s": s, "limits": limits}).limits().set_index("code")
    assert got.loc["160000001"].tolist() == [4, 1]  # the tightest of 31, 4 and the s master's 9
    assert got.loc["160000002"].tolist() == [1, 3] and got.loc["160000003"].tolist() == [12, 1]
    assert "160000004" not in got.index  # a 特例条件: not a certain count
    assert "160000006" not in got.index  # 一連 is a course of treatment, not a period
    assert got.loc["160000005"].tolist() == [2, 1]  # the s master's 上限回数 still applies
    plain = M.Masters({}, {"s": s}).limits().set_index("code")
    assert plain["max_per_month"].to_dict() == {"160000001": 9, "160000005": 2}
    with pytest.raises(M.MasterError, match=r"t\.csv line 1: column 6 \(算定回数\) is 'x'"):
        M.read_limits(b'0,"1","a",131,"m",x,0', "t.csv")
    with pytest.raises(M.MasterError, match=r"t\.csv line 2: 3 columns"):
        M.read_limits(table.splitlines()[0] + b"\r\n1,2,3", "t.csv")


def test_exclusions_read_the_scope_and_which_code_stays() -> None:
    """背反区分 1 keeps ①, 2 keeps ②, 3 either (once per pair); 特例条件 and abolished rows
    are left out; each scope is its own table (the file number)."""
    rows = "\r\n".join([
        '"0","111000110","初診料","113707110","生活習慣病管理料２","1","0","0","20240601","99999999"',
        '"0","113707110","生活習慣病管理料２","111000110","初診料","2","0","0","20240601","99999999"',
        '"0","160000001","Ａ","160000002","Ｂ","3","0","0","20240601","99999999"',
        '"0","160000002","Ｂ","160000001","Ａ","3","0","0","20240601","99999999"',
        '"0","160000003","Ｃ","160000004","Ｄ","1","1","0","20240601","99999999"',
        '"0","160000005","Ｅ","160000006","Ｆ","1","0","0","20240601","20240930"',
    ]).encode("cp932")
    month = M.read_exclusions(rows, "03-2背反テーブル2.csv").assign(scope="month")
    week = month.head(1).assign(scope="week")
    got = M.Masters({}, {"exclusions": pd.concat([month, week])}).exclusions("month")
    assert got.to_dict("records") == [
        {"kept": "111000110", "banned": "113707110", "either": False},
        {"kept": "160000001", "banned": "160000002", "either": True}]
    assert len(M.Masters({}, {}).exclusions()) == 0
    with pytest.raises(M.MasterError, match=r"x\.csv line 1: column 6 \(背反区分\) is '7'"):
        M.read_exclusions(b'"0","1","a","2","b","7","0","0","1","2"', "x.csv")


def test_build_reads_the_fee_tables_next_to_the_masters(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _write(src, "s_ALL20250307.csv", [_s_row("111000110", "初診料", "291")])
    (src / "05算定回数テーブル.csv").write_bytes(
        '0,"111000110","初診料",121,"日",1,0,,,,,"20240601","99999999"\r\n'.encode("cp932"))
    (src / "03-2背反テーブル2.csv").write_bytes(
        '"0","111000110","初診料","112007410","再診料","1","0","0","20240601","99999999"\r\n'
        .encode("cp932"))
    manifest = M.build(src, tmp_path / "out")
    assert manifest["kinds"]["limits"]["rows"] == 1
    assert manifest["kinds"]["exclusions"]["files"][0]["scope"] == "month"
    loaded = M.load(tmp_path / "out")
    assert loaded.limits().to_dict("records") == [
        {"code": "111000110", "max_per_month": 31, "every_months": 1}]
    assert loaded.exclusions().to_dict("records") == [
        {"kept": "111000110", "banned": "112007410", "either": False}]
    M.build(src.parent / "src", tmp_path / "out")  # rebuilt: same bytes
    (src / "03-2背反テーブル2.csv").unlink()
    assert "exclusions" not in M.build(src, tmp_path / "out")["kinds"]
    assert not (tmp_path / "out" / "exclusions.parquet").exists()
