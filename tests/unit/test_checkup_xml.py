"""特定健診 standard XML (HL7 CDA, JLAC10 codes): values, join key, unknown codes, bad files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from models.checkup_nudge.checkup_xml import (
    CheckupXmlError,
    CheckupXmlTooLarge,
    checkup_key,
    looks_like_xml,
    looks_like_zip_of_xml,
    read_results,
    roster_keys,
)
from models.checkup_nudge.schema import RosterInputError, read_roster

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tokutei_xml"
ZIP = FIXTURES / "kenshin_3persons.zip"
NAHA = "472018"
ROSTER = (
    "住民ID,年齢,性別,地区,前年度受診,前々年度受診,3年前受診,BMI,収縮期血圧,HbA1c,"
    "LDLコレステロール,外来受診回数,高血圧,糖尿病,脂質異常症,会場までの距離,世帯人数,"
    "質問票タイプ,保険者番号,記号,番号\n"
    "R-1,56,男,D01,有,無,無,,,,,2,無,無,無,1.5,2,心配性,470999,那覇12,1001\n"
    "R-2,68,女,D02,無,無,無,23.0,150,,,0,有,無,無,3.0,1,不明,00470999,那覇12,1002\n"
    "R-3,45,男,D01,無,有,無,,,,,1,無,無,有,2.2,3,頑張り屋,470999,那覇12,1003\n"
    "R-4,60,女,D03,有,有,有,22.0,120,5.5,110,4,無,無,無,0.8,2,面倒くさがり,470999,那覇12,9999\n"
).encode()


def results():
    return read_results([(ZIP.name, ZIP.read_bytes())], NAHA)


def test_values_are_mapped_from_jlac10_codes() -> None:
    r = results()
    frame = r.frame.set_index("checkup_key")
    one = frame.loc[checkup_key(NAHA, "470999", "那覇12", "1001")]
    # two readings (1回目 132, 2回目 128): their mean, as 特定健診 takes it
    assert (one.bmi, one.sbp, one.hba1c, one.ldl) == (24.3, 130.0, 5.8, 141.0)
    assert one.sex == 1 and one.birth_date == "1970-05-12" and one.exam_date == "2026-06-10"
    two = frame.loc[checkup_key(NAHA, "470999", "那覇12", "1002")]
    assert (two.bmi, two.sbp, two.hba1c, two.ldl, two.sex) == (21.0, 118.0, 5.4, 99.0, 2)
    # written with full-width digits and the unpadded insurer OID: the same key as the roster's
    three = frame.loc[checkup_key(NAHA, "00470999", "那覇12", "1003")]
    assert (three.bmi, three.sbp, three.hba1c, three.ldl) == (27.5, 145.0, 6.3, 160.0)
    assert r.documents == 3 and len(r.frame) == 3
    assert r.skipped_files == [f"{ZIP.name}/index.xml", f"{ZIP.name}/XSD/readme.txt"]
    # the raw card numbers are nowhere in what was read
    assert not r.frame.astype(str).apply(lambda c: c.str.contains("1001")).any().any()


def test_codes_without_a_roster_column_are_counted_not_errors() -> None:
    r = results()
    # 拡張期血圧 (1回目) in person 1 and HDL (nullFlavor) in person 2: known, no roster field
    assert r.unused_codes == {"9A761000000000001": 1, "3F070000002327101": 1}
    assert r.unknown_codes == {}
    assert r.summary()["unused_codes"] == 2 and r.summary()["unknown_codes"] == 0
    text = (FIXTURES / "h0000047099920260002.xml").read_text(encoding="utf-8")
    odd = text.replace("3F070000002327101", "9Z999000000000001")  # not in the code table
    r = read_results([("odd.xml", odd.encode())], NAHA)
    assert r.unknown_codes == {"9Z999000000000001": 1} and r.summary()["unknown_code_list"] == [
        "9Z999000000000001"]


EXCERPT = FIXTURES / "jlac10_code_table_excerpt.csv"


def test_code_table_matches_the_committed_source_excerpt() -> None:
    """CODE_TABLE (code, item, measurement, field) equals the hand-transcribed excerpt row for
    row, every code has a source named in SOURCES, and every sibling of a used item maps to
    the same field (a missing method sibling would leave a roster cell empty)."""
    from models.checkup_nudge.checkup_xml import CODE_TABLE, RESULT_CODES, SOURCES

    rows = pd.read_csv(EXCERPT, comment="#", dtype=str, keep_default_na=False)
    assert rows["code"].is_unique and len(rows) == len(CODE_TABLE) == 40
    for row in rows.itertuples():
        assert len(row.code) == 17, row.code
        assert CODE_TABLE[row.code] == (row.item, row.measurement, row.field), row.code
        assert row.source and set(row.source.split()) <= set(SOURCES), row.code
    by_item = rows.groupby("item")["field"].agg(set)
    assert all(len(fields) == 1 for fields in by_item), by_item  # no item half-mapped
    assert {f: sorted(c for c, x in RESULT_CODES.items() if x == f) for f in ("sbp", "ldl")} == {
        "sbp": ["9A751000000000001", "9A752000000000001", "9A755000000000001"],
        "ldl": ["3F077000002327101", "3F077000002327201", "3F077000002391901",
                "3F077000002399901"]}
    # the codes the issue quoted are where the standard puts them
    assert RESULT_CODES["9N011000000000001"] == "bmi"
    assert RESULT_CODES["3D046000001906202"] == "hba1c"
    assert "3D045000001906202" not in RESULT_CODES  # JDS値: another scale, never mixed in


def test_systolic_other_reading_wins_over_the_two_readings() -> None:
    """1回目 132 + 2回目 128 -> 130 (their mean); with その他 140 too, その他 is the value."""
    text = (FIXTURES / "h0000047099920260001.xml").read_text(encoding="utf-8")
    assert read_results([("a.xml", text.encode())], NAHA).frame["sbp"].tolist() == [130.0]
    obs = ('<entry><observation classCode="OBS" moodCode="EVN"><code code="9A755000000000001" '
           'codeSystem="1.2.392.200119.6.1005"/><value xsi:type="PQ" value="140" unit="mmHg"/>'
           '</observation></entry>')
    other = text.replace("</section>", obs + "</section>", 1)
    assert read_results([("b.xml", other.encode())], NAHA).frame["sbp"].tolist() == [140.0]


def test_keys_are_per_tenant() -> None:
    assert checkup_key("472018", "470999", "A", "1") != checkup_key("232017", "470999", "A", "1")
    assert checkup_key(NAHA, "1000470999", "那覇１２", " 1001") == checkup_key(
        NAHA, "470999", "那覇12", "1001")
    # the roster's vectorised keys follow the same normalisation as checkup_key
    cards = pd.DataFrame({"insurer_number": ["1000470999", "００470999", " "],
                          "card_symbol": ["那覇 １2", "x", ""], "card_number": ["1", "2", "3"]})
    assert roster_keys(cards, NAHA).tolist() == [checkup_key(NAHA, "470999", "那覇12", "1"),
                                                 checkup_key(NAHA, "470999", "x", "2"), ""]


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_malformed_xml_names_the_file_inside_the_zip() -> None:
    good = (FIXTURES / "h0000047099920260001.xml").read_bytes()
    raw = zipped({"DATA/a.xml": good, "DATA/broken.xml": good[:-40]})
    with pytest.raises(CheckupXmlError, match=r"'bundle\.zip/DATA/broken\.xml'"):
        read_results([("bundle.zip", raw)], NAHA)


def test_entity_expansion_is_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<ClinicalDocument xmlns="urn:hl7-org:v3">&b;</ClinicalDocument>')
    with pytest.raises(CheckupXmlError, match=r"lol\.xml"):
        read_results([("lol.xml", bomb)], NAHA)


def test_zip_bomb_and_too_many_members_are_too_large() -> None:
    bomb = zipped({"DATA/big.xml": b"<a>" + b" " * 30_000_000 + b"</a>"})
    assert len(bomb) < 100_000
    with pytest.raises(CheckupXmlTooLarge, match=r"big\.xml"):
        read_results([("bomb.zip", bomb)], NAHA)
    many = zipped({f"DATA/{i}.xml": b"<a/>" for i in range(30)})
    with pytest.raises(CheckupXmlTooLarge, match="30"):
        read_results([("many.zip", many)], NAHA, max_members=20)
    with pytest.raises(CheckupXmlTooLarge):
        read_results([("many.zip", many)], NAHA, max_total_bytes=50)


def test_a_lying_zip_header_cannot_exceed_the_limit() -> None:
    raw = bytearray(zipped({"x.xml": b"<a>" + b" " * 100_000 + b"</a>"}))
    # declare 10 bytes in the central directory; reading stops at the per-file limit anyway
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    with pytest.raises((CheckupXmlTooLarge, CheckupXmlError)):
        read_results([("lie.zip", bytes(raw))], NAHA, max_member_bytes=1000)


def test_recognised_by_content() -> None:
    assert looks_like_zip_of_xml(ZIP.read_bytes()) and not looks_like_xml(ZIP.read_bytes())
    assert looks_like_xml((FIXTURES / "h0000047099920260002.xml").read_bytes())
    assert not looks_like_xml(ROSTER) and not looks_like_zip_of_xml(ROSTER)


def test_results_merge_into_a_roster_by_card_key() -> None:
    out = read_roster(ROSTER, NAHA, year=2026, results=results())
    by_id = out.set_index("resident_id")
    assert by_id.loc["R-1", ["bmi", "sbp", "hba1c", "ldl"]].tolist() == [24.3, 130, 5.8, 141]
    assert by_id.loc["R-2", ["bmi", "sbp", "ldl"]].tolist() == [21.0, 118, 99]  # XML wins
    assert by_id.loc["R-3", "hba1c"] == 6.3
    assert by_id.loc["R-4", ["bmi", "sbp"]].tolist() == [22.0, 120]  # no XML: kept
    report = out.attrs["checkup_xml"]
    assert report["matched"] == 3 and report["not_on_roster"] == 0
    assert report["filled"]["bmi"] == 3
    assert "insurer_number" not in out.columns and "card_number" not in out.columns


def test_a_roster_without_key_columns_is_named() -> None:
    plain = b"\n".join(b",".join(line.split(b",")[:-3]) for line in ROSTER.split(b"\n"))
    with pytest.raises(RosterInputError, match="保険者番号"):
        read_roster(plain, NAHA, year=2026, results=results())


def test_cli_import_xml(tmp_path: Path) -> None:
    from training.cli import app

    out = tmp_path / "results.csv"
    r = CliRunner().invoke(app, ["nudge", "import-xml", str(ZIP), "--tenant", NAHA,
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8-sig")
    assert text.startswith("健診キー,性別,生年月日,健診実施日,BMI") and "1001" not in text
    assert '"persons": 3' in r.output and '"unused_codes": 2' in r.output
    roster = tmp_path / "roster.csv"
    roster.write_bytes(ROSTER)
    merged = tmp_path / "merged.csv"
    r = CliRunner().invoke(app, ["nudge", "import-xml", str(ZIP), "--tenant", NAHA,
                                 "--roster", str(roster), "--out", str(merged)])
    assert r.exit_code == 0, r.output
    assert '"matched": 3' in r.output and "24.3" in merged.read_text(encoding="utf-8-sig")
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<ClinicalDocument")
    r = CliRunner().invoke(app, ["nudge", "import-xml", str(bad), "--tenant", NAHA,
                                 "--out", str(out)])
    assert r.exit_code == 2 and "bad.xml" in r.output


def test_shift_jis_documents_and_bad_encodings() -> None:
    text = (FIXTURES / "h0000047099920260001.xml").read_text(encoding="utf-8")
    sjis = text.replace('encoding="UTF-8"', 'encoding="Shift_JIS"').encode("cp932")
    r = read_results([("sjis.xml", sjis)], NAHA)
    assert r.frame["bmi"].tolist() == [24.3]
    unknown = text.replace('encoding="UTF-8"', 'encoding="x-nonesuch"').encode()
    with pytest.raises(CheckupXmlError, match=r"'u\.xml'.*x-nonesuch"):
        read_results([("u.xml", unknown)], NAHA)


def test_a_corrupt_member_is_named() -> None:
    raw = bytearray(zipped({"DATA/a.xml": (FIXTURES / "h0000047099920260001.xml").read_bytes()}))
    start = raw.find(b"DATA/a.xml") + len(b"DATA/a.xml")
    raw[start + 10:start + 40] = b"\x00" * 30  # damage the deflated data, keep the directory
    with pytest.raises(CheckupXmlError, match=r"c\.zip/DATA/a\.xml"):
        read_results([("c.zip", bytes(raw))], NAHA)


def test_limits_hold_for_all_files_of_a_call_together() -> None:
    """Two ZIPs each under the limits but over them together: a 413, not 2 x the budget."""
    doc = (FIXTURES / "h0000047099920260001.xml").read_bytes()
    half = zipped({f"DATA/h{i:04d}.xml": doc for i in range(15)})
    assert read_results([("a.zip", half)], NAHA, max_members=20).documents == 15
    with pytest.raises(CheckupXmlTooLarge, match=r"'b\.zip'.*30.*20"):
        read_results([("a.zip", half), ("b.zip", half)], NAHA, max_members=20)
    size = 15 * len(doc)
    read_results([("a.zip", half)], NAHA, max_total_bytes=size + 10)
    with pytest.raises(CheckupXmlTooLarge, match="上限"):
        read_results([("a.zip", half), ("b.zip", half)], NAHA, max_total_bytes=size + 10)
    # loose XML files count too
    loose = [(f"h{i}.xml", doc) for i in range(5)]
    with pytest.raises(CheckupXmlTooLarge, match=r"h4\.xml"):
        read_results([("a.zip", half), *loose], NAHA, max_members=19)


def test_the_page_refuses_the_same_number_of_files_as_the_api() -> None:
    """The checkup page checks the form's file limit before uploading: same number."""
    from serving.uploads import MAX_FILES

    page = (Path(__file__).parents[2] / "serving/static/checkup_nudge.html").read_text()
    assert f"const MAX_FORM_FILES = {MAX_FILES};" in page
    assert f"名簿を含めて{MAX_FILES}個まで" in page
