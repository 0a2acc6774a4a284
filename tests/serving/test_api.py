"""The service's endpoints: tenancy, scoring, queues, feedback, metering, bad input -> 4xx."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.claim_screening import EXAMPLE_CLAIM
from tests.serving.conftest import ITOSHIMA, IYO

NAHA_ONLY_CHECKUP = {"Authorization": "Bearer kyodo-demo-121002"}


def month_csv(root: Path, code: str = "402303") -> bytes:
    return (root / "data" / "claim_screening" / f"{code}.csv").read_bytes()


def test_auth_required_and_checked(client: TestClient) -> None:
    body = {"claims": [EXAMPLE_CLAIM]}
    assert client.post("/v1/claim_screening/score", json=body).status_code == 401
    bad = client.post("/v1/claim_screening/score", json=body,
                      headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "unknown API key" in bad.json()["error"]


def test_unsubscribed_task_is_403(client: TestClient, runtime) -> None:
    tenant = runtime.tenants.by_code()["121002"]
    subscribed = tenant.tasks
    object.__setattr__(tenant, "tasks", ("road_damage",))  # a tenant without claim_screening
    try:
        r = client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                        headers=NAHA_ONLY_CHECKUP)
        assert r.status_code == 403 and "does not subscribe" in r.json()["error"]
    finally:
        object.__setattr__(tenant, "tasks", subscribed)


def test_score_returns_reasons_contributions_and_version(client: TestClient) -> None:
    r = client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                    headers=ITOSHIMA)
    assert r.status_code == 200
    res = r.json()["results"][0]
    assert r.json()["model_version"] == "1"
    assert 0 <= res["score"] <= 1 and res["priority"] >= 0
    codes = {x["code"] for x in res["reasons"]}
    assert {"R_FREQUENCY", "R_INDICATION"} <= codes
    assert any(x["label"] == "算定回数超過" for x in res["reasons"])
    assert res["contributions"] and all("label" in c for c in res["contributions"])
    assert res["patient_id"] == "P-000123"  # echoed back, never stored


def test_queue_from_csv_ranked_and_cut_at_capacity(client: TestClient,
                                                   trained_root: Path) -> None:
    r = client.post("/v1/claim_screening/queue?capacity=0.1", content=month_csv(trained_root),
                    headers={**ITOSHIMA, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["queued"] == max(1, round(q["claims_in_month"] * 0.1))
    prio = [it["priority"] for it in q["items"]]
    assert prio == sorted(prio, reverse=True) and next(it["rank"] for it in q["items"]) == 1
    listed = client.get("/v1/claim_screening/queues", headers=ITOSHIMA).json()["queues"]
    assert q["queue_id"] in {x["queue_id"] for x in listed}
    stored = client.get(f"/v1/claim_screening/queues/{q['queue_id']}", headers=ITOSHIMA).json()
    assert [it["claim_id"] for it in stored["items"]] == [it["claim_id"] for it in q["items"]]
    assert "patient_id" not in stored["items"][0]


def test_queue_multipart_cp932_and_csv_download(client: TestClient, trained_root: Path) -> None:
    text = month_csv(trained_root).decode("utf-8")
    r = client.post("/v1/claim_screening/queue?format=csv", headers=ITOSHIMA,
                    files={"file": ("claims.csv", text.encode("cp932"), "text/csv")})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff順位,レセプト番号".encode())


def test_stored_queue_downloads(client: TestClient, trained_root: Path) -> None:
    import io

    q = client.post("/v1/claim_screening/queue", content=month_csv(trained_root),
                    headers={**ITOSHIMA, "content-type": "text/csv"}).json()
    url = f"/v1/claim_screening/queues/{q['queue_id']}/download"
    sjis = client.get(url, params={"format": "csv_cp932"}, headers=ITOSHIMA)
    table = pd.read_csv(io.BytesIO(sjis.content), encoding="cp932")
    assert list(table["レセプト番号"]) == [it["claim_id"] for it in q["items"]]
    xlsx = client.get(url, params={"format": "xlsx"}, headers=ITOSHIMA)
    assert pd.read_excel(io.BytesIO(xlsx.content))["順位"].tolist()[0] == 1
    assert client.get(url, headers=IYO).status_code == 404
    meta = client.get(f"/v1/claim_screening/queues/{q['queue_id']}", headers=ITOSHIMA).json()
    assert meta["month"] == q["month"] and meta["claims"] == q["claims_in_month"]


def test_unknown_codes_and_new_providers_are_scored_and_flagged(client: TestClient,
                                                                trained_root: Path) -> None:
    import io

    df = pd.read_csv(io.BytesIO(month_csv(trained_root)), dtype=str, keep_default_na=False)
    codes, _ = pd.factorize(df["provider_id"])
    df["provider_id"] = [f"40{c:08d}" for c in codes]  # 10-digit 医療機関コード, never seen
    month = df["service_month"].max()
    first = df.index[(df["service_month"] == month) & (df["line_kind"] == "procedure")][0]
    df.loc[first, "code"] = "199999999"  # well-formed, in no master
    r = client.post("/v1/claim_screening/queue?capacity=1", content=df.to_csv(index=False),
                    headers={**ITOSHIMA, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    q = r.json()
    flags = q["flags"]
    assert flags["claims"] == q["claims_in_month"] == q["queued"]
    assert flags["claims_new_provider"] == q["claims_in_month"]
    assert flags["claims_with_unknown_codes"] == 1
    assert flags["unknown_code_examples"] == ["199999999"]
    assert "請求履歴のない医療機関" in flags["note_ja"] and "199999999" in flags["note_ja"]
    flagged = [it for it in q["items"] if it["unknown_codes"]]
    assert [it["claim_id"] for it in flagged] == [df.loc[first, "claim_id"]]
    assert all(it["new_provider"] for it in q["items"])
    assert len({it["score"] for it in q["items"]}) > 1  # scored, not a constant fallback
    stored = client.get(f"/v1/claim_screening/queues/{q['queue_id']}", headers=ITOSHIMA).json()
    assert sum(bool(it["unknown_codes"]) for it in stored["items"]) == 1
    url = f"/v1/claim_screening/queues/{q['queue_id']}/download"
    table = pd.read_excel(io.BytesIO(client.get(url, params={"format": "xlsx"},
                                                headers=ITOSHIMA).content), dtype=str)
    assert (table["新規医療機関"] == "はい").all()
    assert table["未登録コード"].fillna("").tolist().count("199999999") == 1
    known = client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]},
                        headers=ITOSHIMA).json()
    assert known["flags"]["claims_with_unknown_codes"] == 0
    assert known["results"][0]["unknown_codes"] == []


def test_queue_from_json(client: TestClient) -> None:
    claims = []
    for i in range(30):
        c = copy.deepcopy(EXAMPLE_CLAIM)
        c["claim_id"] = f"j{i}"
        claims.append(c)
    r = client.post("/v1/claim_screening/queue", json={"claims": claims, "capacity": 0.1},
                    headers=ITOSHIMA)
    assert r.status_code == 200 and r.json()["queued"] == 3


def test_tenants_see_only_their_own_queues_and_feedback(client: TestClient,
                                                        trained_root: Path) -> None:
    q = client.post("/v1/claim_screening/queue", content=month_csv(trained_root),
                    headers={**ITOSHIMA, "content-type": "text/csv"}).json()
    other = client.get(f"/v1/claim_screening/queues/{q['queue_id']}", headers=IYO)
    assert other.status_code == 404
    assert q["queue_id"] not in {x["queue_id"] for x in client.get(
        "/v1/claim_screening/queues", headers=IYO).json()["queues"]}
    mixed = client.post("/v1/claim_screening/queue", content=month_csv(trained_root),
                        headers={**IYO, "content-type": "text/csv"})
    assert mixed.status_code == 403 and "other municipalities" in mixed.json()["error"]
    item = q["items"][0]
    fb = {"items": [{"claim_id": item["claim_id"], "error_confirmed": True,
                     "recovered_points": 120, "error_type": "outlier", "note": "確認済み",
                     "queue_id": q["queue_id"]}]}
    assert client.post("/v1/claim_screening/feedback", json=fb, headers=ITOSHIMA).json() == {
        "recorded": 1}
    mine = client.get("/v1/claim_screening/feedback", headers=ITOSHIMA,
                      params={"queue_id": q["queue_id"]}).json()["items"]
    assert [x["claim_id"] for x in mine] == [item["claim_id"]]
    bad = {"items": [{**fb["items"][0], "error_type": "typo"}]}
    assert client.post("/v1/claim_screening/feedback", json=bad,
                       headers=ITOSHIMA).status_code == 422
    theirs = client.get("/v1/claim_screening/feedback", headers=IYO).json()["items"]
    assert all(x["claim_id"] != item["claim_id"] for x in theirs)


def test_feedback_exports_as_labels(client: TestClient, runtime, tmp_path: Path) -> None:
    fb = {"items": [{"claim_id": "X1", "error_confirmed": True, "recovered_points": 50},
                    {"claim_id": "X2", "error_confirmed": False}]}
    assert client.post("/v1/claim_screening/feedback", json=fb, headers=IYO).status_code == 200
    written = runtime.store.export_labels("claim_screening", tmp_path)
    labels = pd.read_csv(tmp_path / "382108.csv", dtype=str, keep_default_na=False)
    assert written["382108"] == len(labels)
    row = labels.set_index("claim_id")
    assert row.loc["X1", "recoverable_points"] == "50" and row.loc["X2", "error_type"] == ""


def test_usage_is_metered(client: TestClient) -> None:
    before = _requests(client)
    client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM]}, headers=ITOSHIMA)
    assert _requests(client) == before + 1


def _requests(client: TestClient) -> int:
    usage = client.get("/v1/usage", headers=ITOSHIMA).json()["usage"]
    return sum(u["requests"] for u in usage if u["endpoint"] == "score")


def test_raw_patient_ids_never_stored(client: TestClient, trained_root: Path) -> None:
    client.post("/v1/claim_screening/queue", content=month_csv(trained_root),
                headers={**ITOSHIMA, "content-type": "text/csv"})
    raw_ids = set(pd.read_csv(trained_root / "data/claim_screening/402303.csv",
                              usecols=["patient_id"], dtype=str)["patient_id"])
    db = trained_root / "state" / "kyodo.db"
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert not any(pid in dump for pid in list(raw_ids)[:500])


def test_models_endpoint(client: TestClient) -> None:
    m = client.get("/v1/models").json()["models"][0]
    assert m["task"] == "claim_screening" and m["alias"] == "champion" and m["version"] == "1"
    assert m["headline_metric"].startswith("recovered_points") and m["headline_value"] > 0


def _claims_csv(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "data/claim_screening/402303.csv", dtype=str,
                       keep_default_na=False)


BAD_INPUTS = {
    "missing column": (lambda df: df.drop(columns=["points"]), 422, "missing column 'points'"),
    "wrong type": (lambda df: df.assign(age=["x"] * len(df)), 422, "column 'age' row 2"),
    "malformed code": (lambda df: df.assign(code=["ZZZ", *list(df["code"][1:])]), 422,
                       "column 'code' row 2: コードの形式が不正です"),
    "negative points": (lambda df: df.assign(points=["-1", *list(df["points"][1:])]), 422,
                        "column 'points' row 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_csv_is_4xx_naming_field_and_row(client: TestClient, trained_root: Path,
                                             case: str) -> None:
    mutate, status, message = BAD_INPUTS[case]
    raw = mutate(_claims_csv(trained_root)).to_csv(index=False).encode()
    r = client.post("/v1/claim_screening/queue", content=raw,
                    headers={**ITOSHIMA, "content-type": "text/csv"})
    assert r.status_code == status and message in r.json()["error"], r.text


def test_empty_junk_and_duplicates(client: TestClient, trained_root: Path) -> None:
    post = lambda raw: client.post(  # noqa: E731
        "/v1/claim_screening/queue", content=raw, headers={**ITOSHIMA, "content-type": "text/csv"})
    assert post(b"").status_code == 400
    junk = post(bytes((i * 7919) % 256 for i in range(10_000_000)))
    assert junk.status_code in (400, 422) and "error" in junk.json()
    df = _claims_csv(trained_root).head(1)
    dup = pd.concat([df] * 50_000, ignore_index=True)
    dup["line_no"] = range(1, len(dup) + 1)
    dup["patient_id"] = [f"p{i}" for i in range(len(dup))]
    r = post(dup.to_csv(index=False).encode())
    assert r.status_code == 422 and "conflicting header fields" in r.json()["error"]


def test_bad_json_names_the_field(client: TestClient) -> None:
    claim = copy.deepcopy(EXAMPLE_CLAIM)
    claim["lines"][1]["points"] = -3
    r = client.post("/v1/claim_screening/score", json={"claims": [claim]}, headers=ITOSHIMA)
    assert r.status_code == 422 and "claims.0.lines.1.points" in r.json()["error"]
    claim = copy.deepcopy(EXAMPLE_CLAIM)
    claim["lines"][1]["code"] = "Q999"
    r = client.post("/v1/claim_screening/score", json={"claims": [claim]}, headers=ITOSHIMA)
    assert r.status_code == 422 and "claims.0.lines.1.code" in r.json()["error"]
    assert "malformed procedure code 'Q999'" in r.json()["error"]
    r = client.post("/v1/claim_screening/score", json={"claims": [EXAMPLE_CLAIM] * 2},
                    headers=ITOSHIMA)
    assert r.status_code == 422 and "duplicate claim_id" in r.json()["error"]
    r = client.post("/v1/claim_screening/queue", content=b"{not json",
                    headers={**ITOSHIMA, "content-type": "application/json"})
    assert r.status_code == 422
