"""The synthetic generator: deterministic, realistic volumes and rates, every error type."""

from __future__ import annotations

import pandas as pd

from models.claim_screening import codes as C
from models.claim_screening import masters as M
from models.claim_screening.generate import ERROR_TYPES, GenerateSpec, generate
from models.claim_screening.rules import apply_rules
from models.claim_screening.schema import validate_lines

TENANTS = [("402303", 103_000), ("382108", 35_000), ("232017", 370_000)]


def test_deterministic_for_a_seed() -> None:
    spec = GenerateSpec(total_claims=3000)
    a, b = generate(TENANTS[:1], spec, 5), generate(TENANTS[:1], spec, 5)
    pd.testing.assert_frame_equal(a["402303"][0], b["402303"][0])
    c = generate(TENANTS[:1], spec, 6)
    assert not a["402303"][0].equals(c["402303"][0])


def test_volumes_rates_and_error_types() -> None:
    out = generate(TENANTS, GenerateSpec(total_claims=40_000), 11)
    lines = pd.concat([o[0] for o in out.values()], ignore_index=True)
    truth = pd.concat([o[1] for o in out.values()], ignore_index=True)
    validate_lines(lines)  # generated data passes the same schema as uploads
    per_tenant = truth.groupby(truth["claim_id"].str[:6]).size()
    assert per_tenant["232017"] > 2.5 * per_tenant["402303"] > 2.5 * per_tenant["382108"]
    assert 35_000 < len(truth) < 48_000
    rate = (truth["error_type"] != "").mean()
    assert 0.01 <= rate <= 0.05
    assert set(ERROR_TYPES) <= set(truth["error_type"])
    assert (truth.loc[truth["error_type"] != "", "recoverable_points"] > 0).all()
    assert (truth.loc[truth["error_type"] == "", "recoverable_points"] == 0).all()


def test_some_errors_invisible_to_rules() -> None:
    out = generate(TENANTS[:2], GenerateSpec(total_claims=20_000), 3)
    lines = pd.concat([o[0] for o in out.values()], ignore_index=True)
    truth = pd.concat([o[1] for o in out.values()], ignore_index=True).set_index("claim_id")
    hits = apply_rules(lines).set_index("claim_id")
    rule_cols = [c for c in hits.columns if c.startswith("R_") and not c.endswith("_stake")]
    any_rule = hits[rule_cols].any(axis=1)
    outliers = truth.index[truth["error_type"] == "outlier"]
    assert any_rule.reindex(outliers).mean() < 0.3  # outliers are only visible statistically
    clean = truth.index[truth["error_type"] == ""]
    assert any_rule.reindex(clean).sum() > 0  # rules also fire on legitimate claims


def test_codes_points_and_limits_come_from_the_masters() -> None:
    out = generate(TENANTS[:1], GenerateSpec(total_claims=6000), 4)["402303"]
    lines, truth = out
    s = M.in_use().tables["s"].set_index("code")
    y = M.in_use().tables["y"].set_index("code")
    procs = lines[lines["line_kind"] == "procedure"]
    medical = procs[~procs["code"].isin([p.code for p in C.PROCEDURES if not p.from_master])]
    assert medical["code"].isin(s.index).all()  # every 医科 code is a master code
    unit = medical["points"] / medical["count"]
    assert (unit == s.loc[medical["code"], "points"].to_numpy()).all()  # at the master's 点数
    drugs = lines[lines["line_kind"] == "drug"]
    assert drugs["code"].isin(y.index).all()
    # frequency errors exceed a master 上限回数 (判断料, 管理料, HbA1c ...)
    freq = truth.loc[truth["error_type"] == "frequency", "claim_id"]
    over = medical[medical["claim_id"].isin(freq)]
    limit = s.loc[over["code"], "max_count"].to_numpy()
    above = pd.Series((limit > 0) & (over["count"].to_numpy() > limit)).groupby(
        over["claim_id"].to_numpy()).any()
    assert len(above) > 10 and above.all()


def test_clean_claims_respect_the_masters_month_exclusions() -> None:
    """A clean claim never carries a pair the 背反テーブル rules out within a month (so the rule
    fires on errors only); the demo procedures it bans are dropped, e.g. 通院精神療法 next to
    特定疾患療養管理料, 生活習慣病管理料２ next to 初診料."""
    from models.claim_screening.generate import MONTH_EXCLUSIONS, without_excluded
    from models.claim_screening.rules import EXCLUSIONS, ClaimLines

    assert MONTH_EXCLUSIONS[C.PSYCHOTHERAPY] == {C.TOKUTEI, C.SEIKATSU}
    assert MONTH_EXCLUSIONS[C.SEIKATSU] == {C.SHOSHIN}
    assert without_excluded([[C.SHOSHIN, 1, 0], [C.SEIKATSU, 1, 0], [C.TOKUTEI, 1, 0],
                             [C.PSYCHOTHERAPY, 1, 0]]) == [[C.SHOSHIN, 1, 0], [C.TOKUTEI, 1, 0]]
    lines, truth = generate(TENANTS[:1], GenerateSpec(total_claims=8000), 5)["402303"]
    banned = EXCLUSIONS.banned_lines(ClaimLines.read(lines))
    clean = set(truth.loc[truth["error_type"] == "", "claim_id"])
    assert not lines.loc[banned, "claim_id"].isin(clean).any()
