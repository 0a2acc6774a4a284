"""Claim-level features: rule hits, claim shape, provider and diagnosis norms, patient history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.claim_screening import codes as C
from models.claim_screening.rules import RULE_CODES

CLAIM_TYPE_INDEX = {t: i for i, t in enumerate(C.CLAIM_TYPES)}
REHAB = ("180019310", "180000110")

FEATURE_NAMES: tuple[str, ...] = (
    *RULE_CODES,
    "n_rules", "log_rule_stake", "claim_type", "age", "sex", "log_total_points", "n_lines",
    "n_diagnoses", "n_procedures", "n_drugs", "has_injury", "rehab_units", "has_ct",
    "max_qty_ratio", "max_days_ratio", "points_vs_norm", "provider_points_vs_norm",
    "provider_rule_rate", "provider_injury_share", "provider_rehab_mean", "log_provider_claims",
    "month_provider_points_vs_norm", "month_provider_rule_rate", "patient_claims_prev2",
    "patient_log_points_prev2", "patient_injury_months_prev3", "patient_claims_same_month",
)

# Japanese names shown to reviewers next to each feature's contribution.
FEATURE_LABELS: dict[str, str] = {
    **{r: f"ルール {r}" for r in RULE_CODES},
    "n_rules": "該当ルール数", "log_rule_stake": "ルールが示す点数", "claim_type": "レセプト種別",
    "age": "年齢", "sex": "性別", "log_total_points": "請求点数", "n_lines": "明細行数",
    "n_diagnoses": "傷病名数", "n_procedures": "診療行為数", "n_drugs": "医薬品数",
    "has_injury": "外傷の傷病名", "rehab_units": "リハビリ・処置回数", "has_ct": "CT撮影",
    "max_qty_ratio": "1日量／上限", "max_days_ratio": "投与日数／上限",
    "points_vs_norm": "同種別・同傷病名の標準点数との差",
    "provider_points_vs_norm": "医療機関の平均的な点数水準",
    "provider_rule_rate": "医療機関のルール該当率", "provider_injury_share": "医療機関の外傷割合",
    "provider_rehab_mean": "医療機関の平均リハビリ回数",
    "log_provider_claims": "医療機関の請求件数",
    "month_provider_points_vs_norm": "当月の医療機関の点数水準",
    "month_provider_rule_rate": "当月の医療機関のルール該当率",
    "patient_claims_prev2": "患者の前2か月の請求件数",
    "patient_log_points_prev2": "患者の前2か月の点数", "patient_injury_months_prev3":
    "患者の前3か月の外傷月数", "patient_claims_same_month": "患者の同月の請求件数",
}


@dataclass
class Reference:
    """Norms learned from training data and shipped with the model for serving."""

    norm: dict[str, float]  # "claim_type|key code" -> median log1p(points)
    global_norm: float
    provider: dict[str, list[float]]  # provider -> [points_vs_norm, rule_rate, injury, rehab, n]

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {"norm": self.norm, "global_norm": self.global_norm, "provider": self.provider}

    @classmethod
    def from_dict(cls, d: dict) -> Reference:
        """Inverse of to_dict."""
        return cls(norm=d["norm"], global_norm=float(d["global_norm"]), provider=d["provider"])


def _shape(lines: pd.DataFrame, claim_ids: pd.Series) -> pd.DataFrame:
    """Per-claim counts and line-derived quantities aligned to claim_ids."""
    kind = lines["line_kind"]
    code = lines["code"]
    from models.claim_screening.rules import CODE_TABLE

    limits = lines[["code"]].merge(CODE_TABLE[["code", "max_qty", "max_days"]], on="code",
                                   how="left")
    drug = (kind == "drug").to_numpy()
    qty_ratio = np.where(drug, lines["count"] / limits["max_qty"].fillna(99).to_numpy(), 0)
    days_ratio = np.where(drug, lines["days"] / limits["max_days"].fillna(999).to_numpy(), 0)
    frame = pd.DataFrame({
        "claim_id": lines["claim_id"].to_numpy(),
        "n_lines": 1,
        "n_diagnoses": (kind == "diagnosis").to_numpy(),
        "n_procedures": (kind == "procedure").to_numpy(),
        "n_drugs": drug,
        "has_injury": code.isin(C.INJURY).to_numpy(),
        "rehab_units": np.where(code.isin(REHAB), lines["count"], 0),
        "has_ct": (code == "170012110").to_numpy(),
        "max_qty_ratio": qty_ratio,
        "max_days_ratio": days_ratio,
    })
    agg = frame.groupby("claim_id", sort=False).agg({
        "n_lines": "sum", "n_diagnoses": "sum", "n_procedures": "sum", "n_drugs": "sum",
        "has_injury": "max", "rehab_units": "sum", "has_ct": "max", "max_qty_ratio": "max",
        "max_days_ratio": "max"})
    first_code = lines.groupby("claim_id", sort=False)["code"].first()
    agg["key_code"] = first_code
    return agg.reindex(claim_ids.values).reset_index(drop=True)


def _norm_key(claim_type: pd.Series, key_code: pd.Series) -> pd.Series:
    return claim_type.astype(str) + "|" + key_code.astype(str)


def build_reference(lines: pd.DataFrame, hits: pd.DataFrame) -> Reference:
    """Learn point norms per (claim type, key code) and per-provider habits from training data."""
    shape = _shape(lines, hits["claim_id"])
    logp = np.log1p(hits["total_points"].astype(float))
    key = _norm_key(hits["claim_type"], shape["key_code"])
    norm = logp.groupby(key.values).median()
    global_norm = float(logp.median())
    resid = logp - key.map(norm).fillna(global_norm)
    any_rule = hits[list(RULE_CODES)].any(axis=1).astype(float)
    prov = pd.DataFrame({"p": hits["provider_id"].values, "resid": resid.values,
                         "rule": any_rule.values, "inj": shape["has_injury"].astype(float).values,
                         "rehab": shape["rehab_units"].astype(float).values})
    g = prov.groupby("p").agg(resid=("resid", "mean"), rule=("rule", "mean"), inj=("inj", "mean"),
                              rehab=("rehab", "mean"), n=("resid", "size"))
    provider = {p: [float(v) for v in row] for p, row in zip(g.index, g.to_numpy(), strict=True)}
    return Reference(norm={k: float(v) for k, v in norm.items()}, global_norm=global_norm,
                     provider=provider)


def _patient_history(hits: pd.DataFrame, has_injury: np.ndarray) -> pd.DataFrame:
    """Previous-months activity of each claim's patient within the given data (縦覧)."""
    m = pd.PeriodIndex(hits["service_month"].astype(str), freq="M").asi8
    pm = pd.DataFrame({"patient_id": hits["patient_id"].values, "m": m, "n": 1,
                       "pts": hits["total_points"].astype(float).values, "inj": has_injury})
    pm = pm.groupby(["patient_id", "m"], sort=False).agg(n=("n", "sum"), pts=("pts", "sum"),
                                                         inj=("inj", "max")).reset_index()
    base = pd.DataFrame({"patient_id": hits["patient_id"].values, "m": m})
    out = pd.DataFrame(index=range(len(hits)))
    cols = {"n": 0.0, "pts": 0.0, "inj": 0.0}
    prev = {k: np.zeros(len(hits)) for k in cols}
    for lag in (1, 2, 3):
        shifted = pm.assign(m=pm["m"] + lag)
        joined = base.merge(shifted, on=["patient_id", "m"], how="left")
        for k in cols:
            if k == "inj" or lag <= 2:
                prev[k] += joined[k].fillna(0).astype(float).to_numpy()
    same = base.merge(pm, on=["patient_id", "m"], how="left")["n"].to_numpy()
    out["patient_claims_prev2"] = prev["n"]
    out["patient_log_points_prev2"] = np.log1p(prev["pts"])
    out["patient_injury_months_prev3"] = prev["inj"]
    out["patient_claims_same_month"] = same
    return out


