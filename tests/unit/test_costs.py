"""Cost sharing: the README worked example, exact totals, the rule's directions, bad configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from models.configs import (
    ConfigError,
    CostsConfig,
    PlatformConfig,
    Tenant,
    TenantsConfig,
    load_config,
)
from models.costs import UsageRecord, allocate, bill_table, month_of, month_range, whole_yen
from tests.conftest import REPO

HASH = "0" * 64


def _section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("\n## Cost sharing\n", 1)[1].split("\n## ", 1)[0]


def _tables(section: str) -> list[list[list[str]]]:
    """Markdown tables of the section as lists of cell rows (header and separator dropped)."""
    tables, current = [], []
    for line in [*section.splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip("|").split("|")])
        elif current:
            tables.append(current[2:])
            current = []
    return tables


def _yen(cell: str) -> int:
    return int(cell.replace(",", ""))


def _readme_example() -> tuple[CostsConfig, list[Tenant], list[UsageRecord], list[list[str]]]:
    section = _section()
    config = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S)[1])
    usage_rows, bill_rows = _tables(section)
    tenants: dict[str, Tenant] = {}
    usage = []
    for code, name, population, task, rows, images, seconds in usage_rows:
        prior = tenants.get(code)
        tenants[code] = Tenant(code=code, name=name, population=_yen(population),
                               tasks=(*(prior.tasks if prior else ()), task),
                               api_key_sha256=HASH)
        usage.append(UsageRecord(code, task, rows=_yen(rows), images=_yen(images),
                                 compute_seconds=float(seconds)))
    return CostsConfig.model_validate(config), list(tenants.values()), usage, bill_rows


def test_readme_worked_example_matches_the_code() -> None:
    costs, tenants, usage, expected = _readme_example()
    bills = allocate(costs, tenants, usage)
    assert len(expected) == len(bills) == 3
    for code, claim, nudge, allocated, standalone, saving in expected:
        bill = bills[code]
        by_task = {t: x["allocated_yen"] for t, x in bill["by_task"].items()}
        assert by_task.get("claim_screening", 0) == _yen(claim)
        assert by_task.get("checkup_nudge", 0) == _yen(nudge)
        assert (bill["allocated_yen"], bill["standalone_yen"], bill["saving_yen"]) == (
            _yen(allocated), _yen(standalone), _yen(saving))


def _repo_setup() -> tuple[CostsConfig, list[Tenant]]:
    platform = load_config(REPO / "configs" / "platform.yaml", PlatformConfig)
    tenants = load_config(REPO / "configs" / "tenants.yaml", TenantsConfig)
    return platform.costs, list(tenants.tenants)


def test_bills_add_up_to_the_monthly_costs_exactly() -> None:
    costs, tenants = _repo_setup()
    usage = [UsageRecord(t.code, task, requests=3, rows=(i * 7919) % 5000, images=i % 3,
                         compute_seconds=i * 1.37)
             for i, (t, task) in enumerate((t, k) for t in tenants for k in t.tasks)]
    bills = allocate(costs, tenants, usage)
    total = costs.infrastructure_yen + costs.operations_yen + sum(costs.development_yen.values())
    assert sum(b["allocated_yen"] for b in bills.values()) == round(total)
    for b in bills.values():
        assert b["allocated_yen"] == sum(x["allocated_yen"] for x in b["by_task"].values())
        for line in b["by_task"].values():
            parts = ("equal_part_yen", "population_part_yen", "usage_part_yen")
            assert abs(sum(line[p] for p in parts) - line["allocated_yen"]) <= 2


def test_more_usage_costs_more_and_no_usage_splits_by_population() -> None:
    costs, tenants = _repo_setup()
    idle = allocate(costs, tenants, [])
    task = "claim_screening"
    a, b = "402303", "072028"  # 糸島市 103k, 会津若松市 115k
    assert idle[a]["by_task"][task]["allocated_yen"] < idle[b]["by_task"][task]["allocated_yen"]
    busy = allocate(costs, tenants, [UsageRecord(a, task, rows=100_000)])
    assert busy[a]["by_task"][task]["allocated_yen"] > idle[a]["by_task"][task]["allocated_yen"]
    assert busy[b]["by_task"][task]["allocated_yen"] < idle[b]["by_task"][task]["allocated_yen"]
    assert busy[a]["standalone_yen"] == idle[a]["standalone_yen"]  # usage-independent


def test_standalone_includes_full_development_and_a_minimum_platform() -> None:
    costs, tenants = _repo_setup()
    small = next(t for t in tenants if t.code == "382108")  # 伊予市 35k
    bill = allocate(costs, tenants, [])[small.code]
    development = sum(costs.development_yen[t] for t in small.tasks)
    assert bill["standalone_yen"] == round(development + costs.standalone_minimum_platform_yen)
    assert bill["saving_yen"] == bill["standalone_yen"] - bill["allocated_yen"] > 0


def test_duplicate_usage_records_are_an_error() -> None:
    costs, tenants = _repo_setup()
    twice = [UsageRecord("402303", "claim_screening")] * 2
    with pytest.raises(ValueError, match="two records for tenant 402303"):
        allocate(costs, tenants, twice)


def test_whole_yen_keeps_the_total() -> None:
    parts = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3 + 1000}
    assert sum(whole_yen(parts).values()) == round(sum(parts.values()))


def test_months_are_japan_time() -> None:
    start, end = month_range("2026-12")
    assert month_of(start) == "2026-12" and month_of(end) == "2027-01"
    assert month_of(start - 1) == "2026-11"
    assert end - start == 31 * 86400
    with pytest.raises(ValueError, match="expected YYYY-MM"):
        month_range("2026-13")


def test_bill_table_has_japanese_headers() -> None:
    costs, tenants = _repo_setup()
    table = bill_table(allocate(costs, tenants, []))
    headers = {"団体コード", "按分額合計（円）", "単独運用見込（円）", "削減額（円）"}
    assert headers <= set(table.columns)
    assert len(table) == len(tenants)


def test_equal_share_is_the_same_for_every_subscriber_whatever_its_size() -> None:
    costs, tenants = _repo_setup()
    rule = costs.allocation.model_copy(update={"equal_share": 0.3})
    bills = allocate(costs.model_copy(update={"allocation": rule}), tenants, [])
    lines = [b["by_task"]["road_damage"] for b in bills.values() if "road_damage" in b["by_task"]]
    assert len(lines) == 4 and len({x["equal_part_yen"] for x in lines}) == 1
    plain = allocate(costs.model_copy(update={"allocation": rule.model_copy(
        update={"equal_share": 0.0})}), tenants, [])
    # the equal part moves cost from the largest subscriber (千葉市) to the smallest (伊予市)
    assert bills["121002"]["allocated_yen"] < plain["121002"]["allocated_yen"]
    assert bills["382108"]["allocated_yen"] > plain["382108"]["allocated_yen"]


@pytest.mark.parametrize(("snippet", "message"), [
    ("costs:\n  infrastructure_yen: -5\n", "costs.infrastructure_yen"),
    ("costs:\n  development_yen: {claims: 100}\n", "costs.development_yen.claims"),
    ("costs:\n  allocation: {fixed_share: 1.5}\n", "costs.allocation.fixed_share"),
    ("costs:\n  allocation: {equal_share: 0.6, fixed_share: 0.5}\n",
     "equal_share + fixed_share is 1.1; at most 1"),
    ("costs:\n  allocation: {usage_weights: {rows: 0, images: 0, compute_seconds: 0}}\n",
     "at least one usage weight"),
    ("costs:\n  infra_yen: 5\n", "costs.infra_yen"),
    ("operations:\n  audit_retention_days: 0\n", "operations.audit_retention_days"),
])
def test_bad_cost_config_names_file_and_key(tmp_path: Path, snippet: str, message: str) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(snippet, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_config(path, PlatformConfig)
    assert str(path) in str(err.value)
