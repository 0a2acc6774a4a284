"""The shared intake: encodings, Excel habits, 和暦, aliases, line numbers, safety quotes."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pytest
from openpyxl import Workbook

from models import intake
from models.intake import IntakeError, Layout, era_year, parse_date, parse_month, read_table

LAYOUT = Layout(ids=frozenset({"id"}), numbers=frozenset({"n"}), months=frozenset({"month"}),
                headers=intake.aliases([("n", ("件数",)), ("month", ("診療年月",))]),
                values={"sex": {"男": "1", "女": "2"}})
TEXT = "id,n,month,sex,kind\nA-1,1,2026-03,1,KIND1\nA-2,2,2026-04,2,y\n"


@pytest.mark.parametrize(("encoding", "sep"), [
    ("utf-8", ","), ("utf-8-sig", ","), ("cp932", ","), ("utf-16", "\t"), ("utf-8", "\t")])
def test_encodings_and_delimiters(encoding: str, sep: str) -> None:
    text = TEXT.replace(",", sep).replace("KIND1", "頑張り屋").replace("\n", "\r\n")
    table = read_table(text.encode(encoding), LAYOUT)
    assert list(table.frame.columns) == ["id", "n", "month", "sex", "kind"]
    assert table.frame["kind"].tolist() == ["頑張り屋", "y"]
    assert table.frame["id"].tolist() == ["A-1", "A-2"]


def test_utf16_excel_unicode_text_has_bom_and_tabs() -> None:
    raw = "\ufeffid\tn\r\nA-1\t1,354\r\n".encode("utf-16-le")
    assert raw.startswith(b"\xff\xfe")
    assert read_table(raw, LAYOUT).frame.loc[0, "n"] == "1354"


def test_blank_rows_dropped_and_excel_rows_kept() -> None:
    raw = b"id,n\nA-1,1\n,\n\n  ,  \nA-2,2\n,\n,\n"
    table = read_table(raw, LAYOUT)
    assert table.frame["id"].tolist() == ["A-1", "A-2"]
    assert table.lines.tolist() == [2, 6]  # as Excel numbers the rows (header = row 1)


def test_one_shift_jis_row_in_a_utf8_file_is_named_by_its_row() -> None:
    raw = ("id,kind\nA-1,頑張り屋\nA-2,心配性\n".encode() + "A-3,甘えん坊\n".encode("cp932")
           + "A-4,心配性\n".encode())
    with pytest.raises(IntakeError, match=r"4行目.*/ file 'r.csv' is UTF-8 but row 4 "):
        read_table(raw, LAYOUT, name="r.csv")
    with pytest.raises(IntakeError, match="neither UTF-8 nor Shift_JIS"):
        read_table(bytes([0x82, 0xFF, 0xFF, 0x81]) * 10, LAYOUT)
    with pytest.raises(IntakeError, match=r"空です.*is empty"):
        read_table(b" \r\n", LAYOUT)


def test_nfkc_headers_and_values_but_ids_as_written() -> None:
    raw = "ＩＤ, Ｎ ,件数２,Sex,kind\n ＡＢ－１ ,１，３５４,x,男,Ｂ\n".encode()
    frame = read_table(raw, LAYOUT).frame
    assert list(frame.columns) == ["id", "n", "件数2", "sex", "kind"]
    assert frame.loc[0, "id"] == "ＡＢ－１"  # pseudonyms and joins must not change
    assert (frame.loc[0, "n"], frame.loc[0, "sex"], frame.loc[0, "kind"]) == ("1354", "1", "B")


def test_japanese_header_aliases_and_duplicates() -> None:
    assert list(read_table("件数,診療年月\n1,R8.3\n".encode(), LAYOUT).frame.iloc[0]) == [
        "1", "2026-03"]
    with pytest.raises(IntakeError, match=r"'n' と '件数'.*both mean 'n'"):
        read_table("n,件数\n1,2\n".encode(), LAYOUT)


@pytest.mark.parametrize(("cell", "expected"), [
    ("1,354", "1354"), ("-12,345.5", "-12345.5"), ("50.0", "50"), ("７", "7"), ("NULL", ""),
    ("NA", ""), ("N/A", ""), ("#N/A", ""), ("空欄", ""), ("-", ""), ("－", ""), ("  ", ""),
    ("1,23", "1,23"), ("-5", "-5"), ("'-5", "-5")])
def test_number_cells(cell: str, expected: str) -> None:
    raw = f'id,n\nA,"{cell}"\n'.encode()
    assert read_table(raw, LAYOUT).frame.loc[0, "n"] == expected


@pytest.mark.parametrize(("text", "month", "date"), [
    ("2026-03", "2026-03", None), ("2026/3/1", "2026-03", "2026-03-01"),
    ("2026年3月", "2026-03", None), ("2026年3月1日", "2026-03", "2026-03-01"),
    ("R8.3", "2026-03", None), ("r08.03.15", "2026-03", "2026-03-15"),
    ("令和8年3月", "2026-03", None), ("令和元年5月1日", "2019-05", "2019-05-01"),
    ("H31.4.30", "2019-04", "2019-04-30"), ("平成元年1月8日", "1989-01", "1989-01-08"),
    ("S50.1.1", "1975-01", "1975-01-01"), ("昭和64年1月7日", "1989-01", "1989-01-07"),
    ("T15.12.24", "1926-12", "1926-12-24"), ("M45.7.29", "1912-07", "1912-07-29"),
    ("㋿8年3月", "2026-03", None), ("２０２６／３／１", "2026-03", "2026-03-01"),
    ("202603", "2026-03", None), ("20260301", "2026-03", "2026-03-01"),
    ("R1.4", None, None), ("平成元年1月7日", None, None), ("2026-13", None, None),
    ("2026/2/30", None, None), ("R0.3", None, None), ("March", None, None)])
def test_months_and_dates(text: str, month: str | None, date: str | None) -> None:
    assert parse_month(text) == month
    assert parse_date(text) == date


def test_era_years() -> None:
    assert [era_year(e, 1) for e in ("明治", "T", "s", "平成", "R")] == [1868, 1912, 1926, 1989,
                                                                        2019]
    assert era_year("令和", 8) == 2026
    with pytest.raises(ValueError, match="unknown era"):
        era_year("X", 1)


def test_month_column_normalised_and_bad_month_left_for_validation() -> None:
    raw = "id,month\nA,R8.3\nB,2026年4月\nC,13月\n".encode("cp932")
    assert read_table(raw, LAYOUT).frame["month"].tolist() == ["2026-03", "2026-04", "13月"]


@pytest.mark.parametrize(("cell", "expected"), [
    ("'=HYPERLINK(\"x\")", "=HYPERLINK(\"x\")"), ("'+81", "+81"), ("'-1", "-1"), ("'@a", "@a"),
    ("'abc", "'abc"), ("''=x", "''=x"), ("'", "'")])
def test_the_downloads_safety_quote_is_removed_once(cell: str, expected: str) -> None:
    raw = ("id,kind\n" + '"' + cell.replace('"', '""') + '",' + '"' + cell.replace('"', '""')
           + '"\n').encode()
    frame = read_table(raw, LAYOUT).frame
    assert frame.loc[0, "id"] == expected and frame.loc[0, "kind"] == expected


def test_xlsx_first_sheet_as_excel_shows_it() -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["id", "件数", "month", "kind"])
    sheet.append(["A-1", 1354.0, dt.datetime(2026, 3, 1), "頑張り屋"])
    sheet.append([None, None, None, None])
    sheet.append(["A-2", 7, "R8.4", None])
    buf = io.BytesIO()
    book.save(buf)
    table = read_table(buf.getvalue(), LAYOUT)
    assert table.frame.to_dict("list") == {"id": ["A-1", "A-2"], "n": ["1354", "7"],
                                           "month": ["2026-03", "2026-04"],
                                           "kind": ["頑張り屋", ""]}
    assert table.lines.tolist() == [2, 4]
    with pytest.raises(IntakeError, match="xlsx"):
        read_table(b"PK\x03\x04broken", LAYOUT)


def test_columns_without_a_header() -> None:
    table = read_table(b"id,n,,\nA,1,,\nB,2,,note\n", LAYOUT)
    assert list(table.frame.columns) == ["id", "n", "Unnamed: 3"]
    book = Workbook()
    book.active.append(["id", None, "n", None])
    book.active.append(["A", None, 1, None])
    buf = io.BytesIO()
    book.save(buf)
    assert list(read_table(buf.getvalue(), LAYOUT).frame.columns) == ["id", "n"]


@pytest.mark.parametrize("raw", [
    b"a,b,c\n1,2,3\n4,5,6\n",
    b"\xef\xbb\xbfa,b,c\r\n1,2,3\r\n4,5,6\r\n",
    b"a,b,c\n1,2,3\n\n4,5,6\n",
    b"a,b,c\n1,2,3\n,,\n4,5,6\n",
    b"a,a,\n1,2,3\n4,5,6\n",
    b'a,b\n"1,354","x\ny"\n4,5\n',
    b"a\tb\n1\t2\n",
    b'a,b\n "1" , 2 \n',
    b'a,b\n"",\n',
    "氏名,年齢\n山田,３０\n".encode(),
    b"a,b\n1,2",
    b"a\n1\n\n2\n",
])
def test_fast_utf8_reader_gives_the_general_paths_frame(raw: bytes) -> None:
    fast = intake.read_utf8_fast(raw)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, intake.read_text(intake.decode(raw)))


@pytest.mark.parametrize("raw", [
    b"a,b,c\n1,2\n4,5,6\n",  # a short row: pandas pads it, pyarrow refuses
    b"a,b\n1,2,3\n4,5,6\n",  # more fields than headers: pandas' own rules (index or error)
    "氏名,年齢\n山田,30\n".encode("cp932"),
    "a,b\n1,2\n".encode("utf-16"),
    b"a,b\n",
])
def test_fast_utf8_reader_leaves_other_files_to_the_general_path(raw: bytes) -> None:
    assert intake.read_utf8_fast(raw) is None


def test_reading_allocates_through_the_system_pool_then_restores(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool().backend_name
    with intake.system_arrow_pool():
        with intake.system_arrow_pool():
            assert pa.default_memory_pool().backend_name == "system"
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == before


def test_blank_file_behind_a_long_blank_start_is_empty() -> None:
    with pytest.raises(IntakeError, match="empty"):
        read_table(b" \n" * 5000, LAYOUT)
