"""レセ電 (UKE) reader and writer: layout, 和暦, errors naming file/line/field, round trip."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import pandas as pd
import pytest

from models.claim_screening import codes as C
from models.claim_screening import masters as M
from models.claim_screening import uke
from models.claim_screening.generate import GenerateSpec, generate
from models.claim_screening.schema import validate_lines

# A made-up clinic (医療機関コード 4019999999) and two made-up patients, written by hand from the
# 記録条件仕様 (医科): one 外来 claim and one 入院 claim, an unknown record and TO/CO records.
FIXTURE = "\r\n".join([
    "IR,2,40,1,9999999,,架空内科クリニック,50703,00,092-000-0000",
    "RE,1,1112,50702,架空　一郎,1,3500412,70,,,,,,K-1",
    "HO,402303,９９,1234567,2,534",
    "SY,9900001,5070201,1,,,01,",
    "SY,0000999,5070201,1,,架空の傷病,,",
    "SI,12,1,112007410,,75,2",
    "SI,60,1,160008010,,,1",
    "SI,60,1,160062110,,70,1",
    "IY,21,1,620004312,1.5,3,28",
    "IY,21,1,620008601,1,,",
    "IY,21,1,620160501,3,8,14",
    "TO,40,1,700010000,1,12,1,,,,,",
    "CO,60,1,810000001,",
    "ZZ,unknown,record",
    "RE,2,1111,50702,架空　花子,2,4010101,70,50701,,,,,",
    "HO,402303,,7654321,10,16500",
    "SI,90,1,190117710,,1650,10",
    "GO,2,17146,99",
]) + "\r\n"
RAW = FIXTURE.encode("cp932") + uke.EOF


class _B:
    """The ICD-10 lookup of a 傷病名マスター with one made-up row."""

    master_version = "2025-03-07"

    def icd10_of(self, code: str) -> str | None:
        return {"9900001": "E11"}.get(code)

    def months_after(self, months: list[str]) -> list[str]:
        return [m for m in months if m > "2025-03"]


def test_wareki() -> None:
    assert uke.parse_month("50703") == "2025-03"
    assert uke.parse_month("43104") == "2019-04"
    assert uke.parse_date("3500412") == dt.date(1975, 4, 12)
    assert uke.to_wareki(dt.date(2019, 5, 1)) == "5010501"
    assert uke.to_wareki(dt.date(2019, 4, 30), 5) == "43104"
    assert uke.parse_month("202503") == "2025-03"  # 西暦, from 令和6年6月診療分
    assert uke.parse_date("19750412") == dt.date(1975, 4, 12)
    with pytest.raises(ValueError, match="元号"):
        uke.parse_month("60703")
    with pytest.raises(ValueError, match="calendar"):
        uke.parse_date("20250230")


def test_reads_medical_claims_into_the_claim_frame() -> None:
    res = uke.read_uke(RAW, "fixture.UKE", "402303", _B())
    lines = validate_lines(res.lines)  # national codes pass as they are (unknown ones are flagged)
    assert len(lines) == len(res.lines) == 9 and res.claims == 2
    first = res.lines[res.lines["claim_id"] == "4019999999-202503-000001"]
    assert first["patient_id"].iloc[0] == "９９・1234567"
    assert first["age"].iloc[0] == 49 and first["sex"].iloc[0] == 1  # born 1975-04-12
    assert first["service_month"].iloc[0] == "2025-02"
    assert first["total_points"].iloc[0] == 534 and first["claim_type"].iloc[0] == "医科入院外"
    assert first["code"].tolist()[:2] == ["E11", "0000999"]  # unmapped stays a 傷病名コード
    proc = first[first["line_kind"] == "procedure"]
    assert proc["points"].tolist() == [150, 0, 70] and proc["count"].tolist() == [2, 1, 1]
    drugs = first[first["line_kind"] == "drug"]
    assert drugs[["count", "days", "points"]].values.tolist() == [
        [2, 28, 84], [1, 14, 0], [3, 14, 112]]  # the 剤's 回数 (14) reaches its first line
    second = res.lines[res.lines["claim_id"].str.endswith("000002")]
    assert second["claim_type"].iloc[0] == "医科入院" and second["points"].iloc[0] == 16500
    assert res.skipped_records == {"TO": 1, "CO": 1, "ZZ": 1}
    assert res.unmapped_diagnoses == 1 and res.fractional_quantities == 1
    assert any("ZZ 1件" in n for n in res.notes())


def test_looks_like_uke_by_content_not_name() -> None:
    assert uke.looks_like_uke(RAW) and uke.looks_like_uke(b"\xef\xbb\xbfIR,2,40")
    assert not uke.looks_like_uke(b"claim_id,tenant_code\r\n")


@pytest.mark.parametrize(("raw", "match"), [
    (RAW[: RAW.index(b"SI,90")], r"f\.UKE line 16: the file ends without a GO"),
    (RAW.replace(b"SI,60,1,160062110,,70,1", b"SI,60,1,160062110"),
     r"f\.UKE line 8, SI field 5 \(数量データ\): SI record has 4 fields"),
    (RAW.replace(b"RE,1,1112,50702", b"RE,1,1112,5070X"),
     r"f\.UKE line 2, RE field 4 \(診療年月\): '5070X' is neither 元号"),
    (RAW.replace(b"SI,60,1,160008010,,,1", b"SI,60,1,16000801,,,1"),
     r"line 7, SI field 4 \(診療行為コード\): expected a 9-digit code"),
    (RAW.replace("架空の傷病".encode("cp932"), "架空の傷病".encode()),
     r"f\.UKE line 5, SY field 6 \(傷病名称\): this line is UTF-8 .*mixed encodings"),
    (RAW.replace("架空内科".encode("cp932"), b"\x81\x20"),
     r"f\.UKE line 1, IR field 7 \(医療機関名称\): not Shift_JIS"),
    (RAW.replace(b"RE,1,1112", b"RE,1,3112"), r"RE field 3 \(レセプト種別\)"),
    (b"SI,60,1,160008010,,,1\r\n", r"not a UKE file"),
    (RAW.replace(b"RE,2,1111", b"RE,1,1111"),
     r"line 15, RE field 2 \(レセプト番号\): レセプト番号 1 appears twice"),
    (RAW.replace(b"IR,2,40,1,", b"IR,2,40,4,"),
     r"IR field 4 \(点数表\): 点数表 4 \(調剤\) belongs in a YK"),
    (RAW.replace(b"IR,2,40,1,", b"IR,2,40,7,"), r"IR field 4 \(点数表\): expected 1 \(医科\)"),
    (RAW.replace(b"IR,2,40,1,", b"IR,2,40,3,"), r"RE field 3 \(レセプト種別\): expected a 歯科"),
    (RAW.replace(b"\r\nHO,402303,\x82\x58", b"\r\nSI,12,1,112007410,,75,2\r\nHO,402303,\x82\x58"
                 ).replace(b"RE,1,1112,50702", b"XX,1,1112,50702"),
     r"line 3, SI field 1 \(レコード識別情報\): SI record before any RE"),
])
def test_malformed_files_name_file_line_and_field(raw: bytes, match: str) -> None:
    with pytest.raises(uke.UkeError, match=match):
        uke.read_uke(raw, "f.UKE", "402303", _B())


def test_round_trip_of_synthetic_claims_through_uke() -> None:
    """Generated claims written as UKE with the 傷病名コード the generator draws from the
    committed 傷病名マスター, read back through that master: the same claim lines."""
    lines, _ = generate([("402303", 100000)], GenerateSpec(total_claims=1500), 3)["402303"]
    export = uke.write_uke(lines, C.DISEASE_CODES, wareki=True)
    for raw in export.files.values():
        assert raw.endswith(b"\r\n\x1a") and raw[:3] in (b"IR,", b"YK,")
        assert raw.split(b"\r\n")[1].split(b",")[3][:1] == b"5"  # 令和 + YYMM
        assert b"0000999" not in raw  # every 傷病名 has a master code
    got = uke.read_many(export.files.items(), "402303", M.in_use()).lines
    got["claim_id"] = got["claim_id"].map({v: k for k, v in export.claim_ids.items()})
    got["provider_id"] = got["provider_id"].map(export.providers)
    want = uke.representable(lines)
    key = ["claim_id", "line_no"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True)[got.columns],
                                  check_dtype=False)


def test_validation_names_the_file_whose_lines_fail() -> None:
    lines, _ = generate([("402303", 100000)], GenerateSpec(total_claims=400), 5)["402303"]
    icd = {c: f"{9900000 + i:07d}" for i, c in enumerate(sorted(set(lines["code"])))}
    export = uke.write_uke(lines, icd)
    names = sorted(export.files, key=lambda n: n.startswith("RECEIPTC"))  # a 医科 file last
    inverse = {v: k for k, v in icd.items()}

    class Book(_B):
        def icd10_of(self, code: str) -> str | None:
            # 9999998: a master row whose ICD-10 field is garbage, which validation must catch
            return "E1?" if code == "9999998" else inverse.get(code)

    files = [(n, export.files[n]) for n in names]
    ok = uke.read_many(files, "402303", Book(), validate=True)
    assert ok.lines["age"].dtype.kind == "i" and ok.claims == len(export.claim_ids)
    # a well-formed code outside every table is scored (and flagged), not rejected
    unknown = files[-1][1].replace(b"\r\nSI,", b"\r\nSI,12,1,999999999,,1,1\r\nSI,", 1)
    assert uke.read_many([*files[:-1], (names[-1], unknown)], "402303", Book(),
                         validate=True).lines["code"].eq("999999999").sum() == 1
    raw = files[-1][1]
    start = raw.index(b"\r\nSY,") + 2
    sy = raw[start:raw.index(b"\r\n", start)]
    files[-1] = (names[-1], raw.replace(sy, b"SY,9999998" + sy[len(b"SY,") + 7:], 1))
    with pytest.raises(uke.ClaimsInputError,
                       match=rf"^{names[-1]} \(row N = the Nth SY/SI/IY line.*column 'code' row"):
        uke.read_many(files, "402303", Book(), validate=True)


# A made-up dental clinic (4039999999): HS (傷病名部位) and SS (歯科診療行為) records; SS carries
# 点数 and 回数 after 2 数量 and 35 加算 pairs (fields 77 and 78).
DENTAL = "\r\n".join([
    "IR,2,40,3,9999999,,架空歯科医院,202604,00,",
    "RE,1,3112,202603,架空　三郎,1,19600101,70,,,,,,",
    "HO,402303,,5550001,2,325",
    "HS,,,110100,9900002,,",
    ",".join(["SS", "11", "1", "302000110", "", "", *[""] * 70, "267", "1"]),
    ",".join(["SS", "80", "1", "309002310", "", "", *[""] * 70, "", ""]),  # 回数 from below
    ",".join(["SS", "80", "1", "313000110", "", "", *[""] * 70, "29", "2"]),
    "GO,1,325,99",
]) + "\r\n"


def test_reads_dental_claims() -> None:
    class Book(_B):
        def icd10_of(self, code: str) -> str | None:
            return {"9900002": "K02"}.get(code)

    res = uke.read_uke(DENTAL.encode("cp932") + uke.EOF, "d.UKE", "402303", Book())
    lines = res.lines
    assert set(lines["claim_type"]) == {"歯科"} and lines["provider_id"].iloc[0] == "4039999999"
    assert lines["code"].tolist() == ["K02", "302000110", "309002310", "313000110"]
    assert lines["points"].tolist() == [0, 267, 0, 58] and lines["count"].tolist() == [0, 1, 2, 2]
    assert lines["age"].iloc[0] == 66  # born 1960-01-01, 西暦 dates
    bad = DENTAL.replace(",267,1", ",267,x")
    with pytest.raises(uke.UkeError, match=r"line 5, SS field 78 \(回数\): expected digits"):
        uke.read_uke(bad.encode("cp932"), "d.UKE", "402303", Book())


# A made-up pharmacy (薬局コード 4049999999) written by hand from the 記録条件仕様（調剤用）: one
# claim with two 処方 (SH), each dispensed once (CZ: 調剤数量, 調剤料 code and 点数, 薬剤料, a
# 加算料 pair), the second 剤 holding two drugs; KI and TK and an unknown record are skipped.
DISPENSING = "\r\n".join([
    "YK,2,40,4,9999999,架空薬局,202604,00,092-000-0000",
    "RE,1,4112,202603,架空　四郎,1,19500101,70,,40,1,9999998,架空内科,",
    "HO,402303,,2220001,1,1234",
    "SH,01,1,,,12",
    "CZ,1,20260302,20260302,1,14,1,1,01,420001810,24,,,168,,1,430000370,8",
    "IY,1,620004312,1",
    "SH,02,1,,,30",
    "CZ,1,20260302,20260302,1,28,1,1,01,420001810,24,,,840,",
    "IY,1,620008601,2",
    "IY,1,620160501,1.5",
    "TK,810000001,摘要",
    "KI,20260302,1,1,410004110,45",
    "ZZ,unknown",
    "GO,1,1234,99",
]) + "\r\n"
RX = DISPENSING.encode("cp932") + uke.EOF


class _Prices(_B):
    """A 医薬品マスター with two made-up 薬価 (yen per unit)."""

    tables: ClassVar = {"y": pd.DataFrame({"code": ["620008601", "620160501"],
                                           "price": [100.0, 20.0]})}


def test_reads_dispensing_claims() -> None:
    assert uke.looks_like_uke(RX)
    res = uke.read_uke(RX, "y.UKE", "402303", _Prices())
    lines = validate_lines(res.lines)
    assert res.claims == 1 and set(lines["claim_type"]) == {"調剤"}
    assert lines["provider_id"].iloc[0] == "4049999999"
    assert lines["claim_id"].iloc[0] == "4049999999-202604-000001"
    assert lines["service_month"].iloc[0] == "2026-03" and lines["age"].iloc[0] == 76
    assert lines["total_points"].iloc[0] == 1234 and lines["patient_id"].iloc[0] == "2220001"
    got = lines[["line_kind", "code", "count", "days", "points"]].values.tolist()
    assert got == [
        ["procedure", "420001810", 1, 0, 24],  # 調剤料 (薬剤調製料) of the 1st CZ
        ["procedure", "430000370", 1, 0, 8],  # its 加算料
        ["drug", "620004312", 1, 14, 168],  # the 剤's 薬剤料, days = 調剤数量
        ["procedure", "420001810", 1, 0, 24],
        # 840 points shared by 薬価 x 使用量: 100 x 2 against 20 x 1.5 -> 730.4 / 109.6
        ["drug", "620008601", 2, 28, 730],
        ["drug", "620160501", 2, 28, 110],
    ]
    assert dict(res.skipped_records) == {"TK": 1, "KI": 1, "ZZ": 1}
    assert res.fractional_quantities == 1
    # without a 医薬品マスター the 剤's drugs share equally; without 点数（薬剤料）:
    # 単位薬剤料 x 調剤数量
    plain = uke.read_uke(RX.replace(b",28,1,1,01,420001810,24,,,840,", b",28,1,1,01,420001810,24,"
                                    b",,,,"), "y.UKE", "402303", None).lines
    assert plain["points"].tolist()[-2:] == [420, 420]


@pytest.mark.parametrize(("raw", "match"), [
    (RX[: RX.index(b"GO,")], r"y\.UKE line 13: the file ends without a GO"),
    (RX.replace(b",1,14,1,1,01,", b",1,1x,1,1,01,"),
     r"y\.UKE line 5, CZ field 6 \(調剤数量\): expected digits, got '1x'"),
    (RX.replace(b"CZ,1,20260302,20260302,1,28,1,1,01,420001810,24,,,840,",
                b"CZ,1,20260302,20260302"),
     r"line 8, CZ field 5 \(処方箋受付回\): CZ record has 4 fields, expected at least 6"),
    (RX.replace(b"IY,1,620004312,1", b"IY,1,62000431,1"),
     r"line 6, IY field 3 \(医薬品コード\): expected a 9-digit code, got '62000431'"),
    (RX.replace(b"IY,1,620160501,1.5", b"IY,1,620160501,1.5mg"),
     r"line 10, IY field 4 \(使用量\): expected a quantity"),
    (RX.replace(b",430000370,8", b",43000037,8"),
     r"line 5, CZ field 17 \(コード（加算料1）\): expected a 9-digit code"),
    (RX.replace(b"SH,01,1,,,12\r\n", b""),
     r"line 4, CZ field 1 \(レコード識別情報\): CZ record before any SH"),
    (RX.replace(b"YK,2,40,4,", b"YK,2,40,1,"), r"line 1, YK field 4 \(点数表\): expected 4"),
    (RX.replace(b"RE,1,4112,", b"RE,1,1112,"),
     r"line 2, RE field 3 \(レセプト種別\): expected a 調剤 レセプト種別"),
    (RX.replace(b"RE,1,4112,202603", b"RE,1,4112,2026XX"),
     r"line 2, RE field 4 \(調剤年月\): '2026XX' is neither"),
    (RX.replace("架空薬局".encode("cp932"), "架空薬局".encode()),
     r"line 1, YK field 6 \(薬局連絡先名称\): this line is UTF-8"),
    (RX.replace(b"\r\nGO,", b"\r\nYK,2,40,4,9999999,,202604,00,\r\nGO,"),
     r"line 14, YK field 1 \(レコード識別情報\): a second YK record"),
])
def test_malformed_dispensing_files_name_line_and_field(raw: bytes, match: str) -> None:
    with pytest.raises(uke.UkeError, match=match):
        uke.read_uke(raw, "y.UKE", "402303", _B())


def test_round_trip_of_dispensing_claims_with_fees() -> None:
    """Generated 調剤 claims (drug lines) plus 調剤料・加算料 lines (one of count 2, one claim
    with more fees than a CZ has slots) written as YK files and read back: the same lines."""
    lines, _ = generate([("402303", 100000)], GenerateSpec(total_claims=1200), 4)["402303"]
    rx = lines[lines["claim_type"] == "調剤"]
    extra = []
    for n, cid in zip((1, 13, 3), rx["claim_id"].unique()[:3], strict=True):
        head = rx[rx["claim_id"] == cid].iloc[0]
        for k in range(n):
            count = 2 if k == 0 else 1
            extra.append({**head.to_dict(), "line_kind": "procedure", "days": 0,
                          "code": "420001810" if k % 2 else "430000370", "count": count,
                          "points": 24 * count, "line_no": 100 + k})
    lines = pd.concat([lines, pd.DataFrame(extra)], ignore_index=True)
    export = uke.write_uke(lines, C.DISEASE_CODES)
    yk = [raw for name, raw in export.files.items() if name.startswith("RECEIPTY_")]
    assert yk and all(raw.startswith(b"YK,") and raw.endswith(b"\r\n\x1a") for raw in yk)
    got = uke.read_many(export.files.items(), "402303", M.in_use()).lines
    got["claim_id"] = got["claim_id"].map({v: k for k, v in export.claim_ids.items()})
    got["provider_id"] = got["provider_id"].map(export.providers)
    want = uke.representable(lines)
    assert (want["claim_type"] == "調剤").sum() == len(rx) + 2 + (2 + 12) + (2 + 2)
    key = ["claim_id", "line_no"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True)[got.columns],
                                  check_dtype=False)
