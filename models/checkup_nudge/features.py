"""Resident features shared by training and serving (numpy/pandas only, vectorised).

Categories are encoded through tables learned from the training roster and shipped in
nudge.json: a district becomes its (shrunk) past attendance rate, falling back to its tenant's
rate when unseen ("other"), and to the pooled rate for an unseen tenant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from models.checkup_nudge.schema import QUESTIONNAIRE_TYPES

HISTORY = ("attended_y1", "attended_y2", "attended_y3")
SHRINK = 50.0  # pseudo-residents pulling a small district's rate towards its tenant's

FEATURE_NAMES: tuple[str, ...] = (
    "age", "male", "attended_y1", "attended_y2", "attended_y3", "attended_count",
    "has_results", "bmi", "sbp", "hba1c", "ldl", "outpatient_visits", "has_hypertension",
    "has_diabetes", "has_dyslipidemia", "n_chronic", "distance_km", "household_size",
    "lives_alone", "q_hardworker", "q_worrier", "q_unbothered", "q_dependent", "q_known",
    "district_rate", "tenant_rate",
)
Q_FEATURES = dict(zip(QUESTIONNAIRE_TYPES[:4], FEATURE_NAMES[19:23], strict=True))

FEATURE_LABELS: dict[str, str] = {
    "age": "年齢", "male": "男性", "attended_y1": "前年度受診", "attended_y2": "2年前受診",
    "attended_y3": "3年前受診", "attended_count": "過去3年の受診回数",
    "has_results": "健診結果あり", "bmi": "BMI", "sbp": "収縮期血圧", "hba1c": "HbA1c",
    "ldl": "LDL", "outpatient_visits": "外来受診回数", "has_hypertension": "高血圧",
    "has_diabetes": "糖尿病", "has_dyslipidemia": "脂質異常症", "n_chronic": "慢性疾患の数",
    "distance_km": "健診会場までの距離", "household_size": "世帯人数",
    "lives_alone": "単身世帯", "q_hardworker": "頑張り屋", "q_worrier": "心配性",
    "q_unbothered": "面倒くさがり", "q_dependent": "甘えん坊", "q_known": "タイプ判明",
    "district_rate": "地区の受診率", "tenant_rate": "自治体の受診率",
}


def _district_key(residents: pd.DataFrame) -> pd.Series:
    return residents["tenant_code"].astype(str) + "|" + residents["district"].astype(str)


def fit_encodings(residents: pd.DataFrame) -> dict[str, Any]:
    """Past-attendance rates per tenant and per district (shrunk), from the training roster."""
    rate = residents[list(HISTORY)].to_numpy(float).mean(axis=1)
    frame = pd.DataFrame({"tenant": residents["tenant_code"].astype(str).to_numpy(),
                          "district": _district_key(residents).to_numpy(), "rate": rate})
    global_rate = float(rate.mean()) if len(rate) else 0.0
    tenant = frame.groupby("tenant")["rate"].agg(["sum", "count"])
    tenant_rate = (tenant["sum"] + SHRINK * global_rate) / (tenant["count"] + SHRINK)
    district = frame.groupby(["district", "tenant"])["rate"].agg(["sum", "count"]).reset_index()
    prior = district["tenant"].map(tenant_rate).to_numpy()
    district_rate = (district["sum"] + SHRINK * prior) / (district["count"] + SHRINK)
    return {"global_rate": round(global_rate, 6),
            "tenant_rate": {k: round(float(v), 6) for k, v in tenant_rate.items()},
            "district_rate": {k: round(float(v), 6) for k, v in
                              zip(district["district"], district_rate, strict=True)}}


# a validated roster, or its columns as arrays (schema.plain_roster)
Columns: TypeAlias = pd.DataFrame | Mapping[str, Any]


def _rates(keys: Sequence[str], table: Mapping[str, float]) -> np.ndarray:
    """table[key] per key as float, NaN where the table has none."""
    return np.array([table.get(k, np.nan) for k in keys], dtype=float)


def _text(residents: Columns, name: str) -> list[str]:
    """A column's values as text (as pandas' astype(str) writes them)."""
    return [str(v) for v in np.asarray(residents[name]).tolist()]


def build_features(residents: Columns, assets: dict[str, Any]) -> np.ndarray:
    """Feature matrix (n, len(FEATURE_NAMES)) float32 from a validated roster (a DataFrame, or
    schema.plain_roster's dict of column arrays: the same numbers) and nudge.json."""
    enc = assets["encodings"]

    def col(name: str) -> np.ndarray:
        return np.asarray(residents[name], dtype=np.float32)

    n = len(residents["resident_id"])
    if not n:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32)
    hist = np.column_stack([col(c) for c in HISTORY])
    chronic = np.column_stack([col(c) for c in
                               ("has_hypertension", "has_diabetes", "has_dyslipidemia")])
    results = np.column_stack([col(c) for c in ("bmi", "sbp", "hba1c", "ldl")])
    seen = ~np.isnan(results).all(axis=1)
    results = np.nan_to_num(results, nan=0.0)  # has_results tells "never attended" apart
    q = np.array(_text(residents, "questionnaire_type"), dtype=object)
    tenants = _text(residents, "tenant_code")
    tenant_rate = _rates(tenants, enc["tenant_rate"])
    tenant_rate = np.where(np.isnan(tenant_rate), enc["global_rate"], tenant_rate)
    district = _rates([f"{t}|{d}" for t, d in zip(tenants, _text(residents, "district"),
                                                   strict=True)], enc["district_rate"])
    household = col("household_size")
    columns = [
        col("age"), (np.asarray(residents["sex"]) == 1),
        *hist.T, hist.sum(axis=1), seen, *results.T,
        col("outpatient_visits"), *chronic.T, chronic.sum(axis=1),
        col("distance_km"), household, household == 1,
        *(q == t for t in Q_FEATURES), q != "unknown",
        np.where(np.isnan(district), tenant_rate, district), tenant_rate,
    ]
    return np.column_stack([np.asarray(c, dtype=np.float32) for c in columns])
