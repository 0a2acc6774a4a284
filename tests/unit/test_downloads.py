"""The one download writer: formula-safe CSV / xlsx / GeoJSON, numbers kept, cp932 honest."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from models.downloads import (
    DownloadError,
    geojson_bytes,
    neutralise,
    table_bytes,
    write_table,
)

RISKY = ["=1+1", '=HYPERLINK("http://x","y")', "+81", "-5", "@SUM(A1)", "\tTAB", "\rCR"]
SAFE = ["R-00001", "'quoted", "", "山田"]


def intake_unquote(value: object) -> object:
    """The upload intake's half of the pair (branch `intake`): drop exactly one leading quote
    in front of = + - @ tab CR. Kept here so the round trip is checked on this branch too."""
    if isinstance(value, str) and re.match(r"'[=+\-@\t\r]|''+[=+\-@\t\r]", value):
        return value[1:]
    return value


def frame() -> pd.DataFrame:
    ids = [*RISKY, *SAFE, "'=already", "''+twice"]
    return pd.DataFrame({"id": ids, "amount": [-5 - i for i in range(len(ids))],
                         "ratio": [-0.5] * len(ids)})


def read_csv(data: bytes, encoding: str = "utf-8-sig") -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), encoding=encoding, dtype={"id": str},
                       keep_default_na=False)


def test_csv_quotes_every_formula_start_and_keeps_numbers() -> None:
    out = read_csv(table_bytes(frame(), "csv"))
    for raw, written in zip(frame()["id"], out["id"], strict=True):
        assert not written.startswith(("=", "+", "-", "@", "\t", "\r")), written
        assert intake_unquote(written) == raw  # the intake reads back the same id
    assert written.startswith("'")
    assert out["amount"].dtype.kind == "i" and out["amount"].iloc[0] == -5
    assert out["ratio"].iloc[0] == -0.5
    assert set(out.loc[out["id"].isin(SAFE), "id"]) == set(SAFE)  # untouched


def test_xlsx_text_is_never_a_formula_and_numbers_stay_numbers() -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(table_bytes(frame(), "xlsx"))).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    ids = [c.value if c.value is not None else "" for c in sheet["A"][1:]]
    # XML reads a bare CR back as LF (a property of xlsx, not of the writer)
    assert [intake_unquote(v) for v in ids] == [v.replace("\r", "\n") for v in frame()["id"]]
    first = sheet["A"][1]
    assert first.value == "=1+1" and first.data_type == "s" and first.quotePrefix
    assert sheet["B"][1].value == -5 and sheet["B"][1].data_type == "n"
    assert sheet["C"][1].value == -0.5


def test_xlsx_error_code_lookalikes_and_risky_headers_are_text() -> None:
    table = pd.DataFrame({"=cmd": ["#N/A", "=x"], "n": [1, 2]})
    sheet = openpyxl.load_workbook(io.BytesIO(table_bytes(table, "xlsx"))).active
    assert sheet["A1"].data_type == "s" and sheet["A1"].quotePrefix
    assert sheet["A2"].value == "#N/A" and sheet["A2"].data_type == "s"
    assert read_csv(table_bytes(table, "csv")).columns[0] == "'=cmd"


def test_cp932_names_the_cell_it_cannot_write() -> None:
    table = pd.DataFrame({"住民ID": ["A1", "A2", "A3"], "氏名": ["山田", "佐藤", "𠮷田"]})
    with pytest.raises(DownloadError) as err:
        table_bytes(table, "csv_cp932")
    msg = str(err.value)
    assert "「氏名」列 4 行目" in msg and "line 4" in msg and "𠮷" in msg
    assert "format=csv" in msg
    ok = pd.DataFrame({"住民ID": ["=1"], "記号": ["〜－\u2014"]})  # common Windows look-alikes
    assert table_bytes(ok, "csv_cp932").decode("cp932").splitlines()[1].startswith("'=1,")


def test_utf8_csv_holds_every_character() -> None:
    table = pd.DataFrame({"氏名": ["𠮷田"]})
    assert "𠮷田" in table_bytes(table, "csv").decode("utf-8-sig")


def test_geojson_string_properties_are_quoted_numbers_kept() -> None:
    collection = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]},
        "properties": {"photo": "=HYPERLINK(1)", "lon": -0.1, "types": ["@x", "D00"]}}]}
    back = json.loads(geojson_bytes(collection))["features"][0]
    assert back["properties"] == {"photo": "'=HYPERLINK(1)", "lon": -0.1, "types": ["'@x", "D00"]}
    assert back["geometry"]["coordinates"] == [-0.1, 51.5]


@pytest.mark.parametrize(("name", "encoding", "decode"), [
    ("list.csv", "utf-8-sig", "utf-8-sig"), ("list.csv", "utf-8", "utf-8"),
    ("list.csv", "cp932", "cp932")])
def test_cli_files_use_the_same_writer(tmp_path: Path, name: str, encoding: str,
                                       decode: str) -> None:
    write_table(pd.DataFrame({"住民ID": ["=1+1"]}), tmp_path / name, encoding)
    raw = (tmp_path / name).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    assert raw.decode(decode).lstrip("\ufeff").splitlines()[1] == "'=1+1"


def test_neutralise_leaves_non_text_alone() -> None:
    assert neutralise(-5) == -5 and neutralise(None) is None and neutralise("-5") == "'-5"
