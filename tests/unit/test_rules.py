"""Each rule fires on the error it names and stays quiet on a clean claim."""

from __future__ import annotations

import pytest

from models.claim_screening.rules import RULE_CODES, apply_rules, rules_priority
from tests.claims import CLEAN, claim, frame


def fired_on(df, claim_id: str) -> set[str]:
    hits = apply_rules(df).set_index("claim_id")
    return {r for r in RULE_CODES if hits.loc[claim_id, r]}


def test_clean_claim_fires_nothing() -> None:
    assert fired_on(frame(claim("a", CLEAN)), "a") == set()


@pytest.mark.parametrize(("lines", "kw", "rule"), [
    ([("diagnosis", "E11", 0, 0), ("drug", "622134101", 1, 14)], {}, "R_INDICATION"),
    ([*CLEAN[:2], ("procedure", "160010010", 3, 0)], {}, "R_FREQUENCY"),  # 上限回数 2
    # master limits on codes outside the demo's set: 免疫学的検査判断料 上限回数 1, 乳幼児加算
    # （初診） 上限年齢 06 (under 6), and any ICD-10 S/T diagnosis for the 第三者行為 check
    ([*CLEAN[:2], ("procedure", "160062110", 2, 0)], {}, "R_FREQUENCY"),
    ([*CLEAN[:2], ("procedure", "111000370", 1, 0)], {"age": 6}, "R_AGE_SEX"),
    ([("diagnosis", "S72", 0, 0), ("procedure", "112007410", 1, 0)], {}, "R_INJURY"),
    ([("diagnosis", "I10", 0, 0), ("procedure", "113707110", 1, 0),
      ("procedure", "113001810", 1, 0)], {}, "R_EXCLUSIVE"),
    ([("diagnosis", "N40", 0, 0), ("procedure", "160037510", 1, 0)], {"sex": 2}, "R_AGE_SEX"),
    ([("diagnosis", "E11", 0, 0), ("procedure", "112000970", 1, 0)], {"age": 40}, "R_AGE_SEX"),
    ([("diagnosis", "E11", 0, 0), ("drug", "622421201", 6, 28)], {}, "R_DOSE"),
    ([("diagnosis", "G47", 0, 0), ("drug", "622134101", 1, 60)], {}, "R_DOSE"),
    (CLEAN, {"until": "2025-12"}, "R_ELIGIBILITY"),
    ([("diagnosis", "S13", 0, 0), ("procedure", "180755710", 5, 0)], {}, "R_INJURY"),
])
def test_rule_fires(lines: list[tuple], kw: dict, rule: str) -> None:
    assert rule in fired_on(frame(claim("a", lines, **kw)), "a")


def test_eligibility_quiet_within_insured_period() -> None:
    assert "R_ELIGIBILITY" not in fired_on(frame(claim("a", CLEAN, until="2026-01")), "a")


def test_duplicate_flags_only_the_later_copy() -> None:
    df = frame(claim("a", CLEAN), claim("b", CLEAN), claim("c", CLEAN, provider="C2"))
    hits = apply_rules(df).set_index("claim_id")["R_DUPLICATE"]
    assert hits.to_dict() == {"a": False, "b": True, "c": False}


def test_totsugo_checks_the_months_medical_claims() -> None:
    rx = [("drug", "622421201", 2, 28)]
    ok = frame(claim("m", CLEAN), claim("r", rx, ctype="調剤", provider="P1"))
    bad = frame(claim("m", [("diagnosis", "I10", 0, 0), ("procedure", "112007410", 1, 0)]),
                claim("r", rx, ctype="調剤", provider="P1"))
    assert "R_TOTSUGO" not in fired_on(ok, "r")
    assert "R_TOTSUGO" in fired_on(bad, "r")


def test_three_month_rule_needs_a_recent_previous_billing() -> None:
    psa = [("diagnosis", "N40", 0, 0), ("procedure", "160037510", 1, 0)]
    recent = frame(claim("a", psa, month="2026-01"), claim("b", psa, month="2026-02"))
    later = frame(claim("a", psa, month="2026-01"), claim("b", psa, month="2026-04"))
    assert "R_FREQ_3M" in fired_on(recent, "b")
    assert "R_FREQ_3M" not in fired_on(later, "b")


def test_rules_priority_counts_excess_points_only() -> None:
    df = frame(claim("a", [*CLEAN[:2], ("procedure", "160010010", 4, 0)]))
    hits = apply_rules(df)
    assert rules_priority(hits)[0] == pytest.approx(2 * 49)  # 4 - 2 allowed HbA1c x 49 points


def test_rows_follow_first_seen_claim_order() -> None:
    df = frame(claim("z", CLEAN), claim("a", CLEAN, patient="p2"), claim("m", CLEAN, patient="p3"))
    assert apply_rules(df)["claim_id"].tolist() == ["z", "a", "m"]


def test_empty_lines_give_an_empty_frame_with_every_column() -> None:
    hits = apply_rules(frame(claim("a", CLEAN)).iloc[:0])
    assert len(hits) == 0
    assert [c for c in hits.columns if c.startswith("R_")] == [
        col for r in RULE_CODES for col in (r, f"{r}_stake")]


