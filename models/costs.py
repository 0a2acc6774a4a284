"""Monthly cost sharing: the platform's shared costs split among tenants by population and usage.

Pure functions: metered usage records + the cost config + the tenants -> one bill per tenant.
The rule (README, "Cost sharing"):

1. Platform costs (infrastructure + operations) are split among tasks by their number of
   subscribing tenants; each task's pool is that share plus its development amortisation.
2. `equal_share` of a task's pool is split equally among its subscribers (均等割),
   `fixed_share` by population (人口割), the rest by metered cost units (rows, images, compute
   seconds, weighted; 利用量割); a task nobody used in the month splits its usage part by
   population too.
3. The stand-alone estimate is the same service run for one municipality alone: the full
   development amortisation of each of its tasks plus its own platform (its population share
   of ours, but never less than the smallest own deployment).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import pandas as pd

from models.configs import CostsConfig, Tenant, UsageWeights

JST = timezone(timedelta(hours=9))  # months are municipal (Japan) months; Japan has no DST
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class UsageRecord:
    """Metered usage of one tenant for one task over the billing month."""

    tenant: str
    task: str
    requests: int = 0
    rows: int = 0
    images: int = 0
    compute_seconds: float = 0.0


def month_range(month: str) -> tuple[float, float]:
    """[start, end) of a YYYY-MM month in Japan time, as Unix seconds; ValueError if malformed."""
    match = MONTH.match(month or "")
    if not match:
        raise ValueError(f"month: expected YYYY-MM (e.g. 2026-11), got {month!r}")
    year, mon = int(match[1]), int(match[2])
    start = datetime(year, mon, 1, tzinfo=JST)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=JST)
    return start.timestamp(), end.timestamp()


def month_of(ts: float) -> str:
    """The YYYY-MM (Japan time) a Unix timestamp falls in."""
    return datetime.fromtimestamp(ts, JST).strftime("%Y-%m")


def cost_units(u: UsageRecord, w: UsageWeights) -> float:
    """Weighted cost units of a usage record."""
    return w.rows * u.rows + w.images * u.images + w.compute_seconds * u.compute_seconds


def task_pools(costs: CostsConfig, tenants: Sequence[Tenant]) -> dict[str, float]:
    """Each subscribed task's monthly pool in yen: development + its platform share."""
    subs = {t: sum(t in x.tasks for x in tenants) for x in tenants for t in x.tasks}
    total = sum(subs.values())
    platform = costs.infrastructure_yen + costs.operations_yen
    return {task: costs.development_yen.get(task, 0.0) + platform * n / total
            for task, n in sorted(subs.items())}


def _shares(weights: dict[str, float]) -> dict[str, float]:
    """Weights normalised to sum 1 (equal shares when they are all zero)."""
    total = sum(weights.values())
    if total <= 0:
        return {k: 1 / len(weights) for k in weights}
    return {k: v / total for k, v in weights.items()}


def whole_yen(amounts: dict[str, float]) -> dict[str, int]:
    """Round to whole yen keeping the rounded total (largest remainder), so bills add up."""
    target = round(sum(amounts.values()))
    floors = {k: math.floor(v) for k, v in amounts.items()}
    short = target - sum(floors.values())
    by_remainder = sorted(amounts, key=lambda k: (floors[k] - amounts[k], k))
    for k in by_remainder[:short]:
        floors[k] += 1
    return floors


def _split_task(task: str, pool: float, subscribers: list[Tenant],
                usage: dict[tuple[str, str], UsageRecord], costs: CostsConfig,
                ) -> dict[str, dict[str, Any]]:
    """One task's pool split among its subscribers: equal + population + usage parts."""
    rule = costs.allocation
    pop = _shares({t.code: float(t.population) for t in subscribers})
    recs = {t.code: usage.get((t.code, task), UsageRecord(t.code, task)) for t in subscribers}
    units = {c: cost_units(u, rule.usage_weights) for c, u in recs.items()}
    used = _shares(units) if sum(units.values()) > 0 else pop
    equal, fixed = pool * rule.equal_share / len(pop), pool * rule.fixed_share
    variable = pool - equal * len(pop) - fixed
    exact = {c: equal + fixed * pop[c] + variable * used[c] for c in pop}
    billed = whole_yen(exact)
    return {c: {"allocated_yen": billed[c], "equal_part_yen": round(equal),
                "population_part_yen": round(fixed * pop[c]),
                "usage_part_yen": round(variable * used[c]), "cost_units": round(units[c], 3),
                "requests": recs[c].requests, "rows": recs[c].rows, "images": recs[c].images,
                "compute_seconds": round(recs[c].compute_seconds, 3)} for c in pop}


