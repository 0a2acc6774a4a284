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
    ([("diagnosis", "E11", 0, 0), ("drug", "620004501", 1, 14)], {}, "R_INDICATION"),
    ([*CLEAN[:2], ("procedure", "112007410", 6, 0)], {}, "R_FREQUENCY"),
    ([("diagnosis", "I10", 0, 0), ("procedure", "113009010", 1, 0),
      ("procedure", "113001810", 1, 0)], {}, "R_EXCLUSIVE"),
    ([("diagnosis", "N40", 0, 0), ("procedure", "160100410", 1, 0)], {"sex": 2}, "R_AGE_SEX"),
    ([("diagnosis", "E11", 0, 0), ("procedure", "112011010", 1, 0)], {"age": 40}, "R_AGE_SEX"),
    ([("diagnosis", "E11", 0, 0), ("drug", "621903201", 6, 28)], {}, "R_DOSE"),
    ([("diagnosis", "G47", 0, 0), ("drug", "620004501", 1, 60)], {}, "R_DOSE"),
    (CLEAN, {"until": "2025-12"}, "R_ELIGIBILITY"),
    ([("diagnosis", "S13", 0, 0), ("procedure", "180019310", 5, 0)], {}, "R_INJURY"),
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
    rx = [("drug", "621903201", 2, 28)]
    ok = frame(claim("m", CLEAN), claim("r", rx, ctype="調剤", provider="P1"))
    bad = frame(claim("m", [("diagnosis", "I10", 0, 0), ("procedure", "112007410", 1, 0)]),
                claim("r", rx, ctype="調剤", provider="P1"))
    assert "R_TOTSUGO" not in fired_on(ok, "r")
    assert "R_TOTSUGO" in fired_on(bad, "r")


def test_three_month_rule_needs_a_recent_previous_billing() -> None:
    psa = [("diagnosis", "N40", 0, 0), ("procedure", "160100410", 1, 0)]
    recent = frame(claim("a", psa, month="2026-01"), claim("b", psa, month="2026-02"))
    later = frame(claim("a", psa, month="2026-01"), claim("b", psa, month="2026-04"))
    assert "R_FREQ_3M" in fired_on(recent, "b")
    assert "R_FREQ_3M" not in fired_on(later, "b")


def test_rules_priority_counts_excess_points_only() -> None:
    df = frame(claim("a", [*CLEAN[:2], ("procedure", "112007410", 6, 0)]))
    hits = apply_rules(df)
    assert rules_priority(hits)[0] == pytest.approx(2 * 75)  # 6 - 4 allowed visits x 75 points
