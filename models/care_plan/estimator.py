"""The conditional outcome model (person x plan -> outcome distribution) on LightGBM.

Named boosters, one ONNX graph each: 'change' (improve / maintain / worsen of the care level;
worsen includes facility admission and death; it ranks plans: on held-out synthetic persons it
ranks better than a binary worsen model of the same or more rounds), 'outcome' (care level,
facility admission or death after 12 months) and 'item<code>' (improve / same / worse of each
key item, persons still at home).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models import lgbm
from models.care_plan.items import CHANGE, ITEM_CHANGE, KEY_ITEMS, OUTCOMES

COMMON: dict[str, Any] = {"n_jobs": 2, "verbose": -1, "deterministic": True,
                          "force_row_wise": True}
# Graph name -> number of classes of its full output.
WIDTH = {"change": len(CHANGE), "outcome": len(OUTCOMES),
         **{f"item{c.replace('-', '_')}": len(ITEM_CHANGE) for c in KEY_ITEMS}}


def item_graph(code: str) -> str:
    """Graph name of a key item: '1-7' -> 'item1_7' (ONNX-friendly)."""
    return f"item{code.replace('-', '_')}"


def widen(P: np.ndarray, classes: Sequence[int], width: int) -> np.ndarray:
    """Probabilities over the classes a booster saw -> over every class (absent ones 0)."""
    out = np.zeros((len(P), width))
    out[:, list(classes)] = P
    return out


@dataclass
class CareModel:
    """Fitted boosters, the classes each saw, and plan.json (everything serving needs)."""

    boosters: dict[str, Any]
    classes: dict[str, list[int]]
    assets: dict[str, Any] = field(default_factory=dict)

    def predict(self, X: np.ndarray, graphs: Sequence[str] = ("change",),
                ) -> dict[str, np.ndarray]:
        """Full-width probabilities per requested graph."""
        return {g: widen(self.boosters[g].predict_proba(X), self.classes[g], WIDTH[g])
                for g in graphs}


def fit_booster(X: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int,
                ) -> tuple[Any, list[int]]:
    """A LightGBM classifier on labels y (class indexes) and the classes it saw."""
    import lightgbm as lgb

    classes = sorted(int(c) for c in np.unique(y))
    if len(classes) < 2:
        raise ValueError(f"only one outcome class ({classes}) in the training rows")
    remap = {c: k for k, c in enumerate(classes)}
    clf = lgb.LGBMClassifier(**params, **COMMON, random_state=seed)
    clf = lgbm.fit(clf, X, np.array([remap[int(v)] for v in y]))  # here or on a Dask cluster
    return clf, classes


def fit_model(X: np.ndarray, change: np.ndarray, outcome: np.ndarray,
              items: dict[str, np.ndarray], params: dict[str, Any], seed: int) -> CareModel:
    """Every booster; item labels are -1 where the person left home (no survey)."""
    boosters, classes = {}, {}
    for name, y, rows in (("change", change, None), ("outcome", outcome, None),
                          *((item_graph(c), items[c], items[c] >= 0) for c in KEY_ITEMS)):
        Xr, yr = (X, y) if rows is None else (X[rows], y[rows])
        boosters[name], classes[name] = fit_booster(Xr, yr, params, seed)
    return CareModel(boosters, classes)
