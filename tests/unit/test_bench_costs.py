"""bench/costs.py: a tenant's month of requests built from its data files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from bench.costs import MAX_PHOTOS, month_workload


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _data(root: Path) -> Path:
    data = root / "data"
    # two claims in 2026-03 (three lines), one in 2026-02: only the latest month is sent
    _write(data / "claim_screening" / "111111.csv", [
        {"claim_id": "a", "service_month": "2026-03", "line_no": 1},
        {"claim_id": "a", "service_month": "2026-03", "line_no": 2},
        {"claim_id": "b", "service_month": "2026-03", "line_no": 1},
        {"claim_id": "c", "service_month": "2026-02", "line_no": 1}])
    _write(data / "checkup_nudge" / "111111.csv",
           [{"resident_id": f"r{i}", "district": "111111-D01"} for i in range(7)])
    _write(data / "road_damage" / "111111.csv",
           [{"photo_id": f"p{i}", "file": f"images/111111/p{i}.jpg", "rows": 2, "cols": 3}
            for i in range(MAX_PHOTOS * 2 + 5)])
    _write(data / "care_plan" / "111111.csv", [{"person_id": f"x{i}"} for i in range(25)])
    return data


def test_month_workload_per_task(tmp_path: Path) -> None:
    tenants = [SimpleNamespace(code="111111", tasks=["claim_screening", "checkup_nudge",
                                                     "road_damage", "care_plan"])]
    calls = month_workload(_data(tmp_path), tenants)
    by_task: dict[str, list] = {}
    for c in calls:
        by_task.setdefault(c.task, []).append(c)
        assert c.tenant == "111111"

    (claims,) = by_task["claim_screening"]
    assert (claims.rows, claims.params) == (2, {"month": "2026-03"})
    assert b"2026-02" not in claims.csv and claims.csv.count(b"\n") == 4  # header + 3 lines

    (roster,) = by_task["checkup_nudge"]
    assert roster.rows == 7 and roster.path == "/v1/checkup_nudge/outreach"

    photos = by_task["road_damage"]
    assert [c.images for c in photos] == [MAX_PHOTOS, MAX_PHOTOS, 5]
    assert [c.rows for c in photos] == [6 * MAX_PHOTOS, 6 * MAX_PHOTOS, 30]
    assert photos[2].photos[-1] == tmp_path / "data" / "road_damage" / "images/111111/p44.jpg"

    (care,) = by_task["care_plan"]
    assert care.rows == 3  # ceil(25 / 12): one month of yearly assessments


def test_month_workload_only_subscribed_tasks(tmp_path: Path) -> None:
    tenants = [SimpleNamespace(code="111111", tasks=["checkup_nudge"]),
               SimpleNamespace(code="222222", tasks=[])]
    calls = month_workload(_data(tmp_path), tenants)
    assert [(c.tenant, c.task) for c in calls] == [("111111", "checkup_nudge")]
