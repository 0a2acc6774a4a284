"""checkup_nudge endpoints: outreach lists, downloads, per-arm scores, bad input -> 4xx."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.checkup_nudge import EXAMPLE_RESIDENT

NAHA = {"Authorization": "Bearer kyodo-demo-472018"}


@pytest.fixture(scope="module")
def nudge_client(nudge_root: Path) -> Iterator[TestClient]:
    """The app bound to a runtime of the checkup_nudge workspace."""
    from serving.api import app
    from serving.deps import get_runtime
    from serving.runtime import Runtime

    rt = Runtime.load(nudge_root)
    previous = app.dependency_overrides.get(get_runtime)
    app.dependency_overrides[get_runtime] = lambda: rt
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    if previous is not None:
        app.dependency_overrides[get_runtime] = previous


def roster(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "data/checkup_nudge/472018.csv", dtype=str, keep_default_na=False)


def post_csv(client: TestClient, frame: pd.DataFrame, encoding: str = "utf-8", **params):
    raw = frame.to_csv(index=False, lineterminator="\r\n").encode(encoding)
    return client.post("/v1/checkup_nudge/outreach", params=params, headers=NAHA,
                       files={"file": ("roster.csv", raw, "text/csv")})


def test_outreach_respects_budget_and_beats_probability_targeting(
        nudge_client: TestClient, nudge_root: Path) -> None:
    r = post_csv(nudge_client, roster(nudge_root), budget_yen=20_000)
    assert r.status_code == 200, r.text
    s = r.json()["summary"]
    assert s["spent_yen"] <= 20_000 and s["mailed"] == r.json()["items_total"] <= 200
    assert s["expected_additional_attendees"] > 0
    old = s["baselines"]["highest_probability"]["expected_additional_attendees"]
    assert s["expected_additional_attendees"] >= old
    assert s["attendance_rate_after"] > s["attendance_rate_before"]
    assert s["gain_curve"][0]["budget_yen"] == 0
    # issue 16: the list says what it rests on (the AI list or training's simple fallback)
    assert s["policy"]["kind"] in ("model", "simple") and s["policy"]["message_ja"]
    item = r.json()["items"][0]
    assert item["rank"] == 1 and item["mailed"] and item["arm_ja"]


def test_postcards_cp932_crlf_and_downloads(nudge_client: TestClient, nudge_root: Path) -> None:
    frame = roster(nudge_root)
    r = post_csv(nudge_client, frame, "cp932", postcards=50)
    assert r.status_code == 200 and r.json()["summary"]["mailed"] <= 50
    assert r.json()["summary"]["budget_source"] == "postcards"
    xlsx = post_csv(nudge_client, frame, postcards=50, format="xlsx")
    table = pd.read_excel(io.BytesIO(xlsx.content))
    assert list(table.columns)[:3] == ["順位", "住民ID", "送付"] and len(table) <= 50
    assert set(table["メッセージの種類"]) <= {"標準はがき", "利得フレーム", "損失フレーム",
                                            "社会規範", "日時・会場記入済み"}
    sjis = post_csv(nudge_client, frame, postcards=50, format="csv_cp932")
    assert sjis.content.decode("cp932").startswith("順位,住民ID")
    utf8 = post_csv(nudge_client, frame, postcards=50, format="csv")
    assert utf8.content.startswith("\ufeff順位".encode())


def test_score_returns_probabilities_per_arm(nudge_client: TestClient) -> None:
    r = nudge_client.post("/v1/checkup_nudge/score", json={"residents": [EXAMPLE_RESIDENT]},
                          headers=NAHA)
    assert r.status_code == 200, r.text
    res = r.json()["results"][0]
    assert set(res["probabilities"]) == {"none", "standard", "gain_frame", "loss_frame",
                                         "social_norm", "simplified"}
    assert all(0 <= p <= 1 for p in res["probabilities"].values())
    assert res["resident_id"] == "R-0001" and res["best_arm_ja"]


@pytest.mark.parametrize(("mutate", "params", "status", "message"), [
    (lambda f: f.assign(age=["sixty", *f["age"][1:]]), {}, 422, "'age' row 2"),
    (lambda f: f.assign(resident_id=[f["resident_id"][1], *f["resident_id"][1:]]), {}, 422,
     "resident_id"),
    (lambda f: f.drop(columns=["distance_km"]), {}, 422, "distance_km"),
    (lambda f: f, {"budget_yen": -5}, 422, "budget"),
    (lambda f: f, {"budget_yen": 50}, 422, "too small for one postcard"),
    (lambda f: f, {"budget_yen": 1000, "postcards": 3}, 422, "not both"),
    (lambda f: f.assign(tenant_code="402303"), {}, 422, "tenant_code"),
    (lambda f: f.iloc[:0], {}, 422, "no"),
])
def test_bad_rosters_are_4xx(nudge_client: TestClient, nudge_root: Path, mutate, params: dict,
                             status: int, message: str) -> None:
    r = post_csv(nudge_client, mutate(roster(nudge_root)), **params)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_unknown_district_is_named_unless_allowed(nudge_client: TestClient,
                                                   nudge_root: Path) -> None:
    frame = roster(nudge_root)
    frame.loc[3, "district"] = "472018-D99"
    r = post_csv(nudge_client, frame, budget_yen=5000)
    assert r.status_code == 422 and "472018-D99" in r.json()["error"]
    assert "rows 5" in r.json()["error"]  # CSV line 5: header + 4th resident
    assert post_csv(nudge_client, frame, budget_yen=5000,
                    allow_new_districts="true").status_code == 200
    body = {"residents": [{**EXAMPLE_RESIDENT, "district": "472018-D99"}]}
    r = nudge_client.post("/v1/checkup_nudge/score", json=body, headers=NAHA)
    assert r.status_code == 422 and "district" in r.json()["error"]


def test_empty_file_and_json_roster(nudge_client: TestClient) -> None:
    r = nudge_client.post("/v1/checkup_nudge/outreach", content=b"", headers={
        **NAHA, "content-type": "text/csv"})
    assert r.status_code == 400
    body = {"residents": [EXAMPLE_RESIDENT, {**EXAMPLE_RESIDENT, "resident_id": "R-0002"}],
            "budget_yen": 500}
    r = nudge_client.post("/v1/checkup_nudge/outreach", json=body, headers=NAHA)
    assert r.status_code == 200 and r.json()["summary"]["residents"] == 2
    bad = {"residents": [{**EXAMPLE_RESIDENT, "age": 80}]}
    r = nudge_client.post("/v1/checkup_nudge/score", json=bad, headers=NAHA)
    assert r.status_code == 422 and "age" in r.json()["error"]


def test_resident_ids_never_stored(nudge_client: TestClient, nudge_root: Path) -> None:
    frame = roster(nudge_root)
    assert post_csv(nudge_client, frame, budget_yen=5000).status_code == 200
    with sqlite3.connect(nudge_root / "state" / "kyodo.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert not any(rid in dump for rid in frame["resident_id"][:300])
    assert "checkup_nudge" in dump  # the request was metered


def test_json_rosters_follow_the_fiscal_year_rule_like_files(nudge_client: TestClient) -> None:
    """Issue 15: a 39-year-old may turn 40 before 31 March; JSON applied 40-74 and answered
    422 while file uploads kept 39-74 (schema.check_roster is now the one path)."""
    body = {"residents": [{**EXAMPLE_RESIDENT, "age": 39},
                          {**EXAMPLE_RESIDENT, "resident_id": "R-0002", "age": 30},
                          {**EXAMPLE_RESIDENT, "resident_id": "R-0003", "age": 74}],
            "budget_yen": 500}
    r = nudge_client.post("/v1/checkup_nudge/outreach", json=body, headers=NAHA)
    assert r.status_code == 200, r.text
    summary = r.json()["summary"]
    assert summary["residents"] == 2
    assert summary["excluded"]["count"] == 1 and summary["excluded"]["rows"] == [1]
    r = nudge_client.post("/v1/checkup_nudge/score", json={"residents": body["residents"]},
                          headers=NAHA)
    assert r.status_code == 200, r.text
    assert [x["resident_id"] for x in r.json()["results"]] == ["R-0001", "R-0003"]
    assert r.json()["excluded"]["rows"] == [1]
    # an unseen district in the third JSON row is named by its own position after exclusion
    body["residents"][2]["district"] = "472018-D99"
    r = nudge_client.post("/v1/checkup_nudge/outreach", json=body, headers=NAHA)
    assert r.status_code == 422 and "472018-D99 in rows 2 " in r.json()["error"]
