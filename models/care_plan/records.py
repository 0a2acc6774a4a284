"""Training records as model input: labels, received plans, model rows, typical plans."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.care_plan.features import design_rows, encode_inputs, person_features
from models.care_plan.items import ITEM_CHANGE, KEY_ITEMS, LEVELS, OUTCOMES
from models.care_plan.plans import Catalogue, fit_to_cap, structural_ok


def labels(persons: pd.DataFrame, outcomes: pd.DataFrame,
           ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Change (0 improve, 1 maintain, 2 worsen), outcome index and key-item change (-1: none)."""
    out = outcomes.set_index("person_id").loc[persons["person_id"]]
    outcome = out["outcome"].map(OUTCOMES.index).to_numpy(int)
    level = persons["care_level"].map(LEVELS.index).to_numpy(int)
    change = np.where(outcome >= len(LEVELS), 2, np.sign(outcome - level) + 1)
    items = {c: out[f"change_{c}"].map({k: i for i, k in enumerate(ITEM_CHANGE)})
             .fillna(-1).to_numpy(int) for c in KEY_ITEMS}
    return change.astype(int), outcome, items


def plan_matrix(persons: pd.DataFrame, cat: Catalogue) -> np.ndarray:
    """The plans persons received (n, services) in catalogue order."""
    return persons[[f"plan_{n}" for n in cat.names]].to_numpy(float)


def rows(persons: pd.DataFrame, cat: Catalogue) -> np.ndarray:
    """Model rows for persons under the plans they received."""
    return design_rows(cat, person_features(encode_inputs(persons)), plan_matrix(persons, cat))


def _nearest(grid: Sequence[float], v: float) -> float:
    """The grid value closest to v (the smaller one on a tie)."""
    return min(grid, key=lambda x: (abs(x - v), x))


def typical_plans(cat: Catalogue, persons: pd.DataFrame) -> dict[str, list[int]]:
    """Per care level: each service's median quantity in training, on the grid, within cap."""
    Q = plan_matrix(persons, cat)
    level = persons["care_level"].map(LEVELS.index).to_numpy(int)
    out = {}
    for lv in range(1, len(LEVELS)):
        m = level == lv
        med = np.median(Q[m], axis=0) if m.any() else np.zeros(len(cat.names))
        q = np.array([_nearest(g, v) for g, v in zip(cat.grids, med, strict=True)],
                     float)[None, :]
        if not structural_ok(q, cat.names, cat.max_day_visits)[0]:
            q[0, cat.names.index("home_rehab")] = 0.0
        out[str(lv)] = [int(v) for v in fit_to_cap(cat, q, np.array([lv]))[0]]
    return out
