"""The review queue cut (models/claim_screening/policy.py): per month, deterministic ties, the
shipped default capacity; and the evaluation's metrics cut the same way."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from models.claim_screening.metrics import capacity_metrics
from models.claim_screening.policy import (
    POLICY_ASSET,
    QueuePolicy,
    queue_size,
    review_queue,
    shipped_policy,
)
from models.claim_screening.task import _metrics


def _claims(priorities: list[float], month: str, tenant: str = "402303",
            prefix: str = "C") -> pd.DataFrame:
    return pd.DataFrame({"claim_id": [f"{prefix}{month}-{i:03d}" for i in range(len(priorities))],
                         "tenant_code": tenant, "service_month": month,
                         "priority": priorities})


def test_cut_is_per_month_with_k_rounded_half_to_even() -> None:
    # January holds all the high priorities: a pooled cut would take only January's claims
    jan, feb = _claims([90.0 - i for i in range(50)], "2026-01"), _claims([1.0] * 30, "2026-02")
    queued = review_queue(pd.concat([jan, feb], ignore_index=True), 0.05)
    per_month = queued.groupby("service_month").size().to_dict()
    assert per_month == {"2026-01": queue_size(50, 0.05), "2026-02": queue_size(30, 0.05)}
    assert per_month == {"2026-01": 2, "2026-02": 2}  # round(2.5) = 2, round(1.5) = 2
    assert queue_size(3, 0.05) == 1  # never an empty queue
    assert list(queued["priority"][:2]) == [90.0, 89.0]


def test_ties_go_to_the_smaller_claim_id_whatever_the_row_order() -> None:
    month = pd.DataFrame({"claim_id": ["B", "A", "D", "C"], "service_month": "2026-01",
                          "priority": [5.0, 5.0, 9.0, 5.0]})
    for frame in (month, month.iloc[::-1], month.sample(frac=1, random_state=3)):
        assert list(review_queue(frame, 0.75)["claim_id"]) == ["D", "A", "B"]


def test_index_and_columns_are_kept_and_bad_capacity_is_an_error() -> None:
    month = _claims([1.0, 3.0, 2.0], "2026-01")
    queued = review_queue(month, 0.5)
    assert list(queued.index) == [1, 2] and list(queued.columns) == list(month.columns)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="capacity"):
            review_queue(month, bad)


def test_evaluation_metrics_use_the_per_office_month_cut() -> None:
    # two tenants' months; the model's priority puts every error of 382108 below 402303's
    a = _claims([100.0 - i for i in range(20)], "2026-01", "402303")
    b = _claims([1.0 - i / 100 for i in range(20)], "2026-01", "382108", prefix="D")
    table = pd.concat([a, b], ignore_index=True)
    table["recoverable"] = 0.0
    table.loc[table["claim_id"].isin(["C2026-01-000", "D2026-01-000"]), "recoverable"] = 10.0
    table["rules_priority"] = table["recoverable"]
    m = capacity_metrics(table, 0.05)
    assert m["reviewed"] == 2 and m["recovered_points"] == 20.0  # one per office, both errors
    overall = _metrics(table, 0.05)
    assert overall["oracle_recovered_points"] == overall["recovered_points"] == 20.0


def test_shipped_policy_reads_policy_json_and_rejects_a_broken_one(tmp_path: Path) -> None:
    assert shipped_policy({POLICY_ASSET: {"capacity": 0.1}}).capacity == 0.1
    for broken, field in (({"capacity": 0}, "capacity"), ({}, "capacity"),
                          ({"capacity": "lots"}, "capacity"), ([0.05], "(root)")):
        with pytest.raises(ValueError, match=re.escape(f"policy.json: {field}: ")):
            shipped_policy({POLICY_ASSET: broken})
    assert json.loads(QueuePolicy(capacity=0.05).model_dump_json()) == {"capacity": 0.05}


def test_old_package_falls_back_to_config_once_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "claim_screening.yaml"
    config.write_text("capacity: 0.08\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert shipped_policy({}, config).capacity == 0.08
    assert "no policy.json" in caplog.text and str(config) in caplog.text
    config.write_text("capacity: 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="capacity"):
        shipped_policy({}, config)
    with pytest.raises(ValueError, match="file not found"):
        shipped_policy({}, tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="re-export"):
        shipped_policy({}, None)
