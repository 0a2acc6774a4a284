"""Suggestions for many persons at once (batch CSV): top plans per person as a staff table."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from models.care_plan.features import design, person_features
from models.care_plan.items import LEVELS
from models.care_plan.plans import Constraints, PlanInputError, candidates, cost, describe
from models.care_plan.recommend import LEVEL_COL, Advisor, pick_diverse, ranking_score

COLUMNS_JA = ("利用者ID", "要介護度", "順位", "サービス内容", "月の単位数", "費用（円）",
              "自己負担1割（円）", "自己負担2割（円）", "自己負担3割（円）", "改善の確率",
              "維持の確率", "悪化の確率", "標準的なプランの改善・維持の確率", "備考")


def _plans_by_level(adv: Advisor, levels: np.ndarray, cons: Constraints,
                    ) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Candidates plus the typical plan (last row) per care level, or why there are none."""
    plans, problems = {}, {}
    for lv in np.unique(levels):
        try:
            plans[int(lv)] = np.vstack([candidates(adv.cat, int(lv), cons), adv.typical(int(lv))])
        except PlanInputError as exc:
            problems[int(lv)] = str(exc)
    return plans, problems


def suggestion_table(adv: Advisor, person_ids: np.ndarray, inputs: np.ndarray,
                     cons: Constraints, top: int = 3, chunk: int = 32,
                     workers: int | None = None) -> pd.DataFrame:
    """One row per person and rank: the plan, units, cost, co-payments and P(change);
    inputs are the persons' input fields (features.encode_inputs). Chunks of persons are
    scored on `workers` threads (default: the CPUs, at most 4): onnxruntime releases the GIL."""
    cons.check(adv.cat)
    feats = person_features(inputs)
    levels = inputs[:, LEVEL_COL].astype(int)
    plans, problems = _plans_by_level(adv, levels, cons)
    ids = np.asarray(person_ids).astype(str)

    def rows_of(start: int) -> list[tuple]:
        span = range(start, min(start + chunk, len(ids)))
        part = [i for i in span if levels[i] in plans]
        out = _chunk(adv, ids, levels, feats, plans, part, top) if part else []
        return out + [(ids[i], LEVELS[levels[i]], None, "", None, None, None, None, None, None,
                       None, None, None, problems[levels[i]]) for i in span
                      if levels[i] in problems]

    with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(rows_of, range(0, len(ids), chunk)))
    return pd.DataFrame([r for part in parts for r in part], columns=list(COLUMNS_JA))


def _chunk(adv: Advisor, ids: np.ndarray, levels: np.ndarray, feats: np.ndarray,
           plans: dict[int, np.ndarray], part: list[int], top: int) -> list[tuple]:
    """Rank every candidate of the chunk's persons in one call, then P(change) of the picked
    and typical plans of all of them in a second one."""
    X = np.vstack([design(adv.cat, feats[i], plans[levels[i]]) for i in part])
    worsen = adv.predict(X, ("change",))["change"][:, 2]
    picked, at = [], 0
    for i in part:
        Q = plans[levels[i]]
        cand = Q[:-1]
        score = ranking_score(worsen[at:at + len(cand)], adv.cat.monthly_units(cand, levels[i]))
        picked.append(np.vstack([cand[pick_diverse(score, cand, top)], Q[-1:]]))
        at += len(Q)
    detail = np.vstack([design(adv.cat, feats[i], q) for i, q in zip(part, picked, strict=True)])
    P = adv.predict(detail, ("change",))["change"]
    rows, at = [], 0
    for i, q in zip(part, picked, strict=True):
        rows.extend(_rows(adv, ids[i], levels[i], q, P[at:at + len(q)]))
        at += len(q)
    return rows


def _rows(adv: Advisor, pid: str, level: int, Q: np.ndarray, P: np.ndarray) -> list[tuple]:
    """Table rows of one person: the picked plans (typical plan last in Q and P)."""
    typical = P[-1]
    rows = []
    for rank, (q, p) in enumerate(zip(Q[:-1], P[:-1], strict=True), start=1):
        c = cost(adv.cat, q[None, :], level)
        text = "、".join(f"{s['name_ja']} {s['text_ja']}" for s in describe(adv.cat, q))
        rows.append((pid, LEVELS[level], rank, text or "サービスなし", c["monthly_units"],
                     c["cost_yen"], *c["copay_yen"].values(), *np.round(p, 4),
                     round(1.0 - float(typical[2]), 4), ""))
    return rows
