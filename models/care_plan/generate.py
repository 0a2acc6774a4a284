"""Deterministic synthetic care records with the true effect of any plan (the oracle).

Each person has latent physical and cognitive impairment (a, b; higher = worse) and their own
unobserved yearly decline. Survey answers are ordinal-probit readouts of the latent state on
each item's official scale; the care level comes from the standard-care-time proxy
(models/care_plan/survey.py) with the official thresholds, plus 二次判定 changes of one level.
Care managers choose plans from what they see (frailer clients get more services) with
practice differences between tenants, so plan effects are identifiable given the survey.

Twelve months later the latent state has drifted by the person's decline minus the plan's true
effect (自立支援): rehab helps mobile clients with mild impairment, help beyond need lowers
independence in mild cases, day service helps cognition (most for people living alone), short
stay relieves the family (fewer facility admissions) but not function, home nursing lowers the
risk of death with special medical needs. The new care level follows from the expected care
time of the new state plus noise, so every outcome probability is exact for any plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from models.care_plan import survey
from models.care_plan.items import (
    DEMENTIA_SCALE,
    FACILITY,
    ITEM_COLUMNS,
    ITEMS,
    KEY_ITEMS,
    LEVELS,
    OUTCOMES,
    PHYSICAL_SCALE,
    TIME_THRESHOLDS,
)
from models.care_plan.plans import Catalogue, fit_to_cap, structural_ok
from models.pseudonym import pseudonymise

CARE_SHARE = 0.06  # certified persons living at home as a share of the population
SIGMA_MINUTES = 6.0  # noise of the 12-month care time around its expectation


def _item_model() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Physical and cognitive loadings and probit cut points of every item (the truth)."""
    spec: dict[str, tuple[float, float, tuple[float, ...]]] = {
        "1-3": (1.0, 0.0, (0.9, 2.2)), "1-4": (1.0, 0.0, (0.3, 1.8)),
        "1-5": (1.0, 0.1, (1.3, 2.0, 2.7)), "1-6": (1.1, 0.0, (0.3, 1.9)),
        "1-7": (1.2, 0.0, (-0.3, 1.5)), "1-8": (1.1, 0.0, (-0.5, 1.6)),
        "1-9": (1.0, 0.0, (-1.0, 0.7)), "1-10": (0.9, 0.3, (-0.2, 1.1, 2.6)),
        "1-11": (0.6, 0.4, (-0.4, 1.0)), "1-12": (0.2, 0.2, (1.3, 2.2, 2.9, 3.3)),
        "1-13": (0.2, 0.2, (1.0, 2.0, 2.8, 3.3)),
        "2-1": (1.1, 0.1, (0.5, 1.1, 2.0)), "2-2": (1.1, 0.1, (0.2, 0.9, 1.9)),
        "2-3": (0.6, 0.3, (1.5, 2.7)), "2-4": (0.6, 0.5, (1.0, 1.8, 2.5)),
        "2-5": (0.7, 0.5, (0.6, 1.2, 2.0)), "2-6": (0.7, 0.5, (0.7, 1.3, 2.1)),
        "2-7": (0.5, 0.6, (0.6, 1.9)), "2-8": (0.5, 0.6, (0.7, 2.0)),
        "2-9": (0.5, 0.6, (0.7, 2.1)), "2-10": (0.8, 0.4, (0.3, 0.9, 1.9)),
        "2-11": (0.8, 0.4, (0.2, 0.8, 1.8)), "2-12": (0.8, 0.3, (0.3, 1.6)),
        "3-1": (0.0, 1.0, (1.3, 2.1, 2.9)), "3-2": (0.0, 1.0, (0.5,)),
        "3-3": (0.0, 1.0, (0.9,)), "3-4": (0.0, 1.0, (0.0,)), "3-5": (0.0, 1.0, (2.2,)),
        "3-6": (0.0, 1.0, (0.8,)), "3-7": (0.0, 1.0, (1.3,)),
        "3-8": (0.0, 0.7, (1.7, 2.4)), "3-9": (0.0, 0.7, (1.4, 2.2)),
        "4-12": (0.0, 1.0, (-0.2, 0.7)),
        "5-1": (0.3, 0.9, (0.0, 1.3)), "5-2": (0.3, 0.9, (-0.3, 1.1)),
        "5-3": (0.0, 1.0, (0.0, 1.4, 2.5)), "5-4": (0.0, 0.6, (1.7, 2.5)),
        "5-5": (0.7, 0.6, (-0.8, -0.3, 0.6)), "5-6": (0.6, 0.6, (-0.6, -0.1, 0.8)),
    }
    lp, lc, cuts = [], [], []
    for item in ITEMS:
        if item.code in spec:
            p, c, k = spec[item.code]
        elif item.group == 1:  # 麻痺 / 拘縮 body parts
            p, c, k = 0.6, 0.0, (2.4 if item.code.endswith("-5") else 1.7,)
        elif item.group == 4:
            p, c, k = 0.0, 0.7, (1.1, 1.9)
        else:  # 特別な医療: rare, with severe physical impairment
            p, c, k = 0.5, 0.0, (3.0,)
        lp.append(p)
        lc.append(c)
        cuts.append(np.asarray(k))
    return np.array(lp), np.array(lc), cuts


