"""Roster, campaign and oracle files: encodings, and errors that name the column and rows."""

from __future__ import annotations

import pandas as pd
import pytest

from models.checkup_nudge.generate import GenerateSpec, generate
from models.checkup_nudge.schema import (
    RosterInputError,
    read_roster,
    validate_campaigns,
    validate_oracle,
)
from models.checkup_nudge.task import CheckupNudge


@pytest.fixture(scope="module")
def tenant() -> dict[str, pd.DataFrame]:
    return generate([("472018", 317_000)], GenerateSpec(total_residents=300), 1)["472018"]


@pytest.fixture
def roster(tenant: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return tenant["residents"].head(20).copy()


def as_csv(df: pd.DataFrame, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    return df.to_csv(index=False, lineterminator=newline).encode(encoding)


@pytest.mark.parametrize(("encoding", "newline"), [("utf-8", "\n"), ("utf-8-sig", "\r\n"),
                                                   ("cp932", "\r\n"), ("cp932", "\n")])
def test_encodings_and_line_endings(roster: pd.DataFrame, encoding: str, newline: str) -> None:
    roster.loc[0, "questionnaire_type"] = "面倒くさがり"
    out = read_roster(as_csv(roster, encoding, newline))
    assert len(out) == 20 and out.loc[0, "questionnaire_type"] == "面倒くさがり"
    assert out["age"].dtype.kind == "i" and out["bmi"].dtype.kind == "f"
    assert out["resident_id"].tolist() == roster["resident_id"].tolist()


def test_results_empty_when_not_attended(roster: pd.DataFrame) -> None:
    roster[["bmi", "sbp", "hba1c", "ldl"]] = float("nan")
    roster["questionnaire_type"] = ""  # blank questionnaire = unknown
    out = read_roster(as_csv(roster))
    assert out["bmi"].isna().all() and (out["questionnaire_type"] == "unknown").all()


def test_empty_header_only_and_junk(roster: pd.DataFrame) -> None:
    with pytest.raises(RosterInputError, match="empty"):
        read_roster(b"  \r\n")
    with pytest.raises(RosterInputError, match="header but no rows"):
        read_roster(as_csv(roster.iloc[:0]))
    with pytest.raises(RosterInputError, match="neither UTF-8 nor Shift_JIS"):
        read_roster(bytes([0x82, 0xFF, 0xFF, 0x81]) * 10)


def test_missing_columns_named(roster: pd.DataFrame) -> None:
    with pytest.raises(RosterInputError, match=r"missing column 'age'.*missing column 'sex'"):
        read_roster(as_csv(roster.drop(columns=["age", "sex"])))


def test_ages_outside_the_fiscal_year_rule_left_out_and_reported(roster: pd.DataFrame) -> None:
    roster["age"] = roster["age"].astype(object)
    roster.loc[[1, 4, 7], "age"] = [39, 75, 30]  # 39 may turn 40 this fiscal year: kept
    out = read_roster(as_csv(roster))
    assert len(out) == 18 and out.loc[1, "age"] == 40  # scored as the 40 they will be
    assert out.attrs["excluded"]["count"] == 2 and out.attrs["excluded"]["rows"] == [6, 9]
    assert "rows 6, 9" in out.attrs["excluded"]["message"]
    assert list(out.attrs["lines"][:3]) == [2, 3, 4] and 6 not in out.attrs["lines"]
    roster["age"] = 80
    with pytest.raises(RosterInputError, match="no eligible residents"):
        read_roster(as_csv(roster))


@pytest.mark.parametrize(("column", "value", "pattern"), [
    ("age", "sixty", r"column 'age' row 4: expected an integer, got 'sixty'"),
    ("age", "", r"column 'age' row 4: expected an integer"),
    ("bmi", "abc", r"column 'bmi' row 4: expected a number"),
    ("sex", "3", r"column 'sex' row 4: must be 1 \(男\) or 2 \(女\)"),
    ("attended_y1", "2", r"column 'attended_y1' row 4: must be 0 or 1"),
    ("questionnaire_type", "几帳面", r"column 'questionnaire_type' row 4"),
    ("tenant_code", "4720", r"column 'tenant_code' row 4: must be a 6-digit"),
    ("distance_km", "-1", r"column 'distance_km' row 4"),
])
def test_bad_values_named(roster: pd.DataFrame, column: str, value: str, pattern: str) -> None:
    roster = roster.astype(object)
    roster.loc[2, column] = value  # third resident = CSV line 4
    with pytest.raises(RosterInputError, match=pattern):
        read_roster(as_csv(roster))


def test_duplicate_resident_ids(roster: pd.DataFrame) -> None:
    roster.loc[5, "resident_id"] = roster.loc[2, "resident_id"]
    with pytest.raises(RosterInputError, match=r"column 'resident_id' rows 4, 7: duplicate"):
        read_roster(as_csv(roster))


def test_tenant_code_from_the_caller(roster: pd.DataFrame) -> None:
    out = read_roster(as_csv(roster.drop(columns=["tenant_code"])), tenant_code="472018")
    assert (out["tenant_code"] == "472018").all()
    with pytest.raises(RosterInputError, match=r"rows 2, 3, 4, 5, 6 \(and 15 more\): must be "
                                               r"your municipality code 121002"):
        read_roster(as_csv(roster), tenant_code="121002")


def test_unseen_district_is_not_an_error(roster: pd.DataFrame) -> None:
    roster.loc[0, "district"] = "新都心"
    assert read_roster(as_csv(roster)).loc[0, "district"] == "新都心"


def test_campaign_log_errors(tenant: dict[str, pd.DataFrame]) -> None:
    log = tenant["campaigns"].head(10).astype(str)
    log.loc[3, "arm"] = "sms"
    with pytest.raises(RosterInputError, match=r"campaigns: .*column 'arm' row 5"):
        validate_campaigns(log)
    log = tenant["campaigns"].head(10).astype(str)
    log.loc[4, "assignment_prob"] = "0"
    with pytest.raises(RosterInputError, match=r"column 'assignment_prob' row 6"):
        validate_campaigns(log)
    dup = pd.concat([tenant["campaigns"].head(3), tenant["campaigns"].head(1)])
    with pytest.raises(RosterInputError, match=r"duplicate \(resident_id, campaign\)"):
        validate_campaigns(dup)


def test_oracle_may_be_header_only(tenant: dict[str, pd.DataFrame]) -> None:
    empty = tenant["oracle"].iloc[:0].astype(str)
    assert validate_oracle(empty).empty
    assert len(CheckupNudge().validate("oracle", tenant["oracle"].astype(str))) == len(
        tenant["oracle"])


def test_padded_cells_are_trimmed(roster: pd.DataFrame) -> None:
    roster = roster.astype(str)
    roster.loc[0, "tenant_code"] = " 472018 "
    roster.loc[0, "age"] = " 55"
    out = read_roster(as_csv(roster))
    assert out.loc[0, "tenant_code"] == "472018" and out.loc[0, "age"] == 55
