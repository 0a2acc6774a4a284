"""Deterministic synthetic NHI rosters, randomised reminder campaigns and their oracle.

Calibrated to domain/checkup_nudge.md: municipal NHI attendance ~37%, lowest in large cities,
in people in their 40s and in men; attendance is driven mostly by past attendance. Every
resident has a true attendance probability under every arm (the oracle): a baseline from
habit and circumstances, plus message effects of a few points that differ by person (loss
frame beats gain frame on average, social norms move people in their 40s and irregular
attenders, a pre-filled date and place moves the far-away, the older and 面倒くさがり), with
near-zero effects for sure things and lost causes and a small group hurt by some messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.checkup_nudge.arms import ARMS
from models.checkup_nudge.schema import CAMPAIGN_COLUMNS, QUESTIONNAIRE_TYPES, ROSTER_COLUMNS
from models.pseudonym import pseudonymise

NHI_SHARE = 0.14  # NHI insured aged 40-74 as a share of the population
INTERCEPT = 0.1  # habit logit intercept: ~37% attended in each past year
CAMPAIGN_OFFSET = (0.0, -0.12, 0.06)  # summer, autumn, next summer (cycled)
AGE_BANDS = np.array([40, 45, 50, 55, 60, 65, 70, 75])
AGE_WEIGHTS = np.array([0.07, 0.08, 0.08, 0.09, 0.14, 0.24, 0.30])  # NHI skews to retirees
Q_WEIGHTS = np.array([0.25, 0.30, 0.30, 0.15])  # answered types, when the survey is known
Q_HABIT = np.array([0.30, 0.10, -0.50, -0.20, 0.0])  # habit shift per QUESTIONNAIRE_TYPES


@dataclass(frozen=True)
class GenerateSpec:
    """How much to generate; `total_residents` is split across tenants by population."""

    total_residents: int = 300_000
    min_residents: int = 150
    campaigns: tuple[str, ...] = ("2024-summer", "2024-autumn", "2025-summer")
    nonuniform: tuple[str, ...] = ("2024-autumn",)  # assigned with known unequal probabilities


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def tenant_sizes(tenants: Sequence[tuple[str, int]], spec: GenerateSpec) -> dict[str, int]:
    """Residents per tenant, proportional to population (NHI 40-74 is ~14% of it)."""
    total = sum(pop for _, pop in tenants)
    return {code: max(spec.min_residents, round(spec.total_residents * pop / total))
            for code, pop in tenants}


def _districts(rng: np.random.Generator, code: str, n: int, rural: float) -> dict:
    """District names, popularity, distance scale and a small attendance effect."""
    k = int(np.clip(round(np.sqrt(n) / 6), 4, 30))
    return {
        "names": np.array([f"{code}-D{j + 1:02d}" for j in range(k)]),
        "weight": rng.dirichlet(np.full(k, 2.0)),
        "distance": np.exp(rng.normal(np.log(1.2) + 0.35 * rural, 0.5, k)),
        "effect": rng.normal(0.0, 0.2, k),
    }


def _people(rng: np.random.Generator, n: int, code: str, rural: float) -> dict[str, np.ndarray]:
    """Demographics, claims-derived flags, distance and questionnaire type."""
    band = rng.choice(len(AGE_WEIGHTS), n, p=AGE_WEIGHTS)
    age = rng.integers(AGE_BANDS[band], AGE_BANDS[band + 1])
    sex = np.where(rng.random(n) < 0.47, 1, 2)
    d = _districts(rng, code, n, rural)
    district = rng.choice(len(d["names"]), n, p=d["weight"])
    older = (age - 40) / 34
    hyper = rng.random(n) < 0.12 + 0.38 * older
    diab = rng.random(n) < (0.04 + 0.12 * older) * np.where(sex == 1, 1.5, 0.8)
    dysl = rng.random(n) < 0.10 + 0.20 * older
    n_chronic = hyper.astype(int) + diab + dysl
    known = rng.random(n) < 0.45
    qtype = np.where(known, rng.choice(4, n, p=Q_WEIGHTS), 4)
    return {
        "age": age, "sex": sex, "district": district, "district_names": d["names"],
        "district_effect": d["effect"][district],
        "distance": np.maximum(0.1, np.round(d["distance"][district]
                                             * np.exp(rng.normal(0, 0.45, n)), 1)),
        "household": rng.choice([1, 2, 3, 4, 5, 6], n, p=[0.30, 0.40, 0.15, 0.09, 0.04, 0.02]),
        "hyper": hyper.astype(int), "diab": diab.astype(int), "dysl": dysl.astype(int),
        "visits": rng.poisson(1.5 + 7.0 * n_chronic), "qtype": qtype,
    }


def _habit(rng: np.random.Generator, p: dict[str, np.ndarray], tenant: float) -> np.ndarray:
    """Latent checkup habit (logit scale): who tends to attend, before any reminder."""
    age, male = p["age"], p["sex"] == 1
    mu = (INTERCEPT + tenant + p["district_effect"]
          + np.select([age < 45, age < 50, age < 60, age < 65], [-1.2, -1.0, -0.5, -0.1], 0.3)
          - 0.35 * male - 0.3 * (male & (age < 50))
          - 0.3 * ((p["hyper"] + p["diab"] + p["dysl"]) > 0)  # "通院中なので" skip
          - 0.25 * np.log1p(p["distance"]) - 0.2 * (p["household"] == 1)
          + Q_HABIT[p["qtype"]])
    return mu + rng.normal(0.0, 1.7, len(age))


def _history(rng: np.random.Generator, habit: np.ndarray) -> np.ndarray:
    """Attendance in each of the last 3 years, shape (n, 3), most recent first."""
    noise = rng.normal(0.0, 0.6, (len(habit), 3))
    return (rng.random((len(habit), 3)) < _sigmoid(habit[:, None] + noise)).astype(int)


def _results(rng: np.random.Generator, p: dict[str, np.ndarray], seen: np.ndarray,
             ) -> dict[str, np.ndarray]:
    """Last checkup results, NaN for residents who did not attend in the last 3 years."""
    n, male = len(seen), p["sex"] == 1
    values = {
        "bmi": np.round(rng.normal(23.0 + 1.2 * male, 3.5, n).clip(14, 45), 1),
        "sbp": np.round(rng.normal(118 + 0.45 * (p["age"] - 40) + 12 * p["hyper"], 14, n)
                        .clip(85, 220)),
        "hba1c": np.round(rng.normal(5.5 + 1.3 * p["diab"], 0.45, n).clip(4.2, 13), 1),
        "ldl": np.round(rng.normal(125 + 10 * p["dysl"], 30, n).clip(40, 300)),
    }
    return {k: np.where(seen, v, np.nan) for k, v in values.items()}


def _effects(p: dict[str, np.ndarray], history: np.ndarray) -> np.ndarray:
    """True message effects on the logit scale, shape (n, len(ARMS)); `none` is 0."""
    age, k, q = p["age"], history.sum(axis=1), p["qtype"]
    worrier, lazy, dependent = q == 1, q == 2, q == 3
    irregular = (k == 1) | (k == 2)
    far = np.clip(np.log1p(p["distance"]) - np.log1p(2.0), 0, 1.5)
    eff = np.zeros((len(age), len(ARMS)))
    eff[:, 1] = 0.25
    eff[:, 2] = 0.20 + 0.30 * worrier
    eff[:, 3] = 0.42 - 0.80 * worrier  # loss aversion works, except on worriers (avoidance)
    eff[:, 4] = (0.10 + 0.50 * (age < 50) + 0.40 * irregular + 0.25 * dependent
                 - 0.70 * ((k == 0) & (age >= 70) & (p["household"] == 1)))  # reactance
    eff[:, 5] = (0.10 + 0.45 * far + 0.25 * (age >= 65) + 0.55 * lazy
                 + 0.20 * (p["household"] == 1))
    return eff * np.where(k == 3, 0.3, 1.0)[:, None]  # sure things barely move


def _baseline(habit: np.ndarray, history: np.ndarray) -> np.ndarray:
    """No-reminder logit this year: habit plus the pull of recent attendance (state dependence)."""
    k = history.sum(axis=1)
    return -0.25 + 0.55 * habit + 0.45 * (k - 1.5) + 0.35 * history[:, 0]


def _assignment(k: np.ndarray, uniform: bool) -> np.ndarray:
    """Arm probabilities per resident, shape (n, len(ARMS)).

    The non-uniform campaign sent fewer postcards to regular attenders and more to
    never-attenders: a known, logged policy, so IPW can undo it.
    """
    probs = np.full((len(k), len(ARMS)), 1.0 / len(ARMS))
    if uniform:
        return probs
    none = np.select([k == 3, k == 0], [0.40, 0.10], 1.0 / len(ARMS))
    probs[:, 0] = none
    probs[:, 1:] = ((1.0 - none) / (len(ARMS) - 1))[:, None]
    return probs


def _campaign(rng: np.random.Generator, truth: np.ndarray, probs: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Randomised arm, its probability, and whether the resident attended."""
    n = len(truth)
    u = rng.random(n)
    arm = np.minimum((np.cumsum(probs, axis=1) < u[:, None]).sum(axis=1), len(ARMS) - 1)
    rows = np.arange(n)
    attended = (rng.random(n) < truth[rows, arm]).astype(int)
    return arm, probs[rows, arm], attended


