"""Each task's reader through the shared intake: KDB-style rosters, fiscal-year eligibility,
認定調査 notation, codes, Excel-mangled item headers and the long layout, claims months."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.care_plan.items import ITEMS
from models.care_plan.schema import SurveyInputError, item_code, read_persons, shown
from models.checkup_nudge.schema import (
    RosterInputError,
    fiscal_year,
    fy_end_age,
    read_roster,
)
from models.claim_screening.schema import read_claims

FIXTURES = Path(__file__).parents[1] / "fixtures" / "intake"

KDB_HEADER = ("住民ID,性別,年齢,地区,前年度受診,前々年度受診,3年前受診,ＢＭＩ,収縮期血圧,HbA1c,"
              "LDLコレステロール,外来受診回数,高血圧,糖尿病,脂質異常症,会場までの距離(km),"
              "世帯人数,質問票タイプ\n")
KDB_ROSTER = KDB_HEADER + """\
Ａ０１,男,６５,那覇東,有,無,無,"24.0",138,NULL,N/A,１２,あり,なし,無,1.5,2,頑張り屋
A02,女性,39,那覇西,はい,いいえ,有,,,,,3,無,無,有,0.8,1,不明
A03,女,75,那覇西,無,無,無,,,,,0,無,無,無,2.0,1,
"""


def test_kdb_style_roster_with_japanese_headers_and_values() -> None:
    out = read_roster(KDB_ROSTER.encode("cp932"), "472018")
    assert out["resident_id"].tolist() == ["Ａ０１", "A02"]  # ids as written
    assert out["sex"].tolist() == [1, 2] and out["age"].tolist() == [65, 40]
    assert out["attended_y1"].tolist() == [1, 1] and out["attended_y3"].tolist() == [0, 1]
    assert out.loc[0, "outpatient_visits"] == 12 and np.isnan(out.loc[0, "hba1c"])
    assert out["questionnaire_type"].tolist() == ["頑張り屋", "unknown"]
    assert (out["tenant_code"] == "472018").all() and out.loc[0, "distance_km"] == 1.5
    excluded = out.attrs["excluded"]
    assert excluded["count"] == 1 and excluded["rows"] == [4]  # 75: 後期高齢者, left out
    assert "対象外" in excluded["message"] and "not eligible" in excluded["message"]


def roster_with(column: str, values: list[str]) -> bytes:
    rows = [f"R{i},472018,{v},1,D1,0,0,0,,,,,1,0,0,0,1.0,1," for i, v in enumerate(values)]
    header = ("resident_id,tenant_code," + column + ",sex,district,attended_y1,attended_y2,"
              "attended_y3,bmi,sbp,hba1c,ldl,outpatient_visits,has_hypertension,has_diabetes,"
              "has_dyslipidemia,distance_km,household_size,questionnaire_type")
    return "\n".join([header, *rows]).encode()


def test_birth_dates_give_the_fiscal_year_end_age() -> None:
    # FY2026 ends 2027-03-31: born 1987-04-01 is 40 then (a year of age is completed the
    # day before the birthday), born 1987-04-02 is still 39; 1952-04-02 is 75 (eligible
    # until the birthday), 1952-04-01 is 75 too; 1951-04-01 is 76.
    born = ["1987-04-01", "S62.4.2", "昭和27年4月2日", "1952/4/1", "1951-04-01", "1970-01-01"]
    out = read_roster(roster_with("生年月日", born), year=2026)
    assert out["resident_id"].tolist() == ["R0", "R2", "R3", "R5"]
    assert out["age"].tolist() == [40, 74, 74, 57]  # 75 scored as 74, the model's range
    assert out.attrs["excluded"]["rows"] == [3, 6]
    ages = fy_end_age(pd.Series(["1987-04-01", "1987-04-02", ""]), 2026)
    assert ages.iloc[:2].tolist() == [40, 39] and np.isnan(ages.iloc[2])
    with pytest.raises(RosterInputError, match=r"birth_date.*row 2: expected a date"):
        read_roster(roster_with("生年月日", ["1987-02-30"]), year=2026)


def test_fiscal_year_end_age_column_and_plain_age() -> None:
    out = read_roster(roster_with("年度末年齢", ["39", "40", "75", "76"]))
    assert out["resident_id"].tolist() == ["R1", "R2"]
    out = read_roster(roster_with("年齢", ["38", "39", "74", "75"]))
    assert out["resident_id"].tolist() == ["R1", "R2"] and out["age"].tolist() == [40, 74]
    assert fiscal_year(dt.date(2027, 3, 31)) == 2026 and fiscal_year(dt.date(2026, 4, 1)) == 2026


def test_trailing_empty_rows_case_file() -> None:
    raw = (FIXTURES / "b5_trailing_empty_rows.csv").read_bytes()
    assert raw.rstrip().endswith(b",,,,")  # the case: rows of commas left by Excel
    out = read_roster(raw, "472018")
    assert len(out) == 300 and out.attrs["lines"][-1] == 301


def test_excel_row_numbers_survive_a_blank_row_in_the_middle() -> None:
    raw = roster_with("age", ["50", "51", "52"]).replace(b"\nR1,", b"\n,,,,\nR1,")
    bad = raw.replace(b"R2,472018,52,1", b"R2,472018,52,7")
    with pytest.raises(RosterInputError, match=r"sex' 5行目.*column 'sex' row 5"):
        read_roster(bad)


def test_roman_numerals_and_full_width_care_levels_case_files() -> None:
    roman = read_persons((FIXTURES / "c1_roman_numerals.csv").read_bytes(), "232017")
    full = read_persons((FIXTURES / "c2_fullwidth_care_level.csv").read_bytes(), "232017")
    assert roman["dementia_independence"].tolist()[:4] == ["IIa", "IIIa", "I", "IIb"]
    assert full["care_level"].tolist()[:4] == ["要支援1", "要介護2", "要支援2", "要介護3"]
    assert roman.equals(full)


def persons_csv(rows: list[dict[str, str]] | None = None, encoding: str = "cp932",
                **renames: str) -> bytes:
    base = {"person_id": "K-1", "age": "80", "sex": "2", "living_alone": "0",
            "care_level": "要介護1", "physical_independence": "A1",
            "dementia_independence": "IIa", **{i.column: "1" for i in ITEMS}}
    frame = pd.DataFrame([{**base, **r} for r in (rows or [{}])])
    return frame.rename(columns=renames).to_csv(index=False).encode(encoding)


def test_standard_codes_and_notation() -> None:
    raw = persons_csv([{"care_level": "21", "sex": "女", "dementia_independence": "ⅢB",
                        "physical_independence": "ａ１"}, {"person_id": "K-2",
                                                          "care_level": "要介護度５"}])
    out = read_persons(raw, "232017")
    assert out["care_level"].tolist() == ["要介護1", "要介護5"]
    assert out.loc[0, "dementia_independence"] == "IIIb" and out.loc[0, "sex"] == "2"
    assert out.loc[0, "physical_independence"] == "A1"
    with pytest.raises(SurveyInputError, match=r"'01' は選択肢にありません"):
        read_persons(persons_csv([{"care_level": "01"}]), "232017")  # 非該当: no care plan


def test_one_json_person_in_official_notation() -> None:
    from models.care_plan.schema import person_inputs
    from serving.care_plan import EXAMPLE_PERSON

    plain = person_inputs({**EXAMPLE_PERSON, "care_level": "要介護2",
                           "dementia_independence": "IIa"})[1]
    official = person_inputs({**EXAMPLE_PERSON, "care_level": "要介護２",
                              "dementia_independence": "Ⅱa"})[1]
    assert (plain == official).all()


def test_lookalike_values_are_shown_with_their_code_points() -> None:
    with pytest.raises(SurveyInputError, match=r"'Іa' \[U\+0406\]"):  # Cyrillic І
        read_persons(persons_csv([{"dementia_independence": "Іa"}], "utf-8"), "232017")
    assert shown("要介護6") == "'要介護6'" and shown("Ⅱc") == "'Ⅱc' [U+2161]"


def test_excel_mangled_item_headers() -> None:
    renames = {"item_1-7": "1月7日", "item_1-1-1": "2001/1/1", "item_2-12": "12-Feb",
               "item_1-13": "1-13", "item_3-4": "短期記憶", "item_6-12": "６－１２"}
    out = read_persons(persons_csv([{"item_1-7": "3"}], **renames), "232017")
    assert out.loc[0, "item_1-7"] == 3 and len(out) == 1
    assert [item_code(t) for t in ("1月7日", "2001/2/3", "2026/1/13", "7-Jan", "9-9")] == [
        "1-7", "1-2-3", "1-13", "1-7", "9-9"]


def long_layout(drop: str | None = None) -> bytes:
    rows = []
    for pid, level in (("A-100", "要介護１"), ("A-200", "22")):
        rows += [(pid, "年齢", "81"), (pid, "性別", "男"), (pid, "独居", "無"),
                 (pid, "要介護度", level), (pid, "障害高齢者の日常生活自立度", "J2"),
                 (pid, "認知症高齢者の日常生活自立度", "Ⅱa")]
        rows += [(pid, i.code if k % 2 else i.name, "2" if i.code == "1-7" else "1")
                 for k, i in enumerate(ITEMS) if not (pid == "A-200" and i.code == drop)]
    frame = pd.DataFrame(rows, columns=["申請書管理番号", "調査項目", "内容"])
    return frame.to_csv(index=False).encode("cp932")


def test_long_layout_becomes_one_row_per_person() -> None:
    out = read_persons(long_layout(), "232017")
    assert out["person_id"].tolist() == ["A-100", "A-200"]
    assert out["care_level"].tolist() == ["要介護1", "要介護2"]
    assert out["item_1-7"].tolist() == [2, 2] and (out["item_3-4"] == 1).all()
    assert out.loc[0, "dementia_independence"] == "IIa" and out.loc[0, "sex"] == "1"


def test_long_layout_names_a_missing_item_and_an_unknown_one() -> None:
    with pytest.raises(SurveyInputError, match=r"3-4「短期記憶」 行 82: 調査項目がありません"
                                               r"（A-200）.*調査項目 missing \(for A-200\)"):
        read_persons(long_layout(drop="3-4"), "232017")
    raw = long_layout().replace("起き上がり".encode("cp932"), "散歩".encode("cp932"))
    with pytest.raises(SurveyInputError, match=r"調査項目 '散歩'.*not an item number"):
        read_persons(raw, "232017")


def test_claims_months_blank_rows_and_japanese_headers() -> None:
    from tests.claims import CLEAN, claim, frame

    lines = frame(claim("c1", CLEAN, month="2026-03"), claim("c2", CLEAN, month="2026-03"))
    lines = lines.astype(str).rename(columns={"service_month": "診療年月", "points": "点数"})
    lines.loc[0, "診療年月"], lines.loc[4, "診療年月"] = "R8.3", "令和８年３月"
    lines.loc[1, "line_kind"] = "傷病名" if lines.loc[1, "line_kind"] == "diagnosis" else (
        {"procedure": "診療行為", "drug": "医薬品"}[lines.loc[1, "line_kind"]])
    text = lines.to_csv(index=False, lineterminator="\r\n") + ",,,,\r\n,,,,\r\n"
    out = read_claims(text.encode("cp932"))
    assert len(out) == len(lines) and (out["service_month"] == "2026-03").all()
    assert out.loc[1, "line_kind"] in ("diagnosis", "procedure", "drug")
