"""/v1/whoami answers every key it knows with its role: a municipality's (its tasks) and the
operator's admin key (no code, no tasks), so the costs and operations pages log in without a
refused call; missing and unknown keys are 401, as documented; the admin key on a route
that answers for one municipality is 403."""

from __future__ import annotations

from fastapi.testclient import TestClient

ADMIN = {"Authorization": "Bearer kyodo-demo-admin"}
ITOSHIMA = {"Authorization": "Bearer kyodo-demo-402303"}


def test_a_tenant_key_is_its_municipality_with_its_tasks(client: TestClient) -> None:
    who = client.get("/v1/whoami", headers=ITOSHIMA)
    assert who.status_code == 200
    body = who.json()
    assert body["role"] == "tenant" and body["code"] == "402303" and body["name"] == "糸島市"
    assert "claim_screening" in body["tasks"]


def test_the_admin_key_is_the_operator_without_tasks(client: TestClient) -> None:
    who = client.get("/v1/whoami", headers=ADMIN)
    assert who.status_code == 200, who.text
    assert who.json() == {"role": "admin", "code": None, "name": "運営者", "tasks": []}
    # the tenancy rules stand: the operator reads the admin routes, not a tenant's own
    assert client.get("/v1/admin/drift", headers=ADMIN).status_code == 200
    own = client.get("/v1/usage", headers=ADMIN)
    assert own.status_code == 403 and "admin key" in own.json()["error"]


def test_a_task_route_refuses_the_admin_key_as_403_not_401(client: TestClient) -> None:
    # the key is known (401 would tell the operator to check a key that is right): it is the
    # wrong kind of key for a route that answers for one municipality
    got = client.post("/v1/claim_screening/score", headers=ADMIN, json={"claims": []})
    assert got.status_code == 403, got.text
    assert "municipality" in got.json()["error"]


def test_missing_and_unknown_keys_are_401(client: TestClient) -> None:
    assert client.get("/v1/whoami").status_code == 401
    bad = client.get("/v1/whoami", headers={"Authorization": "Bearer not-a-key"})
    assert bad.status_code == 401 and bad.json()["error"] == "unknown API key"


def test_the_document_says_both_roles(client: TestClient) -> None:
    doc = client.get("/v1/openapi.json").json()
    ok = doc["paths"]["/v1/whoami"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = doc["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["role"]["enum"] == ["tenant", "admin"]
    assert set(schema["required"]) == {"role", "code", "name", "tasks"}
