"""care_plan endpoints: suggest, predict, items, batch, and bad input -> 4xx naming the item."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.care_plan import EXAMPLE_PERSON

TOYOHASHI = {"Authorization": "Bearer kyodo-demo-232017"}
NAHA = {"Authorization": "Bearer kyodo-demo-472018"}  # does not subscribe to care_plan
URL = "/v1/care_plan"


@pytest.fixture(scope="module")
def care_client(care_root: Path) -> Iterator[TestClient]:
    """The app bound to a runtime of the care_plan workspace."""
    from serving.api import app
    from serving.deps import get_runtime
    from serving.runtime import Runtime

    rt = Runtime.load(care_root)
    previous = app.dependency_overrides.get(get_runtime)
    app.dependency_overrides[get_runtime] = lambda: rt
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    if previous is not None:
        app.dependency_overrides[get_runtime] = previous


def person(**changes: object) -> dict:
    p = copy.deepcopy(EXAMPLE_PERSON)
    items = changes.pop("items", {})
    p["items"].update(items)
    p.update(changes)
    return p


def test_suggest_returns_three_plans_within_the_cap(care_client: TestClient) -> None:
    r = care_client.post(f"{URL}/suggest", headers=TOYOHASHI,
                         json={"person": EXAMPLE_PERSON, "constraints": {}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] and body["person_id"] == "K-0001"
    assert "観察データ" in body["note_ja"] and "observational" in body["note_en"]
    assert body["candidates_scored"] >= 200 and body["warnings"] == []
    plans = body["plans"]
    assert [p["rank"] for p in plans] == [1, 2, 3]
    for p in plans:
        assert p["monthly_units"] <= p["cap_units"] == 16765
        assert p["cost_yen"] == p["monthly_units"] * 10
        assert abs(p["p_improve"] + p["p_maintain"] + p["p_worsen"] - 1) < 1e-3
        assert abs(sum(p["care_level_distribution"].values()) - 1) < 1e-3
        assert [k["code"] for k in p["key_items"]] == ["1-7", "1-8", "2-2", "3-4"]
        assert 0 < len(p["reasons"]) <= 10
        assert {r_["influence"] for r_ in p["reasons"]} <= {"大", "中", "小"}
        assert all(r_["label_ja"] for r_ in p["reasons"])
        assert "similar_cases" in p["uncertainty"]
    scores = [p["p_improve_or_maintain"] for p in plans]
    assert scores[0] >= body["typical_plan"]["p_improve_or_maintain"]
    assert plans[0]["vs_typical"] == pytest.approx(
        scores[0] - body["typical_plan"]["p_improve_or_maintain"], abs=1e-3)


def test_constraints_are_honoured(care_client: TestClient) -> None:
    r = care_client.post(f"{URL}/suggest", headers=TOYOHASHI, json={
        "person": EXAMPLE_PERSON, "top": 2,
        "constraints": {"exclude": ["day_service"], "require": ["home_help_life"],
                        "max_days_per_week": 1}})
    assert r.status_code == 200, r.text
    for p in r.json()["plans"]:
        assert p["plan"]["day_service"] == 0 and p["plan"]["home_help_life"] >= 1
        assert max(v for k, v in p["plan"].items() if k not in ("short_stay",)) <= 1
    assert len(r.json()["plans"]) == 2


def test_predict_a_care_managers_own_plan(care_client: TestClient) -> None:
    r = care_client.post(f"{URL}/predict", headers=TOYOHASHI, json={
        "person": EXAMPLE_PERSON, "plan": {"day_service": 3, "home_help_body": 7}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"]["plan"]["home_help_body"] == 7
    assert body["plan"]["monthly_units"] > 0 and "vs_typical" in body["plan"]
    over = care_client.post(f"{URL}/predict", headers=TOYOHASHI, json={
        "person": person(care_level="要支援1", physical_independence="J2"),
        "plan": {"day_service": 5, "home_nursing": 3}})
    assert over.status_code == 200
    assert any("限度基準額" in w["message_ja"] for w in over.json()["warnings"])


def test_items_form_for_the_page(care_client: TestClient) -> None:
    r = care_client.get(f"{URL}/items", headers=TOYOHASHI)
    assert r.status_code == 200
    body = r.json()
    assert sum(len(g["items"]) for g in body["groups"]) == 74
    assert body["groups"][0]["items"][9]["code"] == "1-3"
    assert body["caps"]["要介護5"] == 36217
    assert [s["service"] for s in body["services"]][:2] == ["day_service", "day_rehab"]


@pytest.mark.parametrize(("changes", "status", "expected"), [
    ({"items": {"1-7": 4}}, 422, ["1-7「歩行」", "item 1-7 (walking)", "1-3"]),
    ({"items": {"9-9": 1}}, 422, ["9-9", "不明な項目番号", "unknown item number"]),
    ({"care_level": "要介護9"}, 422, ["要介護度", "care_level"]),
    ({"age": "abc"}, 422, ["年齢", "age"]),
    ({"tenant_code": "152021"}, 403, ["232017"]),
])
def test_bad_person_is_a_clear_4xx(care_client: TestClient, changes: dict, status: int,
                                   expected: list[str]) -> None:
    r = care_client.post(f"{URL}/suggest", headers=TOYOHASHI, json={"person": person(**changes)})
    assert r.status_code == status, r.text
    for text in expected:
        assert text in r.json()["error"]


def test_missing_item_names_it(care_client: TestClient) -> None:
    p = person()
    del p["items"]["3-4"]
    r = care_client.post(f"{URL}/suggest", headers=TOYOHASHI, json={"person": p})
    assert r.status_code == 422
    assert "3-4「短期記憶」" in r.json()["error"] and "required" in r.json()["error"]


def test_contradicting_care_level_warns_but_answers(care_client: TestClient) -> None:
    r = care_client.post(f"{URL}/suggest", headers=TOYOHASHI,
                         json={"person": person(care_level="要介護5")})
    assert r.status_code == 200
    (w,) = r.json()["warnings"]
    assert w["field"] == "care_level" and "要介護5" in w["message_ja"]
    assert "differs" in w["message_en"]


def test_impossible_constraints_are_422(care_client: TestClient) -> None:
    r = care_client.post(f"{URL}/suggest", headers=TOYOHASHI, json={
        "person": person(care_level="要支援1", physical_independence="J2"),
        "constraints": {"require": ["home_nursing", "short_stay", "day_rehab", "home_help_body"]}})
    assert r.status_code == 422 and "5,032" in r.json()["error"]
    r = care_client.post(f"{URL}/suggest", headers=TOYOHASHI, json={
        "person": EXAMPLE_PERSON, "constraints": {"exclude": ["yoga"]}})
    assert r.status_code == 422 and "yoga" in r.json()["error"]
    r = care_client.post(f"{URL}/predict", headers=TOYOHASHI, json={
        "person": EXAMPLE_PERSON, "plan": {"day_service": 9}})
    assert r.status_code == 422 and "day_service" in r.json()["error"]


def test_tenant_not_subscribed_or_no_key(care_client: TestClient) -> None:
    r = care_client.post(f"{URL}/suggest", headers=NAHA, json={"person": EXAMPLE_PERSON})
    assert r.status_code == 403 and "care_plan" in r.json()["error"]
    assert care_client.get(f"{URL}/items").status_code == 401


def test_batch_csv_in_cp932_to_suggestions(care_client: TestClient, care_root: Path) -> None:
    persons = pd.read_csv(care_root / "data/care_plan/232017.csv", dtype=str,
                          keep_default_na=False).head(20)
    persons = persons[[c for c in persons.columns if not c.startswith("plan_")]]
    raw = persons.to_csv(index=False, lineterminator="\r\n").encode("cp932")
    r = care_client.post(f"{URL}/batch", headers=TOYOHASHI, params={"format": "csv_cp932"},
                         files={"file": ("persons.csv", raw, "text/csv")})
    assert r.status_code == 200, r.text
    table = pd.read_csv(io.BytesIO(r.content), encoding="cp932")
    assert list(table.columns[:3]) == ["利用者ID", "要介護度", "順位"]
    assert len(table) == 60 and set(table["順位"]) == {1, 2, 3}
    total = table["改善の確率"] + table["維持の確率"] + table["悪化の確率"]
    assert total.between(0.99, 1.01).all()
    bad = persons.assign(**{"item_1-7": "7"})
    r = care_client.post(f"{URL}/batch", headers=TOYOHASHI,
                         files={"file": ("p.csv", bad.to_csv(index=False).encode(), "text/csv")})
    assert r.status_code == 422 and "1-7「歩行」 行 2" in r.json()["error"]
