"""Vectorised review rules: each a reason code with a Japanese label and what a reviewer checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.claim_screening import codes as C


@dataclass(frozen=True)
class Rule:
    """A review rule as the reviewer sees it."""

    code: str
    label: str  # Japanese label shown to reviewers
    explanation: str


RULES: tuple[Rule, ...] = (
    Rule("R_INDICATION", "適応外・病名漏れ",
         "診療行為または医薬品に対応する傷病名が請求にありません。"),
    Rule("R_TOTSUGO", "突合：処方と傷病名の不一致",
         "調剤レセプトの医薬品に対応する傷病名が、同月の医科レセプトにありません。"),
    Rule("R_DUPLICATE", "重複請求",
         "同一患者・同一医療機関・同月で内容が同じレセプトが複数あります。"),
    Rule("R_FREQUENCY", "算定回数超過", "月あたりの算定回数の上限を超えています。"),
    Rule("R_FREQ_3M", "縦覧：3か月内の再算定",
         "3か月に1回が限度の検査が直近2か月内にも算定されています。"),
    Rule("R_EXCLUSIVE", "併算定不可", "同時に算定できない項目が同じレセプトにあります。"),
    Rule("R_AGE_SEX", "年齢・性別の不整合",
         "患者の年齢または性別では算定できない項目があります。"),
    Rule("R_DOSE", "用量・投与日数超過", "承認用量または投与日数の上限を超えています。"),
    Rule("R_ELIGIBILITY", "資格喪失後受診", "資格喪失月より後の診療月です。"),
    Rule("R_INJURY", "負傷原因の確認（第三者行為）",
         "外傷の傷病名があります。交通事故等の第三者行為でないか確認してください。"),
)
RULE_BY_CODE = {r.code: r for r in RULES}
RULE_CODES = tuple(r.code for r in RULES)


def _code_table() -> pd.DataFrame:
    rows = []
    for p in C.PROCEDURES:
        rows.append((p.code, p.points, p.max_per_month, p.every_months, p.sex, p.min_age,
                     p.max_age, 99, 999))
    for d in C.DRUGS:
        rows.append((d.code, 0, 99, 1, d.sex, d.min_age, 120, d.max_daily_qty, d.max_days))
    for d in C.DIAGNOSES:
        rows.append((d.code, 0, 99, 1, d.sex, d.min_age, d.max_age, 99, 999))
    return pd.DataFrame(rows, columns=["code", "unit_points", "max_per_month", "every_months",
                                       "only_sex", "min_age", "max_age", "max_qty", "max_days"])


def _indication_table() -> pd.DataFrame:
    rows = [(p.code, dx) for p in C.PROCEDURES for dx in p.indications]
    rows += [(d.code, dx) for d in C.DRUGS for dx in d.indications]
    return pd.DataFrame(rows, columns=["code", "dx"])


CODE_TABLE = _code_table()
INDICATIONS = _indication_table()


def _claims(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per claim (first line's header fields), in first-seen order."""
    head = lines.drop_duplicates("claim_id")
    return head[["claim_id", "patient_id", "provider_id", "service_month", "claim_type",
                 "total_points", "insured_until", "age", "sex"]].reset_index(drop=True)


