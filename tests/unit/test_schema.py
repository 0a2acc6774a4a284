"""Claims CSV reading: encodings, and errors that name the column and row."""

from __future__ import annotations

import pandas as pd
import pytest

from models.claim_screening.schema import ClaimsInputError, read_claims
from tests.claims import CLEAN, claim, frame


def csv_bytes(df, encoding: str = "utf-8") -> bytes:
    return df.to_csv(index=False).encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_encodings_accepted(encoding: str) -> None:
    df = frame(claim("a", CLEAN))
    out = read_claims(csv_bytes(df, encoding))
    assert list(out["claim_type"].unique()) == ["医科入院外"]
    assert out["points"].dtype.kind == "i"


def test_empty_and_junk_files() -> None:
    with pytest.raises(ClaimsInputError, match="empty"):
        read_claims(b"")
    with pytest.raises(ClaimsInputError, match="neither UTF-8 nor Shift_JIS"):
        read_claims(bytes(range(128, 256)) * 10)


def test_header_only_file() -> None:
    with pytest.raises(ClaimsInputError, match="no rows"):
        read_claims(csv_bytes(frame(claim("a", CLEAN)).iloc[:0]))


def test_missing_column_named() -> None:
    df = frame(claim("a", CLEAN)).drop(columns=["days"])
    with pytest.raises(ClaimsInputError, match="missing column 'days'"):
        read_claims(csv_bytes(df))


@pytest.mark.parametrize(("column", "value", "pattern"), [
    ("points", "-5", r"column 'points' row 3"),
    ("age", "abc", r"column 'age' row 3: expected"),
    ("code", "X99", r"column 'code' row 3: .*malformed procedure code 'X99'"),
    ("service_month", "2026-13", r"column 'service_month' row 3"),
])
def test_bad_values_named_by_column_and_row(column: str, value: str, pattern: str) -> None:
    df = frame(claim("a", CLEAN)).astype(str)
    df.loc[1, column] = value  # second data line = CSV line 3
    with pytest.raises(ClaimsInputError, match=pattern):
        read_claims(csv_bytes(df))


def test_reused_claim_id_with_other_header_is_rejected() -> None:
    df = frame(claim("a", CLEAN), claim("a", CLEAN, patient="p2"))
    df["line_no"] = range(1, len(df) + 1)
    with pytest.raises(ClaimsInputError, match=r"claim_id 'a'.*conflicting header"):
        read_claims(csv_bytes(df))


def test_claim_lines_apart_in_the_file_are_one_claim() -> None:
    df = frame(claim("a", CLEAN), claim("b", CLEAN))
    out = read_claims(csv_bytes(pd.concat([df.iloc[::2], df.iloc[1::2]])))
    assert sorted(out["claim_id"].unique()) == ["a", "b"]
    assert len(out) == len(df)


@pytest.mark.parametrize("value", ["0x10", "+5", " 7", "1_000", "１"])
def test_integer_cells_python_reads_and_pyarrow_would_not(value: str) -> None:
    """Integers are cast in C++ only when every cell is a plain decimal; other cells take
    pandera's conversion as before ('0x10' stays an error, '+5' stays 5)."""
    df = frame(claim("a", CLEAN)).astype(str)
    df.loc[1, "points"] = value
    try:
        expected: int | None = int(value)
    except ValueError:
        expected = None
    if value == "１":
        expected = 1  # NFKC in intake
    if expected is None:
        with pytest.raises(ClaimsInputError, match=r"column 'points' row 3"):
            read_claims(csv_bytes(df))
    else:
        assert read_claims(csv_bytes(df))["points"].iat[1] == expected


def test_duplicate_line_numbers_rejected() -> None:
    df = frame(claim("a", CLEAN), claim("a", CLEAN))
    with pytest.raises(ClaimsInputError, match=r"unique \(claim_id, line_no\)"):
        read_claims(csv_bytes(df))


def test_well_formed_codes_outside_the_table_are_accepted() -> None:
    lines = [("diagnosis", "E14", 0, 0), ("diagnosis", "E11.9", 0, 0),
             ("diagnosis", "0000999", 0, 0), ("procedure", "112015570", 1, 0),
             ("drug", "620004422", 1, 7)]
    out = read_claims(csv_bytes(frame(claim("a", lines))))
    assert out["code"].tolist() == ["E14", "E11.9", "0000999", "112015570", "620004422"]


@pytest.mark.parametrize(("row", "kind", "code"), [
    (0, "diagnosis", "E1"), (0, "diagnosis", "e11"), (1, "procedure", "11200741"),
    (2, "procedure", "16006211X"), (3, "drug", "E11"),
])
def test_malformed_codes_name_row_kind_and_expected_shape(row: int, kind: str, code: str,
                                                          ) -> None:
    df = frame(claim("a", CLEAN)).astype(str)
    df.loc[row, ["line_kind", "code"]] = [kind, code]
    with pytest.raises(ClaimsInputError, match=rf"column 'code' row {row + 2}: コードの形式が不正"
                       rf".*malformed {kind} code '{code}'"):
        read_claims(csv_bytes(df))


def test_malformed_codes_report_the_first_rows_and_a_count() -> None:
    df = frame(*[claim(f"a{i}", CLEAN, patient=f"p{i}") for i in range(3)]).astype(str)
    df["code"] = "??"
    with pytest.raises(ClaimsInputError, match=r"row 2: .*row 3: .*row 4: .*and 9 more rows"):
        read_claims(csv_bytes(df))


@pytest.mark.parametrize(("column", "value", "japanese", "english"), [
    ("points", "-5", "列 'points' 3行目: 0以上の整数", "column 'points' row 3: failed"),
    ("age", "abc", "列 'age' 3行目: 整数を入力してください", "column 'age' row 3: expected"),
    ("service_month", "2026-13", "列 'service_month' 3行目: 年月", "column 'service_month' row 3"),
    ("sex", "3", "1（男）か 2（女）", "column 'sex' row 3: failed isin"),
    ("code", "X99", "列 'code' 3行目 / column 'code' row 3: コードの形式が不正です（'X99': "
     "診療行為は9桁", "malformed procedure code 'X99'"),
])
def test_claims_messages_in_japanese_and_english(column: str, value: str, japanese: str,
                                                 english: str) -> None:
    df = frame(claim("a", CLEAN)).astype(str)
    df.loc[1, column] = value
    with pytest.raises(ClaimsInputError) as exc:
        read_claims(csv_bytes(df))
    assert japanese in str(exc.value) and english in str(exc.value)
    with pytest.raises(ClaimsInputError, match="列 'days' がありません / missing column 'days'"):
        read_claims(csv_bytes(frame(claim("a", CLEAN)).drop(columns=["days"])))
    with pytest.raises(ClaimsInputError, match="見出し行だけでデータ行がありません / no claim"):
        read_claims(csv_bytes(frame(claim("a", CLEAN)).iloc[:0]))
