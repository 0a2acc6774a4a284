"""The served queue is the evaluated queue (issue 18, item 2): one month scored by the champion
goes through /queue over HTTP and through the evaluation's cut, and both queue the same claims;
the default capacity comes from the package's policy.json, read once at load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from models.claim_screening.metrics import capacity_metrics
from models.claim_screening.policy import OFFICE_MONTH, POLICY_ASSET, review_queue
from models.claim_screening.schema import read_claims
from serving.claim_screening import _scored
from serving.runtime import Runtime, load_packaged
from tests.serving.conftest import ITOSHIMA

TASK = "claim_screening"


def _month_csv(root: Path) -> bytes:
    return (root / "data" / TASK / "402303.csv").read_bytes()


@pytest.mark.parametrize("capacity", [0.05, 0.2])
def test_served_queue_equals_the_evaluation_cut(client: TestClient, runtime: Runtime,
                                                trained_root: Path, capacity: float) -> None:
    raw = _month_csv(trained_root)
    served = client.post(f"/v1/{TASK}/queue", params={"capacity": capacity}, content=raw,
                         headers={**ITOSHIMA, "Content-Type": "text/csv"})
    assert served.status_code == 200, served.text
    q = served.json()
    served_ids = [it["claim_id"] for it in q["items"]]

    scored, _ = _scored(runtime.models[TASK], read_claims(raw))
    table = scored.frame.assign(tenant_code="402303")  # one tenant's upload, as served
    evaluated = review_queue(table, capacity, per=OFFICE_MONTH)
    evaluated_ids = list(evaluated.loc[evaluated["service_month"] == q["month"], "claim_id"])
    assert served_ids == evaluated_ids and len(served_ids) == q["queued"]

    # the evaluation's metric over that month counts exactly the served claims
    month = table[table["service_month"] == q["month"]].assign(recoverable=0.0)
    month.loc[month["claim_id"].isin(served_ids), "recoverable"] = 1.0
    m = capacity_metrics(month, capacity)
    assert m["reviewed"] == m["recovered_points"] == len(served_ids)


def test_default_capacity_is_shipped_with_the_model(client: TestClient, runtime: Runtime,
                                                    trained_root: Path) -> None:
    model = runtime.models[TASK]
    assert model.assets[POLICY_ASSET] == {"capacity": 0.05}
    assert model.policy.capacity == 0.05
    q = client.post(f"/v1/{TASK}/queue", content=_month_csv(trained_root),
                    headers={**ITOSHIMA, "Content-Type": "text/csv"}).json()
    assert q["capacity"] == 0.05 and q["queued"] == max(1, round(q["claims_in_month"] * 0.05))


def _package_copy(runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import bentoml

    real = Path(bentoml.models.get(runtime.models[TASK].tag).path)
    copy = tmp_path / "pkg"
    shutil.copytree(real, copy)
    monkeypatch.setattr(bentoml.models, "get", lambda tag: SimpleNamespace(path=str(copy)))
    return copy


def test_broken_policy_fails_the_load(runtime: Runtime, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _package_copy(runtime, tmp_path, monkeypatch)
    (pkg / POLICY_ASSET).write_text(json.dumps({"capacity": 1.5}))
    with pytest.raises(ValueError, match=r"policy\.json: capacity: "):
        load_packaged(TASK, "claim_screening:x", runtime.root)


def test_old_package_without_policy_reads_the_config_once(
        runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _package_copy(runtime, tmp_path, monkeypatch)
    (pkg / POLICY_ASSET).unlink()
    root = tmp_path / "ws"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / f"{TASK}.yaml").write_text("capacity: 0.07\n", encoding="utf-8")
    assert load_packaged(TASK, "claim_screening:x", root).policy.capacity == 0.07
    with pytest.raises(ValueError, match="re-export"):
        load_packaged(TASK, "claim_screening:x")