def standalone_yen(costs: CostsConfig, tenant: Tenant, total_population: int) -> int:
    """The tenant's monthly cost running the same service alone."""
    platform = costs.infrastructure_yen + costs.operations_yen
    own = max(costs.standalone_minimum_platform_yen,
              platform * tenant.population / total_population)
    return round(own + sum(costs.development_yen.get(t, 0.0) for t in tenant.tasks))


def allocate(costs: CostsConfig, tenants: Sequence[Tenant],
             usage: Iterable[UsageRecord]) -> dict[str, dict[str, Any]]:
    """Every subscribing tenant's bill for the month, keyed by municipality code."""
    tenants = [t for t in tenants if t.tasks]
    by_key: dict[tuple[str, str], UsageRecord] = {}
    for u in usage:
        if (u.tenant, u.task) in by_key:
            raise ValueError(f"usage: two records for tenant {u.tenant} task {u.task}")
        by_key[(u.tenant, u.task)] = u
    bills: dict[str, dict[str, Any]] = {
        t.code: {"name": t.name, "population": t.population, "by_task": {}} for t in tenants}
    for task, pool in task_pools(costs, tenants).items():
        subscribers = [t for t in tenants if task in t.tasks]
        for code, line in _split_task(task, pool, subscribers, by_key, costs).items():
            bills[code]["by_task"][task] = line
    population = sum(t.population for t in tenants)
    for t in tenants:
        bill = bills[t.code]
        bill["allocated_yen"] = sum(x["allocated_yen"] for x in bill["by_task"].values())
        bill["standalone_yen"] = standalone_yen(costs, t, population)
        bill["saving_yen"] = bill["standalone_yen"] - bill["allocated_yen"]
        bill["allocated_share_of_standalone"] = round(
            bill["allocated_yen"] / bill["standalone_yen"], 4) if bill["standalone_yen"] else None
    return bills


class UsageSource(Protocol):
    """Where metered usage is read from (serving.store.Store)."""

    def usage_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Billable usage per tenant and task with start <= ts < end (UsageRecord fields)."""
        ...


def monthly_bills(store: UsageSource, costs: CostsConfig, tenants: Sequence[Tenant],
                  month: str) -> dict[str, Any]:
    """Every tenant's bill for a month (YYYY-MM, Japan time) from the metered usage in the
    store: {month, currency, bills (allocate), pools_yen, total_yen, standalone_total_yen}.
    Raises ValueError for a malformed month."""
    start, end = month_range(month)
    usage = [UsageRecord(**u) for u in store.usage_between(start, end)]
    # usage of a task the tenant no longer subscribes to is not billed (no pool to share)
    known = {(t.code, task) for t in tenants for task in t.tasks}
    bills = allocate(costs, tenants, [u for u in usage if (u.tenant, u.task) in known])
    pools = task_pools(costs, [t for t in tenants if t.tasks])
    return {"month": month, "currency": "JPY", "bills": bills,
            "pools_yen": {k: round(v) for k, v in pools.items()},
            "total_yen": sum(b["allocated_yen"] for b in bills.values()),
            "standalone_total_yen": sum(b["standalone_yen"] for b in bills.values())}


def bill_table(bills: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per tenant with Japanese headers (CSV / Excel downloads, `kyodo costs`)."""
    tasks = sorted({task for b in bills.values() for task in b["by_task"]})
    rows = []
    for code, b in bills.items():
        row = {"団体コード": code, "団体名": b["name"], "人口": b["population"]}
        for task in tasks:
            row[f"{task} 按分額（円）"] = b["by_task"].get(task, {}).get("allocated_yen", 0)
        row.update({"按分額合計（円）": b["allocated_yen"],
                    "単独運用見込（円）": b["standalone_yen"], "削減額（円）": b["saving_yen"],
                    "単独比": b["allocated_share_of_standalone"]})
        rows.append(row)
    return pd.DataFrame(rows)