def _roster(code: str, p: dict[str, np.ndarray], history: np.ndarray,
            results: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(p["age"])
    frame = pd.DataFrame({
        "resident_id": [pseudonymise(code, f"resident-{i}") for i in range(n)],
        "tenant_code": code, "age": p["age"], "sex": p["sex"],
        "district": p["district_names"][p["district"]],
        "attended_y1": history[:, 0], "attended_y2": history[:, 1], "attended_y3": history[:, 2],
        **results,
        "outpatient_visits": p["visits"], "has_hypertension": p["hyper"],
        "has_diabetes": p["diab"], "has_dyslipidemia": p["dysl"], "distance_km": p["distance"],
        "household_size": p["household"],
        "questionnaire_type": np.array(QUESTIONNAIRE_TYPES)[p["qtype"]],
    })
    return frame[list(ROSTER_COLUMNS)]


def generate_tenant(code: str, n: int, population: int, spec: GenerateSpec, seed: int,
                    ) -> dict[str, pd.DataFrame]:
    """One tenant's residents, campaign log and oracle, from a generator seeded by its code."""
    rng = np.random.default_rng([seed, int(code)])
    rural = float(np.clip(np.log(200_000 / population), -1.6, 1.8))
    tenant = 0.45 * rural + rng.normal(0.0, 0.08)  # large cities attend least
    p = _people(rng, n, code, rural)
    habit = _habit(rng, p, tenant)
    history = _history(rng, habit)
    residents = _roster(code, p, history, _results(rng, p, np.any(history, axis=1)))
    base, eff = _baseline(habit, history), _effects(p, history)
    logs, oracle = [], []
    for c, name in enumerate(spec.campaigns):
        truth = np.round(_sigmoid(base[:, None] + CAMPAIGN_OFFSET[c % 3] + eff), 5)
        probs = _assignment(history.sum(axis=1), name not in spec.nonuniform)
        arm, prob, attended = _campaign(rng, truth, probs)
        ids = {"resident_id": residents["resident_id"], "tenant_code": code, "campaign": name}
        logs.append(pd.DataFrame({**ids, "arm": np.array(ARMS)[arm],
                                  "assignment_prob": np.round(prob, 6), "attended": attended}))
        oracle.append(pd.DataFrame({**ids, **{f"p_{a}": truth[:, j] for j, a in enumerate(ARMS)}}))
    return {"residents": residents,
            "campaigns": pd.concat(logs, ignore_index=True)[list(CAMPAIGN_COLUMNS)],
            "oracle": pd.concat(oracle, ignore_index=True)}


def generate(tenants: Sequence[tuple[str, int]], spec: GenerateSpec, seed: int,
             ) -> dict[str, dict[str, pd.DataFrame]]:
    """Frames per tenant code; `tenants` is (code, population); order does not matter."""
    sizes = tenant_sizes(tenants, spec)
    return {code: generate_tenant(code, sizes[code], pop, spec, seed) for code, pop in tenants}
