"""Care plans: the service catalogue, monthly units and cost, and feasible candidate plans.

A plan is a vector of quantities, one per service, each a value of that service's grid
(visits or days per week, days per month, or 0/1 for equipment rental). Pure numpy: training,
the parity gate and serving share it; serving reads the catalogue from plan.json.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from models.care_plan.items import CAPS_2019_10, LEVELS

WEEKS_PER_MONTH = 4.3  # care managers plan weekly; benefit caps are monthly
DAY_SERVICES = ("day_service", "day_rehab")  # days away from home (通所)
REHAB = ("day_rehab", "home_rehab")  # usually one or the other, not both


class PlanInputError(ValueError):
    """A plan or constraint set that cannot be used; the message names the service."""


@dataclass(frozen=True)
class Catalogue:
    """Services in a fixed order with per-level unit costs and the quantity grids."""

    names: tuple[str, ...]
    labels_ja: tuple[str, ...]
    per: tuple[str, ...]  # "week" or "month": what one quantity step means
    unit_ja: tuple[str, ...]  # 日 / 回 / 月
    units: np.ndarray  # (len(LEVELS), services): units per use by care level, 0 for 非該当
    grids: tuple[tuple[int, ...], ...]
    caps: np.ndarray  # (len(LEVELS),) monthly cap in units
    yen_per_unit: float
    max_day_visits: int = 4

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Catalogue:
        """From plan.json / the config's catalogue section."""
        services = d["services"]
        names = tuple(services)
        units = np.zeros((len(LEVELS), len(names)))
        for j, name in enumerate(names):
            units[1:, j] = services[name]["units_by_level"]
        return cls(names, tuple(services[n]["name_ja"] for n in names),
                   tuple(services[n]["per"] for n in names),
                   tuple(services[n]["unit_ja"] for n in names), units,
                   tuple(tuple(int(v) for v in services[n]["grid"]) for n in names),
                   np.asarray(d.get("caps", CAPS_2019_10), float), float(d["yen_per_unit"]),
                   int(d.get("max_day_visits", 4)))

    def monthly_uses(self, Q: np.ndarray) -> np.ndarray:
        """Uses per month (n, services) from plan quantities (weekly ones x 4.3)."""
        weekly = np.array([p == "week" for p in self.per])
        return np.where(weekly, Q * WEEKS_PER_MONTH, Q)

    def monthly_units(self, Q: np.ndarray, level: np.ndarray | int) -> np.ndarray:
        """Units per month of each plan (n,) at the given care level(s)."""
        unit = self.units[np.asarray(level, int)]
        return np.rint((self.monthly_uses(np.atleast_2d(Q)) * unit).sum(axis=1))

    def grid_plans(self) -> np.ndarray:
        """Every plan on the grid that respects the catalogue's structural rules (read-only)."""
        return self._grid

    @cached_property
    def _grid(self) -> np.ndarray:
        Q = np.array(list(itertools.product(*self.grids)), float)
        Q = Q[structural_ok(Q, self.names, self.max_day_visits)]
        Q.flags.writeable = False
        return Q


def structural_ok(Q: np.ndarray, names: Sequence[str], max_day_visits: int = 4) -> np.ndarray:
    """Plans care managers would write: at most `max_day_visits` 通所 days a week, and not both
    通所リハ and 訪問リハ."""
    idx = {n: i for i, n in enumerate(names)}
    days = Q[:, [idx[n] for n in DAY_SERVICES if n in idx]].sum(axis=1)  # 0 without any
    ok = days <= max_day_visits
    if all(n in idx for n in REHAB):
        ok &= (Q[:, idx[REHAB[0]]] == 0) | (Q[:, idx[REHAB[1]]] == 0)
    return ok


@dataclass(frozen=True)
class Constraints:
    """The care manager's limits: services to leave out or require, days per week."""

    exclude: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    max_days_per_week: int | None = None  # applies to 通所 days and to each weekly service

    def check(self, cat: Catalogue) -> None:
        """PlanInputError naming an unknown service or a service both excluded and required."""
        for name in (*self.exclude, *self.require):
            if name not in cat.names:
                raise PlanInputError(f"unknown service {name!r} (サービス名が不明です); "
                                     f"known: {', '.join(cat.names)}")
        both = sorted(set(self.exclude) & set(self.require))
        if both:
            raise PlanInputError(f"service {both[0]!r} is both excluded and required "
                                 "(同じサービスが除外と必須の両方に指定されています)")
        if self.max_days_per_week is not None and not 0 <= self.max_days_per_week <= 7:
            raise PlanInputError("max_days_per_week must be 0-7 (週の利用日数は0〜7日で指定)")


