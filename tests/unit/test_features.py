"""Features on hand-made claims: history across months, norms, provider stats, claim shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.claim_screening.features import (
    FEATURE_NAMES,
    SHRINK_CLAIMS,
    Reference,
    build_features,
    build_reference,
    code_group,
    out_of_fold_provider_stats,
)
from models.claim_screening.rules import apply_rules
from models.claim_screening.scoring import (
    contributions,
    flag_summary,
    for_features,
    prepare,
    score_claims,
    widen_medians,
)
from tests.claims import CLEAN, UNLISTED_POINTS, claim, frame

PRIOR = [0.0, 0.05, 0.02, 0.5]
REF = Reference(norm={"医科入院外|E11": 5.0, "調剤|622421201": 4.5}, global_norm=4.0,
                provider={"C1": [0.5, 0.25, 0.1, 2.0, 40.0]}, prior=PRIOR)


def features(df: pd.DataFrame, ref: Reference = REF) -> pd.DataFrame:
    """build_features indexed by claim_id."""
    hits = apply_rules(df)
    return build_features(df, hits, ref).set_index(hits["claim_id"])


def test_feature_columns_and_dtype() -> None:
    f = build_features(frame(claim("a", CLEAN)), apply_rules(frame(claim("a", CLEAN))), REF)
    assert tuple(f.columns) == FEATURE_NAMES
    assert (f.dtypes == np.float32).all()


def test_patient_history_counts_previous_months() -> None:
    injury = [("diagnosis", "S52", 0, 0)]
    df = frame(claim("a", injury, month="2025-11"), claim("b", CLEAN, month="2025-12"),
               claim("b2", CLEAN, month="2025-12", provider="C2"),
               claim("c", CLEAN, month="2026-01"),
               claim("d", [("diagnosis", "T14", 0, 0)], month="2026-02"),
               claim("e", CLEAN, month="2026-02", provider="C9"),
               claim("f", CLEAN, month="2026-05"), claim("z", CLEAN, month="2026-02", patient="q"))
    f = features(df)
    cols = ["patient_claims_prev2", "patient_log_points_prev2", "patient_injury_months_prev3",
            "patient_claims_same_month"]
    expected = {  # CLEAN claims total 181 points; the injury-only claims 0
        "a": [0, 0, 0, 1], "b": [1, 0, 1, 2], "b2": [1, 0, 1, 2],
        "c": [3, np.log1p(362), 1, 1], "d": [3, np.log1p(543), 1, 2],
        "e": [3, np.log1p(543), 1, 2], "f": [0, 0, 1, 1], "z": [0, 0, 0, 1]}
    for cid, row in expected.items():
        assert f.loc[cid, cols].tolist() == pytest.approx(row, abs=1e-5), cid


def test_points_vs_norm_and_provider_month_level() -> None:
    df = frame(claim("k", CLEAN),
               claim("k2", [("diagnosis", "E11", 0, 0), ("procedure", "112007410", 2, 0)]),
               claim("k3", [("diagnosis", "E11", 0, 0), ("procedure", "160010010", 4, 0)]),
               claim("u", [("diagnosis", "I10", 0, 0), ("procedure", "112007410", 1, 0)],
                     provider="NEW"),
               claim("r", [("drug", "622421201", 2, 28)], ctype="調剤", provider="P1"))
    f = features(df)
    resid = {"k": np.log1p(181) - 5.0, "k2": np.log1p(150) - 5.0, "k3": np.log1p(196) - 5.0,
             "u": np.log1p(75) - 4.0, "r": np.log1p(57) - 4.5}  # unseen key: global norm
    for cid, value in resid.items():
        assert f.loc[cid, "points_vs_norm"] == pytest.approx(value, abs=1e-5), cid
    c1 = (resid["k"] + resid["k2"] + resid["k3"]) / 3
    assert f.loc["k2", "month_provider_points_vs_norm"] == pytest.approx(c1, abs=1e-5)
    assert f.loc["k", "month_provider_rule_rate"] == pytest.approx(1 / 3)  # k3: R_FREQUENCY
    assert f.loc["k3", "n_rules"] == 1
    assert f.loc["k3", "log_rule_stake"] == pytest.approx(np.log1p(2 * 49))  # 4 - 2 HbA1c
    assert f.loc["u", "month_provider_points_vs_norm"] == pytest.approx(resid["u"], abs=1e-5)
    assert f.loc["r", "claim_type"] == 3
    assert f.loc["k", "claim_type"] == 1


def test_provider_stats_for_known_and_unknown_providers() -> None:
    f = features(frame(claim("k", CLEAN), claim("u", CLEAN, provider="NEW", patient="p2")))
    cols = ["provider_points_vs_norm", "provider_rule_rate", "provider_injury_share",
            "provider_rehab_mean", "log_provider_claims"]
    k = SHRINK_CLAIMS
    shrunk = [(40 * v + k * p) / (40 + k) for v, p in zip([0.5, 0.25, 0.1, 2.0], PRIOR,
                                                          strict=True)]
    assert f.loc["k", cols].tolist() == pytest.approx([*shrunk, np.log1p(40)])
    # no history: the all-provider prior and a volume of 0, never NaN or zeros
    assert f.loc["u", cols].tolist() == pytest.approx([*PRIOR, 0.0])


def test_more_history_moves_a_provider_further_from_the_prior() -> None:
    refs = [Reference(norm={}, global_norm=4.0, provider={"C1": [0.9, 0.5, 0, 0, n]},
                      prior=PRIOR) for n in (1.0, 10.0, 1000.0)]
    rates = [features(frame(claim("a", CLEAN)), ref).loc["a", "provider_rule_rate"]
             for ref in refs]
    assert PRIOR[1] < rates[0] < rates[1] < rates[2] < 0.5


def test_reference_without_prior_derives_it_from_provider_volumes() -> None:
    ref = Reference.from_dict({"norm": {}, "global_norm": 4.0, "provider": {
        "A": [1.0, 0.1, 0, 0, 10.0], "B": [0.0, 0.4, 0, 0, 30.0]}})
    assert ref.prior == pytest.approx([0.25, 0.325, 0, 0]) and ref.codes == []
    assert Reference.from_dict(ref.to_dict()) == ref
    # its model was trained on raw means: no shrinkage, the prior only without history
    f = features(frame(claim("a", CLEAN, provider="A"), claim("n", CLEAN, provider="N")), ref)
    assert f.loc["a", "provider_rule_rate"] == pytest.approx(0.1)
    assert f.loc["n", "provider_rule_rate"] == pytest.approx(0.325)
    assert build_reference(frame(claim("a", CLEAN)), apply_rules(frame(claim("a", CLEAN)))
                           ).shrink == SHRINK_CLAIMS


def test_unseen_key_code_takes_its_chapter_norm() -> None:
    ref = Reference(norm={"医科入院外|E11": 5.0, "医科入院外|~E": 4.8}, global_norm=4.0,
                    provider={}, prior=PRIOR)
    lines = [("diagnosis", "E14", 0, 0), ("procedure", "112007410", 1, 0)]
    f = features(frame(claim("e", lines), claim("j", [("diagnosis", "J99", 0, 0),
                                                      ("procedure", "112007410", 1, 0)])), ref)
    assert f.loc["e", "points_vs_norm"] == pytest.approx(np.log1p(75) - 4.8, abs=1e-5)
    assert f.loc["j", "points_vs_norm"] == pytest.approx(np.log1p(75) - 4.0, abs=1e-5)
    assert [code_group(c) for c in ("E11", "E119", "112007410", "0000999")] == [
        "~E", "~E", "~11", "~00"]


def test_out_of_fold_provider_stats_never_describe_the_claim_itself() -> None:
    df = frame(*[claim(f"a{i}", CLEAN, patient=f"p{i}") for i in range(40)],
               claim("x", [("diagnosis", "E11", 0, 0), ("procedure", "160010010", 9, 0)],
                     patient="px"))
    hits = apply_rules(df)
    ref = build_reference(df, hits)
    oof = out_of_fold_provider_stats(df, hits, ref, seed=0, unseen_share=0.0)
    # 41 claims of one provider: each row counts the provider's claims outside its own fold
    assert ((oof[:, 4] < 41) & (oof[:, 4] > 0)).all()
    # x is the only claim with a rule hit: its own row cannot see it
    assert oof[-1, 1] == 0 and ref.provider["C1"][1] == pytest.approx(1 / 41)
    none = out_of_fold_provider_stats(df, hits, ref, seed=0, unseen_share=1.0)
    assert (none[:, 4] == 0).all() and np.isnan(none[:, :4]).all()
    X = build_features(df, hits, ref, none)
    assert X["provider_rule_rate"].to_numpy() == pytest.approx(ref.prior[1])
    assert (X["log_provider_claims"] == 0).all()


def test_claim_shape() -> None:
    lines = [("diagnosis", "S13", 0, 0), ("diagnosis", "M54", 0, 0),
             ("procedure", "180755710", 5, 0), ("procedure", "140029610", 3, 0),
             ("procedure", "170011810", 1, 0), ("drug", "620098902", 3, 20),
             ("drug", "620002636", 4, 7)]
    # 160062110 免疫学的検査判断料 and S72 are in the masters only, not in the demo's set
    master_only = [("diagnosis", "S72", 0, 0), ("procedure", "160062110", 2, 0)]
    f = features(frame(claim("s", lines), claim("c", CLEAN, patient="p2"),
                       claim("m", master_only, patient="p3")))
    shape = ["n_lines", "n_diagnoses", "n_procedures", "n_drugs", "has_injury", "rehab_units",
             "has_major_imaging", "max_qty_ratio", "max_days_ratio"]
    assert f.loc["s", shape].tolist() == pytest.approx([7, 2, 3, 2, 1, 8, 1, 1.0, 20 / 30])
    assert f.loc["c", shape].tolist() == pytest.approx([4, 1, 2, 1, 0, 0, 0, 0.5, 28 / 90])
    assert f.loc["m", shape].tolist() == pytest.approx([2, 1, 1, 0, 1, 0, 0, 0, 0])
    # composition by the masters' 区分, per-回 points, 上限回数 and ICD-10 chapters
    master = ["share_points_basic", "share_points_tests", "share_points_imaging",
              "share_points_rehab", "share_points_surgery", "share_points_drugs",
              "log_max_unit_points", "max_count_vs_limit", "n_icd_chapters"]
    s_total = 5 * 185 + 3 * 35 + 900 + 59 + 17  # ロキソプロフェン 3 x 20 days, アセトアミノフェン
    assert f.loc["s", master].tolist() == pytest.approx(
        [0, 0, 900 / s_total, 1030 / s_total, 0, 76 / s_total, np.log1p(900), 0, 2], abs=1e-5)
    assert f.loc["c", master].tolist() == pytest.approx(
        [75 / 181, 49 / 181, 0, 0, 0, 57 / 181, np.log1p(75), 1 / 2, 1], abs=1e-5)
    assert f.loc["m", master].tolist() == pytest.approx(
        [0, 1, 0, 0, 0, 0, np.log1p(UNLISTED_POINTS), 2, 1], abs=1e-5)


def test_features_follow_the_rows_of_hits() -> None:
    df = frame(claim("a", CLEAN), claim("b", CLEAN, month="2026-02"),
               claim("c", [("diagnosis", "S13", 0, 0)], provider="C2"))
    hits = apply_rules(df)
    forward = build_features(df, hits, REF).to_numpy()
    backward = build_features(df, hits.iloc[::-1].reset_index(drop=True), REF).to_numpy()
    np.testing.assert_array_equal(backward, forward[::-1])


def test_prepare_and_score_use_the_same_features() -> None:
    df = frame(claim("a", CLEAN), claim("b", CLEAN),
               claim("r", [("drug", "622421201", 2, 28)], ctype="調剤", provider="P1"))
    hits, X = prepare(df, REF)
    pd.testing.assert_frame_equal(hits, apply_rules(df))
    np.testing.assert_array_equal(X, build_features(df, hits, REF).to_numpy(np.float32))
    scored = score_claims(df, REF, lambda X: (np.full(len(X), 0.5), np.full(len(X), 1e9)))
    assert scored.frame["claim_id"].tolist() == ["a", "b", "r"]
    assert scored.frame["expected_points"].tolist() == hits["total_points"].tolist()
    np.testing.assert_array_equal(scored.X, X)


def test_build_reference_norms_and_provider_habits() -> None:
    df = frame(claim("k", CLEAN),
               claim("k2", [("diagnosis", "E11", 0, 0), ("procedure", "112007410", 2, 0)]),
               claim("k3", [("diagnosis", "E11", 0, 0), ("procedure", "160010010", 4, 0)]),
               claim("u", [("diagnosis", "I10", 0, 0), ("procedure", "112007410", 1, 0)],
                     provider="C2"))
    ref = build_reference(df, apply_rules(df))
    assert ref.norm == pytest.approx({"医科入院外|E11": np.log1p(181),
                                      "医科入院外|I10": np.log1p(75),
                                      "医科入院外|~E": np.log1p(181),
                                      "医科入院外|~I": np.log1p(75)})
    assert ref.global_norm == pytest.approx((np.log1p(150) + np.log1p(181)) / 2)
    resid = np.log1p([181, 150, 196]) - np.log1p(181)
    assert ref.provider["C1"] == pytest.approx([resid.mean(), 1 / 3, 0, 0, 3])
    assert ref.provider["C2"] == pytest.approx([0, 0, 0, 0, 1])
    # claim-weighted: C1's three claims and C2's one
    assert ref.prior == pytest.approx([resid.sum() / 4, 1 / 4, 0, 0])
    assert ref.codes == sorted({"E11", "I10", "112007410", "160010010", "622421201"})


def test_two_claim_batches_score() -> None:
    # two claims once made the (provider, month) group keys look like one key of length 2
    df = frame(claim("a", CLEAN), claim("b", CLEAN, provider="C2", patient="p2"))
    scored = score_claims(df, REF, lambda X: (np.full(len(X), 0.5), np.zeros(len(X))))
    assert scored.frame["claim_id"].tolist() == ["a", "b"]
    assert scored.X.shape == (2, len(FEATURE_NAMES))


def test_unknown_codes_and_new_providers_are_scored_and_flagged() -> None:
    # well-formed codes in no master (U99, 199999999, 629999999); 112015570 is in the s master,
    # so the rules and features know it although training never saw it
    new_codes = [("diagnosis", "U99", 0, 0), ("procedure", "199999999", 1, 0),
                 ("drug", "629999999", 1, 7), ("procedure", "199999999", 2, 0),
                 ("procedure", "112015570", 1, 0)]
    df = frame(claim("k", CLEAN), claim("n", new_codes, provider="1310112345", patient="p2"),
               claim("m", CLEAN, provider="1310112345", patient="p3"))
    scored = score_claims(df, REF, lambda X: (np.full(len(X), 0.5), np.full(len(X), 100.0)))
    frame_ = scored.frame.set_index("claim_id")
    assert frame_["n_unknown_codes"].to_dict() == {"k": 0, "n": 3, "m": 0}
    assert frame_["new_provider"].to_dict() == {"k": False, "n": True, "m": True}
    assert scored.unknown == {1: ["U99", "199999999", "629999999"]}
    assert np.isfinite(scored.X).all()  # scored, not zeros or NaN
    flags = flag_summary(scored)
    assert flags["claims_with_unknown_codes"] == 1 and flags["claims_new_provider"] == 2
    assert flags["new_providers"] == 1 and flags["distinct_unknown_codes"] == 3
    assert "コード表・学習データにないコードを含むレセプトが1件" in flags["note_ja"]
    assert "請求履歴のない医療機関（1か所）のレセプトが2件" in flags["note_ja"]
    only_k = flag_summary(scored, np.array([0]))
    assert only_k["claims"] == 1 and only_k["claims_with_unknown_codes"] == 0
    assert "すべて" in only_k["note_ja"]


def test_codes_seen_in_training_are_not_unknown() -> None:
    ref = Reference(norm={}, global_norm=4.0, provider={"C1": [0, 0, 0, 0, 5.0]},
                    prior=PRIOR, codes=["199999999"])
    df = frame(claim("n", [("diagnosis", "E11", 0, 0), ("procedure", "199999999", 1, 0)]))
    scored = score_claims(df, ref, lambda X: (np.full(len(X), 0.5), np.full(len(X), 1.0)))
    assert scored.unknown == {} and not scored.frame["new_provider"].any()


def test_a_model_trained_before_a_feature_was_added_keeps_scoring() -> None:
    old = [n for n in FEATURE_NAMES if n != "log_month_provider_claims"]
    seen: list[int] = []

    def predict(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append(X.shape[1])
        return 1 / (1 + np.exp(-X[:, old.index("n_rules")])), np.full(len(X), 100.0)

    df = frame(claim("a", CLEAN), claim("b", [("diagnosis", "I10", 0, 0),
                                              ("procedure", "160010010", 1, 0)], patient="p2"))
    scored = score_claims(df, REF, for_features(predict, old))
    assert set(seen) == {len(old)} and scored.X.shape[1] == len(FEATURE_NAMES)
    medians = widen_medians(np.zeros(len(old)), old)
    why = contributions(scored.X, medians, for_features(predict, old))
    assert [c["feature"] for c in why[1]] == ["n_rules"]  # b lacks E11 for its HbA1c
    assert for_features(predict, FEATURE_NAMES) is predict
    with pytest.raises(ValueError, match="does not build: \\['retired'\\]"):
        for_features(predict, [*old, "retired"])


def test_model_medians_are_those_of_the_served_features() -> None:
    """fit_model takes the explanation baselines from its training matrix with the provider
    columns recomputed from the reference: exactly the features serving builds."""
    from models.claim_screening.estimator import fit_model
    from models.claim_screening.features import build_features
    from models.claim_screening.generate import GenerateSpec, generate

    lines, truth = generate([("402303", 1)], GenerateSpec(total_claims=2000, months=4), 1)[
        "402303"]
    model = fit_model(lines, truth, {"n_estimators": 10, "min_child_samples": 5}, seed=0)
    served = build_features(lines, apply_rules(lines), model.reference).to_numpy(np.float32)
    np.testing.assert_array_equal(model.medians, np.median(served, axis=0).astype(np.float32))