LOAD_P, LOAD_C, CUTS = _item_model()
PHYS_CUTS = np.array([-1.7, -1.0, -0.4, 0.2, 0.7, 1.2, 1.8, 2.4])  # 障害高齢者 J1 .. C2
DEM_CUTS = np.array([-1.0, -0.35, 0.4, 0.8, 1.3, 1.8, 2.7])  # 認知症 I .. M
KEY_INDEX = [ITEM_COLUMNS.index(f"item_{c}") for c in KEY_ITEMS]


def _at_least(u: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """P(answer >= k + 2) for each cut k: (n, len(cuts))."""
    return ndtr(u[:, None] - cuts[None, :])


def category_probs(u: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """P(answer code = 1..k) for latent scores u (n,) on one item: (n, k)."""
    ge = np.hstack([np.ones((len(u), 1)), _at_least(u, cuts), np.zeros((len(u), 1))])
    return ge[:, :-1] - ge[:, 1:]


def item_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Latent score of every item (n, 74)."""
    return a[:, None] * LOAD_P + b[:, None] * LOAD_C


def draw_answers(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Survey answer codes (n, 74) drawn from the latent state."""
    z = item_scores(a, b) + rng.standard_normal((len(a), len(ITEMS)))
    return np.stack([1 + (z[:, i, None] > CUTS[i]).sum(axis=1) for i in range(len(ITEMS))], 1)


def expected_minutes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """E[care-time proxy | latent state]: exact, item by item."""
    u = item_scores(a, b)
    mean = np.stack([_at_least(u[:, i], CUTS[i]).sum(axis=1) for i in range(len(ITEMS))], 1)
    return survey.BASE_MINUTES + (mean / survey.SPAN) @ survey.WEIGHTS


def p_dementia_iia(b: np.ndarray) -> np.ndarray:
    """P(認知症自立度 IIa or worse | b)."""
    return ndtr(1.1 * b - DEM_CUTS[survey.DEMENTIA_IIA - 1])


@dataclass(frozen=True)
class GenerateSpec:
    """How many persons; `total_persons` is split across tenants by population."""

    total_persons: int = 30_000
    min_persons: int = 1500


@dataclass
class Latent:
    """What the oracle knows about persons: latent state, own decline, and what drives risk."""

    a: np.ndarray
    b: np.ndarray
    ra: np.ndarray
    rb: np.ndarray
    age: np.ndarray
    alone: np.ndarray
    medical: np.ndarray  # count of 特別な医療 items present

    @classmethod
    def from_frames(cls, persons: pd.DataFrame, oracle: pd.DataFrame) -> Latent:
        """Rebuild from the persons and oracle frames (aligned on person_id)."""
        o = oracle.set_index("person_id").loc[persons["person_id"]]
        med = (persons[[c for c in ITEM_COLUMNS if c.startswith("item_6-")]].to_numpy() == 2)
        a, b, ra, rb = (o[k].to_numpy(float) for k in ("a", "b", "ra", "rb"))
        return cls(a, b, ra, rb, persons["age"].to_numpy(float),
                   persons["living_alone"].to_numpy(float), med.sum(axis=1).astype(float))

    def take(self, rows: np.ndarray) -> Latent:
        """The given persons (repeat a row to evaluate it under many plans)."""
        return Latent(*(getattr(self, k)[rows] for k in
                        ("a", "b", "ra", "rb", "age", "alone", "medical")))


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _sat(x: np.ndarray, scale: float) -> np.ndarray:
    """Diminishing returns of a dose."""
    return 1.0 - np.exp(-x / scale)


def effects(lat: Latent, Q: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """True 12-month effects of plans Q (n, services) on the persons (n,): improvement of
    physical and cognitive state (latent units) and shifts of facility and death log-odds."""
    s = {n: Q[:, i] for i, n in enumerate(names)}
    mobile = _sig(3.0 * (0.8 - lat.a))
    mild = _sig(3.0 * (0.9 - lat.a))
    rehab = _sat(s["day_rehab"] + 0.8 * s["home_rehab"], 1.2)
    day = _sat(s["day_service"], 1.5)
    need = 2.0 * np.clip(lat.a + 0.3, 0.0, 3.0)  # home help visits a week the person needs
    help_ = s["home_help_body"] + s["home_help_life"]
    phys = (0.60 * rehab * mobile * mild + 0.10 * rehab * (1 - mobile)
            + 0.08 * day
            - 0.08 * np.maximum(help_ - need, 0.0) * mild
            + 0.15 * s["equipment"] * _sig(3.0 * (lat.a - 0.3)) * _sig(3.0 * (1.8 - lat.a))
            + 0.04 * np.minimum(s["home_help_body"], 4.0) * _sig(2.0 * (lat.a - 1.2))
            - 0.015 * s["short_stay"])
    moderate = _sig(3.0 * (1.6 - lat.b)) * _sig(3.0 * (lat.b + 0.6))
    cog = (0.45 * day * (0.3 + 0.7 * lat.alone) * moderate + 0.08 * rehab
           - 0.01 * s["short_stay"])
    family = 1.0 - lat.alone
    facility = (-0.7 * _sat(s["short_stay"], 4.0) * family
                - 0.05 * np.minimum(s["home_help_body"], 5.0) * _sig(2.0 * (lat.a - 1.0)))
    death = -0.7 * s["home_nursing"] * np.minimum(lat.medical, 2.0) / 2.0
    return {"phys": phys, "cog": cog, "facility": facility, "death": death}


def after_state(lat: Latent, Q: np.ndarray, names: Sequence[str],
                ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Latent state 12 months later under plans Q, and the effects."""
    eff = effects(lat, Q, names)
    return lat.a + lat.ra - eff["phys"], lat.b + lat.rb - eff["cog"], eff


def outcome_probs(lat: Latent, Q: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """True P(outcome) (n, len(OUTCOMES)): care level, facility admission or death."""
    a2, b2, eff = after_state(lat, Q, names)
    p_death = _sig(-3.4 + 0.05 * (lat.age - 82) + 0.7 * a2 + 0.2 * b2
                   + 0.4 * lat.medical + eff["death"])
    p_fac = _sig(-3.0 + 0.4 * a2 + 0.7 * b2 + 0.5 * lat.alone + eff["facility"])
    minutes = expected_minutes(a2, b2)
    edges = np.concatenate([[-np.inf], TIME_THRESHOLDS, [np.inf]])
    band = np.diff(ndtr((edges[None, :] - minutes[:, None]) / SIGMA_MINUTES), axis=1)
    q = p_dementia_iia(b2)
    levels = np.stack([band[:, 0], band[:, 1], band[:, 2] * (1 - q), band[:, 2] * q,
                       *(band[:, k] for k in range(3, 7))], 1)
    home = (1 - p_death) * (1 - p_fac)
    return np.hstack([levels * home[:, None], (p_fac * (1 - p_death))[:, None],
                      p_death[:, None]])


def change_probs(P: np.ndarray, level: np.ndarray) -> np.ndarray:
    """P(improve, maintain, worsen) of the care level from outcome probabilities (n, 10)."""
    idx = np.arange(len(LEVELS))[None, :]
    lv = np.asarray(level)[:, None]
    improve = (P[:, :len(LEVELS)] * (idx < lv)).sum(axis=1)
    maintain = (P[:, :len(LEVELS)] * (idx == lv)).sum(axis=1)
    return np.stack([improve, maintain, 1.0 - improve - maintain], 1)


def item_change_probs(lat: Latent, Q: np.ndarray, names: Sequence[str], old: np.ndarray,
                      ) -> np.ndarray:
    """True P(improve, same, worse) of each key item (n, len(KEY_ITEMS), 3) for persons still
    at home (old: their current answers (n, len(KEY_ITEMS)))."""
    a2, b2, _ = after_state(lat, Q, names)
    u = item_scores(a2, b2)
    out = np.zeros((len(a2), len(KEY_ITEMS), 3))
    for k, i in enumerate(KEY_INDEX):
        P = category_probs(u[:, i], CUTS[i])
        code = np.arange(1, P.shape[1] + 1)[None, :]
        o = old[:, k][:, None]
        out[:, k] = np.stack([(P * (code < o)).sum(1), (P * (code == o)).sum(1),
                              (P * (code > o)).sum(1)], 1)
    return out


def tenant_sizes(tenants: Sequence[tuple[str, int]], spec: GenerateSpec) -> dict[str, int]:
    """Persons per tenant, proportional to population, at least min_persons."""
    total = sum(pop for _, pop in tenants)
    return {code: max(spec.min_persons, round(spec.total_persons * pop / total))
            for code, pop in tenants}


def _latent(rng: np.random.Generator, n: int) -> tuple[Latent, np.ndarray, np.ndarray]:
    """Certified persons: latent state, answers and sex (drawn until enough are certified)."""
    parts: list[tuple] = []
    have = 0
    while have < n:
        m = int(1.6 * (n - have)) + 50
        age = np.clip(65 + rng.gamma(4.0, 4.2, m), 65, 104).round()
        female = rng.random(m) < 0.5 + 0.004 * (age - 65)
        a = rng.normal(-0.05, 0.95, m) + 0.03 * (age - 82)
        b = 0.4 * a + rng.normal(0.0, 0.9, m) + 0.03 * (age - 82)
        answers = draw_answers(rng, a, b)
        keep = survey.care_minutes(answers) >= TIME_THRESHOLDS[0]
        alone = rng.random(m) < 0.22 + 0.15 * female
        ra = rng.normal(0.25 + 0.012 * (age - 82), 0.18)
        rb = rng.normal(0.20 + 0.010 * (age - 82), 0.15)
        parts.append((a, b, ra, rb, age, alone, answers, female, keep))
        have += int(keep.sum())
    cols = [np.concatenate([p[k][p[-1]] for p in parts])[:n] for k in range(8)]
    a, b, ra, rb, age, alone, answers, female = cols
    med = (answers[:, [ITEM_COLUMNS.index(c) for c in ITEM_COLUMNS if "_6-" in c]] == 2)
    return Latent(a, b, ra, rb, age, alone.astype(float), med.sum(axis=1).astype(float)), \
        answers, female


def _scales(rng: np.random.Generator, lat: Latent) -> tuple[np.ndarray, np.ndarray]:
    """障害高齢者 and 認知症 自立度 indexes from the latent state (主治医意見書)."""
    phys = (1.1 * lat.a + rng.standard_normal(len(lat.a)))[:, None] > PHYS_CUTS
    dem = (1.1 * lat.b + rng.standard_normal(len(lat.b)))[:, None] > DEM_CUTS
    return phys.sum(axis=1), dem.sum(axis=1)


# Tenant practice: extra propensity (grid steps) per service, cycled over tenants in file order.
PRACTICE = (
    {"day_rehab": 0.8, "home_rehab": 0.4, "home_help_life": -0.3},  # rehab-minded
    {"day_service": 0.7, "short_stay": 0.4},  # day-service-minded
    {"home_help_body": 0.8, "home_help_life": 0.6, "day_rehab": -0.4},  # home-help-minded
    {"equipment": 0.5, "home_nursing": 0.4},
)


def choose_plans(rng: np.random.Generator, cat: Catalogue, level: np.ndarray,
                 answers: np.ndarray, dementia: np.ndarray, alone: np.ndarray,
                 practice: dict[str, float]) -> np.ndarray:
    """Plans care managers write from what they see: frailer clients get more services,
    living alone more day service and home help, tenants their own habits, plus noise."""
    n = len(level)
    imp = survey.impairment(answers)
    walk = imp[:, ITEM_COLUMNS.index("item_1-7")]
    med = (answers[:, -12:] == 2).sum(axis=1)
    lv = level.astype(float)
    wish = {"day_service": 0.9 + 0.6 * alone + 0.25 * (dementia >= 2) - 0.3 * (lv >= 6),
            "day_rehab": -0.2 + 0.2 * (lv <= 5) - 0.6 * walk,
            "home_rehab": -0.8 + 0.8 * walk,
            "home_help_body": -0.6 + 0.35 * lv,
            "home_help_life": 0.1 + 0.9 * alone + 0.1 * lv,
            "home_nursing": -1.0 + 1.0 * med + 0.1 * lv,
            "short_stay": -1.4 + 0.2 * lv + 0.5 * (1 - alone) * (dementia >= 3),
            "equipment": -0.4 + 0.3 * lv}
    Q = np.zeros((n, len(cat.names)))
    for j, name in enumerate(cat.names):
        z = wish[name] + practice.get(name, 0.0) + rng.normal(0.0, 0.9, n)
        grid = np.asarray(cat.grids[j], float)
        Q[:, j] = grid[np.clip(np.rint(z), 0, len(grid) - 1).astype(int)]
    bad = ~structural_ok(Q, cat.names)
    rehab = [cat.names.index("day_rehab"), cat.names.index("home_rehab")]
    Q[bad & (Q[:, rehab[0]] > 0), rehab[1]] = 0.0  # both rehab kinds: keep day rehab
    Q[~structural_ok(Q, cat.names), cat.names.index("day_service")] = 1.0
    return fit_to_cap(cat, Q, level.astype(int))


def _sample(rng: np.random.Generator, P: np.ndarray) -> np.ndarray:
    """One category per row from probabilities (n, k)."""
    c = P.cumsum(axis=1)
    return np.minimum((rng.random(len(P))[:, None] > c).sum(axis=1), P.shape[1] - 1)


def generate_tenant(code: str, n: int, cat: Catalogue, practice: dict[str, float], seed: int,
                    ) -> dict[str, pd.DataFrame]:
    """One tenant's persons (with the plan they got), 12-month outcomes and oracle."""
    rng = np.random.default_rng([seed, int(code)])
    lat, answers, female = _latent(rng, n)
    phys, dem = _scales(rng, lat)
    level = survey.survey_level(answers, dem)
    review = rng.random(n)  # 二次判定: the committee moves ~10% of cases by one level
    level = np.clip(level + (review < 0.05) - ((review > 0.95) & (level > 1)), 1, 7)
    Q = choose_plans(rng, cat, level, answers, dem, lat.alone, practice)
    P = outcome_probs(lat, Q, cat.names)
    outcome = _sample(rng, P)
    at_home = outcome < FACILITY
    old = answers[:, KEY_INDEX]
    change = item_change_probs(lat, Q, cat.names, old)
    ids = [pseudonymise(code, f"{code}-P{i:06d}") for i in range(n)]
    persons = pd.DataFrame({"person_id": ids, "tenant_code": code, "age": lat.age.astype(int),
                            "sex": np.where(female, 2, 1), "living_alone": lat.alone.astype(int),
                            "care_level": np.array(LEVELS)[level],
                            "physical_independence": np.array(PHYSICAL_SCALE)[phys],
                            "dementia_independence": np.array(DEMENTIA_SCALE)[dem]})
    persons = pd.concat([persons, pd.DataFrame(answers, columns=list(ITEM_COLUMNS)),
                         pd.DataFrame(Q.astype(int), columns=[f"plan_{s}" for s in cat.names])],
                        axis=1)
    outcomes = pd.DataFrame({"person_id": ids, "tenant_code": code,
                             "outcome": np.array(OUTCOMES)[outcome]})
    labels = np.array(["improve", "same", "worse"])
    for k, item in enumerate(KEY_ITEMS):
        drawn = labels[[_sample(rng, change[:, k])]][0]
        outcomes[f"change_{item}"] = np.where(at_home, drawn, "")
    oracle = pd.DataFrame({"person_id": ids, "tenant_code": code, "a": lat.a.round(6),
                           "b": lat.b.round(6), "ra": lat.ra.round(6), "rb": lat.rb.round(6)})
    return {"persons": persons, "outcomes": outcomes, "oracle": oracle}


def generate(tenants: Sequence[tuple[str, int]], spec: GenerateSpec, cat: Catalogue, seed: int,
             ) -> dict[str, dict[str, pd.DataFrame]]:
    """Frames per tenant code: persons, outcomes, oracle."""
    sizes = tenant_sizes(tenants, spec)
    return {code: generate_tenant(code, sizes[code], cat, PRACTICE[k % len(PRACTICE)], seed)
            for k, (code, _) in enumerate(tenants)}

