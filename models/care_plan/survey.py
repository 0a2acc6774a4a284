"""From survey answers to the standard-care-time proxy and the care level it implies.

The real 一次判定 uses a tree-based estimate of 要介護認定等基準時間; kyodo uses a transparent
proxy: a fixed base plus weighted item impairment (0 = code 1, 1 = the last code), in minutes
per day, with the official thresholds. The synthetic generator assigns care levels with it,
and serving uses it to warn when a stated care level contradicts the survey.
"""

from __future__ import annotations

import numpy as np

from models.care_plan.items import DEMENTIA_SCALE, ITEMS, TIME_THRESHOLDS

BASE_MINUTES = 12.0
# Minutes per day added by a fully dependent answer, by item (group default, then overrides).
GROUP_WEIGHT = {1: 4.0, 2: 7.0, 3: 3.0, 4: 1.5, 5: 4.0, 6: 8.0}
ITEM_WEIGHT = {"1-1-1": 1.0, "1-1-2": 1.0, "1-1-3": 1.5, "1-1-4": 1.5, "1-1-5": 0.5,
               "1-2-1": 1.0, "1-2-2": 1.0, "1-2-3": 1.0, "1-2-4": 0.5, "1-7": 7.0, "1-8": 6.0,
               "1-10": 7.0, "1-12": 1.0, "1-13": 1.0, "2-12": 3.0, "3-4": 4.0, "4-12": 3.0}
WEIGHTS = np.array([ITEM_WEIGHT.get(i.code, GROUP_WEIGHT[i.group]) for i in ITEMS])
SPAN = np.array([i.levels - 1 for i in ITEMS], float)
DEMENTIA_IIA = DEMENTIA_SCALE.index("IIa")


def impairment(answers: np.ndarray) -> np.ndarray:
    """Per-item impairment in [0, 1] from answer codes (n, 74)."""
    return (np.asarray(answers, float) - 1.0) / SPAN


def care_minutes(answers: np.ndarray) -> np.ndarray:
    """Standard-care-time proxy in minutes per day (n,)."""
    return BASE_MINUTES + impairment(answers) @ WEIGHTS


def level_from_minutes(minutes: np.ndarray, dementia_iia: np.ndarray) -> np.ndarray:
    """LEVELS index from minutes; 32-50 min is 要介護1 with dementia IIa or worse, else 要支援2."""
    band = np.searchsorted(np.asarray(TIME_THRESHOLDS), np.asarray(minutes), side="right")
    # band: 0 <25, 1 25-32, 2 32-50, 3 50-70, 4 70-90, 5 90-110, 6 >=110
    level = np.where(band >= 3, band + 1, band)
    return np.where((band == 2) & np.asarray(dementia_iia, bool), 3, level)


def survey_level(answers: np.ndarray, dementia: np.ndarray) -> np.ndarray:
    """Care level the survey implies (LEVELS index) from answers and the dementia scale index."""
    return level_from_minutes(care_minutes(answers), np.asarray(dementia) >= DEMENTIA_IIA)