def test_line_stakes_are_the_points_at_fault() -> None:
    df = frame(claim("ind", [("diagnosis", "E11", 0, 0), ("drug", "622134101", 1, 14)]),
               claim("dose", [("diagnosis", "E11", 0, 0), ("drug", "622421201", 6, 28)]))
    hits = apply_rules(df).set_index("claim_id")
    # 薬価 10.1 yen (y master): round(1.01 points x 1 x 14 days)
    assert hits.loc["ind", "R_INDICATION_stake"] == 14
    # 170 points billed for 6 x 28; 4 a day is approved, so 4 x 28 of 6 x 28 is allowed
    assert hits.loc["dose", "R_DOSE_stake"] == pytest.approx(170 * (1 - 112 / 168))
    assert hits.loc["dose", "R_INDICATION_stake"] == 0


def test_whole_claim_rules_stake_the_claim_total() -> None:
    df = frame(claim("a", CLEAN), claim("b", CLEAN, until="2025-12"),
               claim("c", [("diagnosis", "S13", 0, 0), ("procedure", "180755710", 2, 0)]))
    hits = apply_rules(df).set_index("claim_id")
    total = hits["total_points"]
    assert hits.loc["b", "R_DUPLICATE_stake"] == total["b"]
    assert hits.loc["b", "R_ELIGIBILITY_stake"] == total["b"]
    assert hits.loc["c", "R_INJURY_stake"] == total["c"] == 370
    whole = ["R_DUPLICATE_stake", "R_ELIGIBILITY_stake", "R_INJURY_stake"]
    assert hits.loc["a", whole].eq(0).all()


def test_duplicate_is_the_later_copy_in_line_order_whatever_the_ids() -> None:
    df = frame(claim("z", CLEAN), claim("a", list(reversed(CLEAN))), claim("m", CLEAN))
    hits = apply_rules(df).set_index("claim_id")["R_DUPLICATE"]
    assert hits.to_dict() == {"z": False, "a": True, "m": True}


def test_duplicate_needs_the_same_content_not_just_the_same_total() -> None:
    df = frame(claim("a", [("diagnosis", "E11", 0, 0), ("procedure", "112007410", 1, 0)]),
               claim("b", [("diagnosis", "I10", 0, 0), ("procedure", "112007410", 1, 0)]))
    assert not apply_rules(df)["R_DUPLICATE"].any()


def test_totsugo_needs_the_same_patients_diagnosis_in_the_same_month() -> None:
    rx = [("drug", "622421201", 2, 28)]
    other_patient = frame(claim("m", CLEAN, patient="p2"),
                          claim("r", rx, ctype="調剤", provider="P1"))
    other_month = frame(claim("m", CLEAN, month="2025-12"),
                        claim("r", rx, ctype="調剤", provider="P1"))
    own = frame(claim("r", [("diagnosis", "E11", 0, 0), *rx], ctype="調剤", provider="P1"))
    assert "R_TOTSUGO" in fired_on(other_patient, "r")
    assert "R_TOTSUGO" in fired_on(other_month, "r")
    assert "R_TOTSUGO" not in fired_on(own, "r")
    # a pharmacy line is judged against the month (突合), never against its own claim alone
    assert fired_on(frame(claim("r", rx, ctype="調剤", provider="P1")), "r") == {"R_TOTSUGO"}


def test_three_month_rule_across_a_year_and_within_a_month() -> None:
    psa = [("diagnosis", "N40", 0, 0), ("procedure", "160037510", 1, 0)]
    df = frame(claim("a", psa, month="2025-12"), claim("b", psa, month="2026-02"),
               claim("c", psa, month="2026-02", provider="C2"), claim("d", psa, month="2026-05"),
               claim("e", psa, month="2026-01", patient="p2"))
    hits = apply_rules(df).set_index("claim_id")["R_FREQ_3M"]
    # each billing is compared with the one just before it: c with b, same month, so quiet
    assert hits.to_dict() == {"a": False, "b": True, "c": False, "d": False, "e": False}


def test_master_month_exclusions_flag_the_banned_or_the_cheaper_line() -> None:
    """背反テーブル 同一月内 (03-2): 初診料 rules out 生活習慣病管理料２ (背反区分 1, the kept code
    first), not the other way; where either may stay (背反区分 3) the line with fewer points is
    flagged."""
    from models.claim_screening import masters as M
    from models.claim_screening.rules import ClaimLines, _exclusive

    either = M.in_use().exclusions("month").query("either").iloc[0]
    df = frame(
        claim("a", [("diagnosis", "I10", 0, 0), ("procedure", "111000110", 1, 0),
                    ("procedure", "113707110", 1, 0)]),
        claim("b", [("diagnosis", "I10", 0, 0), ("procedure", "113707110", 1, 0),
                    ("procedure", "112007410", 1, 0)]),
        claim("c", [("procedure", either["kept"], 3, 0), ("procedure", either["banned"], 1, 0)]),
        claim("d", [("procedure", either["kept"], 1, 0), ("procedure", either["banned"], 3, 0)]))
    flagged = set(df.loc[_exclusive(ClaimLines.read(df)), ["claim_id", "code"]].itertuples(
        index=False, name=None))
    assert flagged == {("a", "113707110"), ("c", either["banned"]), ("d", either["kept"])}
    hits = apply_rules(df).set_index("claim_id")
    assert hits.loc["a", "R_EXCLUSIVE_stake"] == df.loc[3 - 1, "points"] > 0
    assert not hits.loc["b", "R_EXCLUSIVE"]