def build_features(lines: pd.DataFrame, hits: pd.DataFrame, ref: Reference) -> pd.DataFrame:
    """Feature matrix (float32, FEATURE_NAMES order), one row per claim aligned with `hits`."""
    shape = _shape(lines, hits["claim_id"])
    f = pd.DataFrame(index=range(len(hits)))
    rule_matrix = hits[list(RULE_CODES)].to_numpy(float)
    for i, r in enumerate(RULE_CODES):
        f[r] = rule_matrix[:, i]
    f["n_rules"] = rule_matrix.sum(axis=1)
    stake_cols = [f"{r}_stake" for r in RULE_CODES]
    f["log_rule_stake"] = np.log1p(hits[stake_cols].to_numpy(float).max(axis=1))
    f["claim_type"] = hits["claim_type"].map(CLAIM_TYPE_INDEX).fillna(-1).to_numpy()
    f["age"] = hits["age"].to_numpy(float)
    f["sex"] = hits["sex"].to_numpy(float)
    logp = np.log1p(hits["total_points"].to_numpy(float))
    f["log_total_points"] = logp
    for col in ("n_lines", "n_diagnoses", "n_procedures", "n_drugs", "has_injury", "rehab_units",
                "has_ct", "max_qty_ratio", "max_days_ratio"):
        f[col] = shape[col].to_numpy(float)
    key = _norm_key(hits["claim_type"], shape["key_code"])
    resid = logp - key.map(ref.norm).fillna(ref.global_norm).to_numpy(float)
    f["points_vs_norm"] = resid
    prov = hits["provider_id"].map(ref.provider)
    stats = np.array([v if isinstance(v, list) else [np.nan] * 5 for v in prov], dtype=float)
    stats = stats.reshape(len(hits), 5)
    f["provider_points_vs_norm"] = stats[:, 0]
    f["provider_rule_rate"] = stats[:, 1]
    f["provider_injury_share"] = stats[:, 2]
    f["provider_rehab_mean"] = stats[:, 3]
    f["log_provider_claims"] = np.log1p(stats[:, 4])
    month_key = [hits["provider_id"].values, hits["service_month"].values]
    f["month_provider_points_vs_norm"] = pd.Series(resid).groupby(month_key).transform("mean")
    any_rule = pd.Series(rule_matrix.max(axis=1) if len(hits) else np.zeros(0))
    f["month_provider_rule_rate"] = any_rule.groupby(month_key).transform("mean")
    hist = _patient_history(hits, shape["has_injury"].to_numpy(float))
    for col in hist.columns:
        f[col] = hist[col].to_numpy(float)
    return f[list(FEATURE_NAMES)].astype(np.float32)