def feasible(cat: Catalogue, Q: np.ndarray, level: int, cons: Constraints) -> np.ndarray:
    """Mask of plans within the level's cap and the constraints."""
    ok = cat.monthly_units(Q, level) <= cat.caps[level]
    for name in cons.exclude:
        ok &= Q[:, cat.names.index(name)] == 0
    for name in cons.require:
        ok &= Q[:, cat.names.index(name)] > 0
    if cons.max_days_per_week is not None:
        weekly = [j for j, p in enumerate(cat.per) if p == "week"]
        ok &= (Q[:, weekly] <= cons.max_days_per_week).all(axis=1)
        days = sum(Q[:, cat.names.index(n)] for n in DAY_SERVICES if n in cat.names)
        ok &= days <= cons.max_days_per_week
    return ok


def candidates(cat: Catalogue, level: int, cons: Constraints) -> np.ndarray:
    """Feasible grid plans for one person; PlanInputError saying why when there is none."""
    cons.check(cat)
    if level <= 0:
        raise PlanInputError(f"care level {LEVELS[level]} has no benefit cap "
                             "(非該当には区分支給限度基準額がありません)")
    Q = cat.grid_plans()
    ok = feasible(cat, Q, level, cons)
    if ok.any():
        return Q[ok]
    cheapest = _cheapest_with(cat, Q, level, cons.require)
    if cheapest > cat.caps[level]:
        raise PlanInputError(
            f"no plan fits the {LEVELS[level]} cap of {int(cat.caps[level]):,} units with "
            f"the required services {', '.join(cons.require)} (the cheapest such plan needs "
            f"{cheapest:,} units) (必須のサービスを含むプランが区分支給限度基準額に収まりません)")
    raise PlanInputError(
        f"the constraints exclude every plan (exclude: {', '.join(cons.exclude) or '-'}; "
        f"require: {', '.join(cons.require) or '-'}; max_days_per_week: "
        f"{cons.max_days_per_week}) (制約の組み合わせを満たすプランがありません)")


def _cheapest_with(cat: Catalogue, Q: np.ndarray, level: int, require: Sequence[str]) -> int:
    """Units of the cheapest grid plan that uses every required service."""
    has = np.ones(len(Q), bool)
    for name in require:
        has &= Q[:, cat.names.index(name)] > 0
    return int(cat.monthly_units(Q[has], level).min()) if has.any() else 0


def fit_to_cap(cat: Catalogue, Q: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Plans cut back step by step (largest-units service first) until within each cap."""
    Q = Q.copy()
    grids = [np.asarray(g, float) for g in cat.grids]
    for _ in range(sum(len(g) for g in grids)):
        over = cat.monthly_units(Q, level) > cat.caps[level]
        if not over.any():
            break
        cost = cat.monthly_uses(Q[over]) * cat.units[level[over]]
        j = cost.argmax(axis=1)
        rows = np.flatnonzero(over)
        for s in np.unique(j):
            r = rows[j == s]
            pos = np.searchsorted(grids[s], Q[r, s])
            Q[r, s] = grids[s][np.maximum(pos - 1, 0)]
    return Q


def cost(cat: Catalogue, Q: np.ndarray, level: int) -> dict[str, Any]:
    """Units, yen and the client's co-payment at 10/20/30% for one plan."""
    units = int(cat.monthly_units(Q, level)[0])
    yen = round(units * cat.yen_per_unit)
    return {"monthly_units": units, "cap_units": int(cat.caps[level]),
            "cost_yen": yen,
            "copay_yen": {f"{p}%": int(np.floor(yen * p / 100)) for p in (10, 20, 30)}}


def describe(cat: Catalogue, q: np.ndarray) -> list[dict[str, Any]]:
    """The services a plan uses, with quantity and Japanese wording (e.g. 週2日)."""
    out = []
    for j, name in enumerate(cat.names):
        if q[j] <= 0:
            continue
        text = (f"週{int(q[j])}{cat.unit_ja[j]}" if cat.per[j] == "week"
                else ("利用" if cat.unit_ja[j] == "月" else f"月{int(q[j])}{cat.unit_ja[j]}"))
        out.append({"service": name, "name_ja": cat.labels_ja[j], "quantity": int(q[j]),
                    "per": cat.per[j], "text_ja": text})
    return out


def limit(cat: Catalogue, j: int) -> int:
    """Largest quantity a plan may give service j: 7 a week, 30 days a month, 1 rental."""
    return 1 if cat.unit_ja[j] == "月" else (7 if cat.per[j] == "week" else 30)


def plan_vector(cat: Catalogue, services: Mapping[str, int]) -> np.ndarray:
    """A plan from {service: quantity}; PlanInputError for unknown services or bad values."""
    q = np.zeros(len(cat.names))
    for name, value in services.items():
        if name not in cat.names:
            raise PlanInputError(f"plan: unknown service {name!r} (サービス名が不明です); "
                                 f"known: {', '.join(cat.names)}")
        j = cat.names.index(name)
        top = limit(cat, j)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise PlanInputError(
                f"plan.{name} ({cat.labels_ja[j]}): expected a whole number 0-{top} per "
                f"{cat.per[j]}, got {value!r} (回数は0〜{top}の整数で指定してください)")
        q[j] = value
    return q