def _per_claim(claims: pd.DataFrame, lines: pd.DataFrame, mask: np.ndarray,
               stake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a line-level hit mask and stake to claim-level (hit, stake) aligned with claims."""
    hit_ids = lines.loc[mask, "claim_id"]
    stakes = pd.Series(stake[mask], index=hit_ids.values).groupby(level=0).sum()
    aligned = stakes.reindex(claims["claim_id"].values)
    return aligned.notna().to_numpy(), aligned.fillna(0).to_numpy()


def _indication_hits(lines: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Line masks: no indicated diagnosis on the claim; for 調剤, none in the month (突合)."""
    need = lines["code"].isin(INDICATIONS["code"]) & (lines["line_kind"] != "diagnosis")
    cand = lines.loc[need, ["claim_id", "patient_id", "service_month", "code"]]
    cand = cand.reset_index().merge(INDICATIONS, on="code")
    dx = lines.loc[lines["line_kind"] == "diagnosis", ["claim_id", "patient_id",
                                                       "service_month", "code"]]
    on_claim = cand.merge(dx.rename(columns={"code": "dx"})[["claim_id", "dx"]].drop_duplicates(),
                          on=["claim_id", "dx"], how="inner")["index"].unique()
    month_dx = dx.rename(columns={"code": "dx"})[["patient_id", "service_month", "dx"]]
    in_month = cand.merge(month_dx.drop_duplicates(), on=["patient_id", "service_month", "dx"],
                          how="inner")["index"].unique()
    pharmacy = (lines["claim_type"] == "調剤").to_numpy()
    missing_claim = need.to_numpy() & ~lines.index.isin(on_claim)
    missing_month = need.to_numpy() & ~lines.index.isin(in_month)
    return missing_claim & ~pharmacy, missing_month & pharmacy


def _frequency_3m(lines: pd.DataFrame, every: np.ndarray) -> np.ndarray:
    """Lines of 3-monthly procedures billed again within the two previous months (縦覧)."""
    idx = np.flatnonzero(every > 1)
    if idx.size == 0:
        return np.zeros(len(lines), bool)
    sub = lines.iloc[idx][["patient_id", "code", "service_month"]].copy()
    sub["m"] = pd.PeriodIndex(sub["service_month"], freq="M").asi8
    sub["row"] = idx
    sub = sub.sort_values(["patient_id", "code", "m"])
    prev = sub.groupby(["patient_id", "code"])["m"].shift(1)
    gap = (sub["m"] - prev).to_numpy()
    hit_rows = sub["row"].to_numpy()[(gap >= 1) & (gap <= 2)]
    out = np.zeros(len(lines), bool)
    out[hit_rows] = True
    return out


def _duplicates(claims: pd.DataFrame, lines: pd.DataFrame) -> np.ndarray:
    """Claims identical in patient, provider, month, type and content, except the first one."""
    sig = pd.util.hash_pandas_object(lines[["code", "count", "days"]], index=False)
    content = sig.groupby(lines["claim_id"].values).sum().reindex(claims["claim_id"].values)
    key = claims[["patient_id", "provider_id", "service_month", "claim_type", "total_points"]]
    key = key.assign(content=content.to_numpy())
    return key.duplicated(keep="first").to_numpy()


def apply_rules(lines: pd.DataFrame) -> pd.DataFrame:
    """Claim-level frame: claim header fields, one bool column and one stake column per rule."""
    claims = _claims(lines)
    info = lines[["code"]].merge(CODE_TABLE, on="code", how="left")
    count = lines["count"].to_numpy()
    points = lines["points"].to_numpy().astype(float)
    kind = lines["line_kind"].to_numpy()
    out = claims.copy()

    def put(rule: str, mask: np.ndarray, stake: np.ndarray) -> None:
        out[rule], out[f"{rule}_stake"] = _per_claim(claims, lines, mask, stake)

    no_ind, no_ind_month = _indication_hits(lines)
    put("R_INDICATION", no_ind, points)
    put("R_TOTSUGO", no_ind_month, points)
    dup = _duplicates(claims, lines)
    out["R_DUPLICATE"], out["R_DUPLICATE_stake"] = dup, np.where(dup, claims["total_points"], 0)
    maxm = info["max_per_month"].fillna(99).to_numpy()
    over = (kind == "procedure") & (count > maxm)
    unit = info["unit_points"].fillna(0).to_numpy()
    put("R_FREQUENCY", over, np.maximum(count - maxm, 0) * unit)
    put("R_FREQ_3M", _frequency_3m(lines, info["every_months"].fillna(1).to_numpy()), points)
    put("R_EXCLUSIVE", _exclusive(lines), points)
    age, sex = lines["age"].to_numpy(), lines["sex"].to_numpy()
    only_sex = info["only_sex"].fillna(0).to_numpy()
    bad = ((only_sex > 0) & (only_sex != sex)) | (age < info["min_age"].fillna(0).to_numpy()) \
        | (age > info["max_age"].fillna(120).to_numpy())
    put("R_AGE_SEX", bad, points)
    qty_over = count > info["max_qty"].fillna(99).to_numpy()
    days = lines["days"].to_numpy()
    days_over = days > info["max_days"].fillna(999).to_numpy()
    dose = (kind == "drug") & (qty_over | days_over)
    allowed = np.minimum(count, info["max_qty"].fillna(99).to_numpy()) * np.minimum(
        days, info["max_days"].fillna(999).to_numpy())
    put("R_DOSE", dose, points * (1 - allowed / np.maximum(count * days, 1)))
    until = claims["insured_until"].fillna("").astype(str)
    lost = (until != "") & (claims["service_month"].astype(str) > until)
    out["R_ELIGIBILITY"] = lost.to_numpy()
    out["R_ELIGIBILITY_stake"] = np.where(lost, claims["total_points"], 0)
    injury = lines["code"].isin(C.INJURY).to_numpy()
    inj, _ = _per_claim(claims, lines, injury, points)
    out["R_INJURY"], out["R_INJURY_stake"] = inj, np.where(inj, claims["total_points"], 0)
    return out


def _exclusive(lines: pd.DataFrame) -> np.ndarray:
    """Lines whose code is the disallowed member of a 併算定不可 pair present on the same claim."""
    mask = np.zeros(len(lines), bool)
    present = lines[["claim_id", "code"]]
    for first, second in C.EXCLUSIVE_PAIRS:
        with_first = present.loc[present["code"] == first, "claim_id"].unique()
        mask |= ((present["code"] == second) & present["claim_id"].isin(with_first)).to_numpy()
    return mask


def rules_priority(hits: pd.DataFrame) -> np.ndarray:
    """Rules-only ranking: points at stake named by the fired rules (the baseline)."""
    line_rules = [c for c in RULE_CODES if c not in ("R_DUPLICATE", "R_ELIGIBILITY", "R_INJURY")]
    line_stake = hits[[f"{c}_stake" for c in line_rules]].sum(axis=1).to_numpy()
    whole = hits[["R_DUPLICATE_stake", "R_ELIGIBILITY_stake", "R_INJURY_stake"]].max(axis=1)
    return np.maximum(line_stake, whole.to_numpy())
