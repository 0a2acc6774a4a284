"""Model input: person features (survey, scales, level) next to plan features, as float32.

Pure numpy/pandas so serving builds the same matrix; a person is repeated once per candidate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.care_plan import survey
from models.care_plan.items import (
    DEMENTIA_SCALE,
    ITEM_COLUMNS,
    ITEMS,
    LEVEL_INDEX,
    PHYSICAL_SCALE,
    SCALE_NAMES,
)
from models.care_plan.plans import Catalogue

BASIC = ("age", "sex", "living_alone", "care_level", "physical_independence",
         "dementia_independence")
BASIC_JA = {"age": "年齢", "sex": "性別", "living_alone": "独居", "care_level": "現在の要介護度",
            **SCALE_NAMES}
DERIVED = ("group1_mean", "group2_mean", "group3_mean", "group4_mean", "group5_mean",
           "medical_count", "care_minutes")
DERIVED_JA = {"group1_mean": "第1群の平均的な状態", "group2_mean": "第2群の平均的な状態",
              "group3_mean": "第3群の平均的な状態", "group4_mean": "第4群の平均的な状態",
              "group5_mean": "第5群の平均的な状態", "medical_count": "特別な医療の数",
              "care_minutes": "基準時間の推計（分）"}
PERSON_FEATURES = (*BASIC, *ITEM_COLUMNS, *DERIVED)
# Inputs a care manager fills in: what occlusion explains (derived features follow them).
INPUT_FIELDS = (*BASIC, *ITEM_COLUMNS)
INPUT_LABELS = {**BASIC_JA, **{i.column: f"{i.code} {i.name}" for i in ITEMS}}
_GROUP_COLS = {g: [k for k, i in enumerate(ITEMS) if i.group == g] for g in range(1, 6)}
_MEDICAL = [k for k, i in enumerate(ITEMS) if i.group == 6]


# Plan x person terms in the shape care managers reason in (自立支援): rehab for those who
# still walk, help against what the person can do, day service for those living alone, short
# stay for families, nursing for medical needs. Trees find these with far fewer splits.
INTERACTIONS = ("rehab_x_walking", "rehab_x_group1", "help_x_group2", "help_excess",
                "day_x_alone", "day_x_group3", "short_stay_x_family", "nursing_x_medical",
                "equipment_x_group1")


def plan_feature_names(cat: Catalogue) -> tuple[str, ...]:
    """Plan features: each service's quantity, units, share of the cap, rehab and help dose,
    then the plan x person interactions."""
    return (*(f"plan_{n}" for n in cat.names), "monthly_units", "cap_share", "rehab_dose",
            "home_help_total", *INTERACTIONS)


def encode_inputs(persons: pd.DataFrame) -> np.ndarray:
    """Validated persons -> raw input fields (n, len(INPUT_FIELDS)) as float."""
    basic = np.stack([
        persons["age"].to_numpy(float), persons["sex"].to_numpy(float),
        persons["living_alone"].to_numpy(float),
        persons["care_level"].map(LEVEL_INDEX).to_numpy(float),
        persons["physical_independence"].map(PHYSICAL_SCALE.index).to_numpy(float),
        persons["dementia_independence"].map(DEMENTIA_SCALE.index).to_numpy(float)], 1)
    return np.hstack([basic, persons[list(ITEM_COLUMNS)].to_numpy(float)])


def person_features(inputs: np.ndarray) -> np.ndarray:
    """Input fields (n, len(INPUT_FIELDS)) -> person features with group summaries."""
    answers = inputs[:, len(BASIC):]
    imp = survey.impairment(answers)
    groups = [imp[:, cols].mean(axis=1) for cols in _GROUP_COLS.values()]
    medical = (answers[:, _MEDICAL] == 2).sum(axis=1)
    # rounded: sums of fractions differ in the last bits between rows, and two float32
    # neighbours on either side of a tree threshold would break ONNX parity
    derived = np.stack([*groups, medical, survey.care_minutes(answers)], 1).round(4)
    return np.hstack([inputs, derived])


def plan_features(cat: Catalogue, Q: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Plan features (m, len(plan_feature_names)) at the persons' care levels."""
    level = np.asarray(level, int)
    units = cat.monthly_units(Q, level)
    s = {n: Q[:, i] for i, n in enumerate(cat.names)}
    return np.column_stack([Q, units, (units / np.maximum(cat.caps[level], 1.0)).round(4),
                            s["day_rehab"] + 0.8 * s["home_rehab"],
                            s["home_help_body"] + s["home_help_life"]])


def interactions(persons: np.ndarray, plans: np.ndarray) -> np.ndarray:
    """INTERACTIONS (n, k) from person features (n or 1 rows) and plan features (n, .)."""
    p = {name: persons[:, PERSON_FEATURES.index(name)] for name in
         ("living_alone", "item_1-7", "group1_mean", "group2_mean", "group3_mean",
          "medical_count")}
    q = {name: plans[:, k] for k, name in enumerate(("day_service", "day_rehab", "body", "life",
                                                     "nursing", "home_rehab", "short_stay",
                                                     "equipment", "units", "cap_share",
                                                     "rehab", "help"))}
    walking = (3.0 - p["item_1-7"]) / 2.0
    return np.column_stack([
        q["rehab"] * walking, q["rehab"] * (1 - p["group1_mean"]),
        q["help"] * (1 - p["group2_mean"]), q["help"] - 7.0 * p["group2_mean"],
        q["day_service"] * p["living_alone"], q["day_service"] * p["group3_mean"],
        q["short_stay"] * (1 - p["living_alone"]), q["nursing"] * p["medical_count"],
        q["equipment"] * p["group1_mean"]]).round(4)


def _rows(cat: Catalogue, persons: np.ndarray, Q: np.ndarray) -> np.ndarray:
    level = persons[:, BASIC.index("care_level")].astype(int)
    plans = plan_features(cat, Q, level)
    return np.hstack([np.broadcast_to(persons, (len(Q), persons.shape[1])), plans,
                      interactions(persons, plans)]).astype(np.float32)


def design(cat: Catalogue, person: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Model rows (m, d) float32: one person's features (row) under each plan in Q."""
    return _rows(cat, np.asarray(person)[None, :], Q)


def design_rows(cat: Catalogue, persons: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Model rows (n, d) float32: person i under plan Q[i]."""
    return _rows(cat, persons, Q)


