"""Plan recommendation: score every feasible plan in one batched call, explain the top three.

No lightgbm here: serving runs this with the ONNX session (OnnxPredictor); training and
evaluation with the native model's predict. Both take model rows and graph names and return
full-width probabilities per graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.care_plan import survey
from models.care_plan.estimator import WIDTH, item_graph, widen
from models.care_plan.features import (
    BASIC,
    INPUT_FIELDS,
    INPUT_LABELS,
    design,
    design_rows,
    person_features,
)
from models.care_plan.items import (
    CHANGE,
    DEMENTIA_SCALE,
    ITEM_BY_CODE,
    ITEM_CHANGE,
    KEY_ITEMS,
    LEVELS,
    OUTCOMES,
    PHYSICAL_SCALE,
)
from models.care_plan.plans import Catalogue, Constraints, candidates, cost, describe

# model rows (n, d) float32, graph names -> full-width probabilities per graph
Predict = Callable[[np.ndarray, Sequence[str]], dict[str, np.ndarray]]
ALL_GRAPHS = ("change", "outcome", *(item_graph(c) for c in KEY_ITEMS))
TAGS = ((0.30, "大"), (0.10, "中"), (0.0, "小"))  # |change in log-odds of worsening|
LEVEL_COL = BASIC.index("care_level")
NOTE_JA = ("予測は過去の介護記録（観察データ）から学習したもので、因果効果を保証するものでは"
           "ありません。確率には不確かさがあります。計画の最終判断はケアマネジャーと本人・家族が"
           "行ってください。")
NOTE_EN = ("Predictions are learned from observational care records, not from randomised "
           "trials: they are associations adjusted for the survey, and uncertain. The care "
           "manager, the client and the family decide the plan.")


@dataclass
class OnnxPredictor:
    """Predict backed by the combined ONNX model (one '<graph>_probabilities' per graph) and,
    for ranking many candidates, the change graph alone (`rank`, from rank.onnx)."""

    session: Any  # onnxruntime.InferenceSession
    classes: dict[str, list[int]]
    rank: Any = None  # onnxruntime.InferenceSession of rank.onnx, if packaged

    def __call__(self, X: np.ndarray, graphs: Sequence[str]) -> dict[str, np.ndarray]:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if tuple(graphs) == ("change",) and self.rank is not None:
            P = self.rank.run(["probabilities"], {"input": X})[0]
            return {"change": widen(np.asarray(P), self.classes["change"], WIDTH["change"])}
        raw = self.session.run([f"{g}_probabilities" for g in graphs], {"input": X})
        return {g: widen(np.asarray(r), self.classes[g], WIDTH[g])
                for g, r in zip(graphs, raw, strict=True)}


def pick_diverse(score: np.ndarray, Q: np.ndarray, k: int, min_diff: int = 2) -> list[int]:
    """Indexes of the k best plans, each differing from those picked in >= min_diff services
    (fewer differences allowed when too few plans remain)."""
    order = np.argsort(-score, kind="stable")
    chosen: list[int] = []
    for need in (min_diff, 1):
        for i in order:
            if len(chosen) == k:
                return chosen
            if i not in chosen and all((Q[i] != Q[j]).sum() >= need for j in chosen):
                chosen.append(int(i))
    return chosen


def ranking_score(p_worsen: np.ndarray, units: np.ndarray) -> np.ndarray:
    """P(improve or maintain), ties broken towards the cheaper plan."""
    return 1.0 - p_worsen - 1e-9 * units


def survey_warning(inputs: np.ndarray) -> dict[str, Any] | None:
    """A warning when the stated care level is 2+ levels from the one the survey implies."""
    answers = inputs[:, len(BASIC):]
    dementia = inputs[:, BASIC.index("dementia_independence")]
    implied = int(survey.survey_level(answers, dementia)[0])
    stated = int(inputs[0, LEVEL_COL])
    if abs(implied - stated) < 2:
        return None
    minutes = float(survey.care_minutes(answers)[0])
    return {"field": "care_level", "stated": LEVELS[stated], "survey_implies": LEVELS[implied],
            "message_ja": f"要介護度（{LEVELS[stated]}）が調査結果から推計される区分"
                          f"（{LEVELS[implied]}、基準時間の推計 {minutes:.0f} 分）と"
                          "大きく異なります。入力を確認してください。",
            "message_en": f"care_level {LEVELS[stated]} differs from the {LEVELS[implied]} the "
                          f"survey implies (proxy care time {minutes:.0f} min/day); please check "
                          "the input."}


@dataclass
class Advisor:
    """Suggest and evaluate plans for one person with a predictor and plan.json."""

    cat: Catalogue
    assets: dict[str, Any]
    predict: Predict
    seen: dict[int, np.ndarray] = field(default_factory=dict)

    def typical(self, level: int) -> np.ndarray:
        """The typical plan for the care level (from training data)."""
        return np.asarray(self.assets["typical_plans"][str(level)], float)

    def suggest(self, inputs: np.ndarray, cons: Constraints, top: int = 3) -> dict[str, Any]:
        """Top plans by predicted P(improve or maintain), with the typical plan alongside."""
        level = int(inputs[0, LEVEL_COL])
        Q = candidates(self.cat, level, cons)
        person = person_features(inputs)[0]
        P = self.predict(design(self.cat, person, Q), ("change",))["change"]
        score = ranking_score(P[:, 2], self.cat.monthly_units(Q, level))
        picked = Q[pick_diverse(score, Q, top)]
        typical = self.typical(level)[None, :]
        plans = self.details(inputs, np.vstack([picked, typical]))
        base = plans[-1]
        for rank, plan in enumerate(plans[:-1], start=1):
            plan["rank"] = rank
            plan["vs_typical"] = round(plan["p_improve_or_maintain"]
                                       - base["p_improve_or_maintain"], 4)
        return {"care_level": LEVELS[level], "candidates_scored": len(Q),
                "plans": plans[:-1], "typical_plan": base}

    def details(self, inputs: np.ndarray, Q: np.ndarray) -> list[dict[str, Any]]:
        """Everything shown for each plan: outcomes, key items, cost, reasons, support."""
        level = int(inputs[0, LEVEL_COL])
        person = person_features(inputs)[0]
        out = self.predict(design(self.cat, person, Q), ALL_GRAPHS)
        reasons = self.reasons(inputs, Q, out["change"][:, 2])
        return [self._plan(Q[i], level, {g: p[i] for g, p in out.items()}, reasons[i])
                for i in range(len(Q))]

    def _plan(self, q: np.ndarray, level: int, p: dict[str, np.ndarray],
              reasons: list[dict[str, Any]]) -> dict[str, Any]:
        change = {c: round(float(v), 4) for c, v in zip(CHANGE, p["change"], strict=True)}
        return {
            "services": describe(self.cat, q),
            "plan": {n: int(v) for n, v in zip(self.cat.names, q, strict=True)},
            **cost(self.cat, q[None, :], level),
            **{f"p_{k}": v for k, v in change.items()},
            "p_improve_or_maintain": round(1.0 - float(p["change"][2]), 4),
            "care_level_distribution": {o: round(float(v), 4)
                                        for o, v in zip(OUTCOMES, p["outcome"], strict=True)},
            "key_items": [{"code": c, "name": ITEM_BY_CODE[c].name,
                           **{k: round(float(v), 4) for k, v in
                              zip(ITEM_CHANGE, p[item_graph(c)], strict=True)}}
                          for c in KEY_ITEMS],
            "reasons": reasons,
            "uncertainty": self.uncertainty(q, level, float(p["change"][2])),
        }

    def reasons(self, inputs: np.ndarray, Q: np.ndarray, p_worsen: np.ndarray,
                top: int = 10) -> list[list[dict[str, Any]]]:
        """Per plan, up to `top` inputs that move the risk of worsening most (occlusion: each
        input set to the training median, log-odds difference), tagged 大/中/小."""
        fields = len(INPUT_FIELDS)
        ref = np.asarray(self.assets["input_medians"], float)
        variants = np.repeat(inputs, fields, axis=0)
        variants[np.arange(fields), np.arange(fields)] = ref
        keep = variants[np.arange(fields), np.arange(fields)] != inputs[0]
        keep[LEVEL_COL] = False  # the level is the outcome's reference point, not a reason
        rows = np.flatnonzero(keep)
        persons = person_features(variants[rows])
        X = design_rows(self.cat, np.tile(persons, (len(Q), 1)), np.repeat(Q, len(rows), 0))
        occluded = self.predict(X, ("change",))["change"][:, 2].reshape(len(Q), len(rows))
        delta = _logit(p_worsen)[:, None] - _logit(occluded)
        return [[self._reason(rows[j], delta[i, j], inputs[0, rows[j]])
                 for j in np.argsort(-np.abs(delta[i]))[:top] if abs(delta[i, j]) > 1e-4]
                for i in range(len(Q))]

    def _reason(self, field: int, delta: float, value: float) -> dict[str, Any]:
        name = INPUT_FIELDS[field]
        tag = next(t for bound, t in TAGS if abs(delta) >= bound)
        return {"field": name.removeprefix("item_"), "label_ja": INPUT_LABELS[name],
                "answer": _answer_label(name, value), "influence": tag,
                "direction": "raises_risk" if delta > 0 else "lowers_risk",
                "log_odds": round(float(delta), 4)}

    def _seen(self, level: int) -> np.ndarray:
        """Training plans at a care level, converted from plan.json once."""
        if level not in self.seen:
            rows = self.assets["training_plans"].get(str(level), [])
            self.seen[level] = np.asarray(rows, float).reshape(-1, len(self.cat.names))
        return self.seen[level]

    def uncertainty(self, q: np.ndarray, level: int, p_worsen: float) -> dict[str, Any]:
        """How many similar cases training had and how well held-out risks were calibrated."""
        seen = self._seen(level)
        similar = int(((seen != q).sum(axis=1) <= 1).sum()) if len(seen) else 0
        bins = self.assets["reliability"]
        b = min(int(p_worsen * len(bins)), len(bins) - 1)
        out = {"similar_cases": similar, "heldout_bin": bins[b]}
        if similar < 30:
            out["warning_ja"] = ("学習データに似た事例が少ないため、"
                                 "予測の不確かさが大きいプランです。")
            out["warning_en"] = "few similar cases in the training data: very uncertain"
        return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _answer_label(field: str, value: float) -> str:
    v = int(value)
    if field.startswith("item_"):
        return ITEM_BY_CODE[field.removeprefix("item_")].choices[v - 1]
    labels = {"physical_independence": PHYSICAL_SCALE, "dementia_independence": DEMENTIA_SCALE,
              "care_level": LEVELS, "sex": ("", "男", "女"), "living_alone": ("同居", "独居")}
    return labels[field][v] if field in labels else f"{v}歳"


def best_plans(cat: Catalogue, persons: np.ndarray, grid: np.ndarray, predict: Predict,
               chunk: int = 64) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For many persons (feature rows): their feasible grid plans and the predicted
    P(worsen) of each, scored chunk by chunk in batched calls (evaluation)."""
    levels = persons[:, LEVEL_COL].astype(int)
    plans, probs = [], []
    for start in range(0, len(persons), chunk):
        part = range(start, min(start + chunk, len(persons)))
        masks = [cat.monthly_units(grid, levels[i]) <= cat.caps[levels[i]] for i in part]
        X = np.vstack([design(cat, persons[i], grid[m]) for i, m in zip(part, masks, strict=True)])
        P = predict(X, ("change",))["change"][:, 2]
        at = 0
        for m in masks:
            plans.append(grid[m])
            probs.append(P[at:at + m.sum()])
            at += int(m.sum())
    return plans, probs
