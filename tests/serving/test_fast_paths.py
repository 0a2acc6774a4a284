"""The lean single-row paths score exactly as the batch paths do.

claim_screening /score reads JSON claims as column arrays (serving.claim_screening
claims_to_columns, scoring.score_claims(as_frame=False)); /queue and uploads read a DataFrame.
checkup_nudge /score takes plain JSON residents through schema.plain_roster instead of
check_roster (pandera). Both must give the same probabilities, uplifts, reasons and flags.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.checkup_nudge.schema import ROSTER_COLUMNS, check_roster, plain_roster
from models.checkup_nudge.scoring import OnnxArmPredictor, score_matrix
from models.claim_screening.features import Reference
from models.claim_screening.scoring import (
    OnnxPredictor,
    flag_summary,
    for_features,
    reasons_at,
    score_claims,
)
from serving.checkup_nudge import EXAMPLE_RESIDENT
from serving.claim_screening import ClaimIn, claims_to_columns, claims_to_lines
from serving.runtime import Runtime
from tests.serving.conftest import ITOSHIMA, bound_client

NAHA = {"Authorization": "Bearer kyodo-demo-472018"}
HEADER = ("claim_id", "patient_id", "age", "sex", "service_month", "provider_id",
          "claim_type", "total_points", "insured_until")


def json_claims(lines: pd.DataFrame) -> list[dict[str, Any]]:
    """The line table as /score's JSON claims."""
    out = []
    for _, group in lines.groupby("claim_id", sort=False):
        first = group.iloc[0]
        claim = {k: (int(first[k]) if k in ("age", "sex", "total_points") else str(first[k]))
                 for k in HEADER}
        claim["lines"] = [{"line_kind": r.line_kind, "code": r.code, "count": int(r.count),
                           "days": int(r.days), "points": int(r.points)}
                          for r in group.itertuples()]
        out.append(claim)
    return out


@pytest.fixture(scope="module")
def claims(trained_root: Path) -> list[dict[str, Any]]:
    """Two months of 糸島市's claims, with a copy of one claim (R_DUPLICATE), a code nobody
    knows and a provider without history."""
    lines = pd.read_csv(trained_root / "data/claim_screening/402303.csv", dtype=str,
                        keep_default_na=False)
    months = sorted(lines["service_month"].unique())[-2:]
    picked = json_claims(lines[lines["service_month"].isin(months)])[:600]
    copy = {**picked[0], "claim_id": "COPY-1"}
    odd = {**picked[1], "claim_id": "ODD-1", "provider_id": "402303C9999",
           "lines": [*picked[1]["lines"], {"line_kind": "procedure", "code": "199999999",
                                           "count": 1, "points": 40}]}
    return [*picked, copy, odd]


def test_claim_columns_score_like_the_line_table(runtime: Runtime,
                                                 claims: list[dict[str, Any]]) -> None:
    model = runtime.models["claim_screening"]
    assets = model.assets["reference.json"]
    reference = Reference.from_dict(assets["reference"])

    predict = for_features(OnnxPredictor(model.session), assets["features"])
    parsed = [ClaimIn.model_validate(c) for c in claims]
    batch = score_claims(claims_to_lines(parsed, "402303"), reference, predict)
    lean = score_claims(claims_to_columns(parsed, "402303"), reference, predict, as_frame=False)
    assert isinstance(batch.frame, pd.DataFrame) and isinstance(lean.frame, dict)
    assert len(lean) == len(batch) == len(claims)
    for col in ("score", "expected_points", "priority"):
        np.testing.assert_allclose(lean.column(col), batch.column(col), rtol=0, atol=1e-9)
    for col in ("claim_id", "patient_id", "provider_id", "n_unknown_codes", "new_provider"):
        assert lean.column(col).tolist() == batch.column(col).tolist(), col
    np.testing.assert_array_equal(lean.X, batch.X)
    np.testing.assert_array_equal(lean.rules, batch.rules)
    assert lean.unknown == batch.unknown
    rows = np.arange(len(lean))
    assert reasons_at(lean, rows) == reasons_at(batch, rows)
    assert flag_summary(lean) == flag_summary(batch)
    assert flag_summary(lean, rows[::3]) == flag_summary(batch, rows[::3])
    # the sample exercises what the lean path must not lose
    assert batch.rules.any(axis=0).sum() >= 3
    assert lean.column("new_provider")[-1] and lean.unknown
    assert "R_DUPLICATE" in reasons_at(lean, rows[-2:])[0]


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    keys = ("score", "expected_points", "priority", "reasons", "unknown_codes", "new_provider")
    return {it["claim_id"]: {k: it[k] for k in keys} for it in items}


def _queued(client: TestClient, claims: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """/queue's items for these claims, cut at capacity 1 (all of them)."""
    month = claims[0]["service_month"]
    queue = client.post("/v1/claim_screening/queue", headers=ITOSHIMA,
                        json={"claims": claims, "capacity": 1.0, "month": month})
    assert queue.status_code == 200, queue.text
    return _by_id(queue.json()["items"])


def _scored(client: TestClient, claims: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    r = client.post("/v1/claim_screening/score", headers=ITOSHIMA,
                    json={"claims": claims, "explain": False})
    assert r.status_code == 200, r.text
    return _by_id(r.json()["results"])


def test_score_endpoint_gives_what_the_queue_gives(client: TestClient,
                                                   claims: list[dict[str, Any]]) -> None:
    """/score (JSON column arrays; one claim runs inline on the event loop) against /queue
    (a DataFrame, cut at capacity 1: every claim) on the same request: features are computed
    over the request's own claims, so each comparison sends both the same set."""
    month = max(c["service_month"] for c in claims)
    in_month = [c for c in claims if c["service_month"] == month][:40]
    together = _scored(client, in_month)
    assert len(together) == len(in_month)
    assert together == _queued(client, in_month)
    for c in in_month[:5]:
        assert _scored(client, [c]) == _queued(client, [c])


def test_score_by_csv_upload_gives_what_json_gives(client: TestClient,
                                                   claims: list[dict[str, Any]]) -> None:
    rows = [{"claim_id": c["claim_id"], "tenant_code": "402303", **{k: c[k] for k in HEADER},
             "line_no": no, **ln} for c in claims[:30] for no, ln in enumerate(c["lines"], 1)]
    csv = pd.DataFrame(rows).fillna(0).to_csv(index=False).encode()
    by_csv = client.post("/v1/claim_screening/score?explain=false", content=csv,
                         headers={**ITOSHIMA, "content-type": "text/csv"})
    by_json = client.post("/v1/claim_screening/score", headers=ITOSHIMA,
                          json={"claims": claims[:30], "explain": False})
    assert by_csv.status_code == 200 and by_json.status_code == 200, by_csv.text
    assert by_csv.json()["results"] == by_json.json()["results"]
    assert by_csv.json()["flags"] == by_json.json()["flags"]


def test_score_claim_answers_what_score_answers(client: TestClient,
                                                claims: list[dict[str, Any]]) -> None:
    """/score_claim (the body is the claim) against a one-claim /score without explanations:
    the same figures, for an ordinary claim, one with an unknown code and a new provider."""
    for claim in [*claims[:5], claims[-1]]:
        one = client.post("/v1/claim_screening/score_claim", headers=ITOSHIMA, json=claim)
        full = client.post("/v1/claim_screening/score", headers=ITOSHIMA,
                           json={"claims": [claim], "explain": False})
        assert one.status_code == 200 and full.status_code == 200, one.text
        want = {k: v for k, v in full.json()["results"][0].items() if k != "contributions"}
        assert one.json() == {"model_version": full.json()["model_version"], **want}
    assert one.json()["unknown_codes"] and one.json()["new_provider"]


def test_score_claim_errors_in_the_product_shape(client: TestClient) -> None:
    from serving.claim_screening import EXAMPLE_CLAIM

    r = client.post("/v1/claim_screening/score_claim", json=EXAMPLE_CLAIM)
    assert r.status_code == 401 and "API key" in r.json()["error"]
    bad = {**EXAMPLE_CLAIM, "lines": [{**EXAMPLE_CLAIM["lines"][0], "code": "E11!"}]}
    r = client.post("/v1/claim_screening/score_claim", headers=ITOSHIMA, json=bad)
    assert r.status_code == 422 and r.json()["error"].startswith("lines.0.code"), r.text


# ---- checkup_nudge ----

@pytest.fixture(scope="module")
def nudge_rt(nudge_root: Path) -> Runtime:
    return Runtime.load(nudge_root)


@pytest.fixture(scope="module")
def nudge_client(nudge_rt: Runtime) -> Iterator[TestClient]:
    with bound_client(nudge_rt) as c:
        yield c


def json_residents(root: Path, n: int) -> list[dict[str, Any]]:
    """Rows of 那覇市's roster as a client sends them: numbers as numbers, no results as null."""
    frame = pd.read_csv(root / "data/checkup_nudge/472018.csv", dtype=str,
                        keep_default_na=False).head(n)
    text = {"resident_id", "tenant_code", "district", "questionnaire_type"}
    out = []
    for row in frame.to_dict("records"):
        rec: dict[str, Any] = {}
        for k, v in row.items():
            if k == "tenant_code":
                continue
            rec[k] = v if k in text else (None if v == "" else (
                float(v) if "." in v else int(v)))
        out.append(rec)
    return out


def test_plain_roster_is_check_rosters_result(nudge_root: Path, nudge_rt: Runtime) -> None:
    rows = [r for r in json_residents(nudge_root, 400) if 40 <= r["age"] <= 74]
    plain = plain_roster(rows, "472018")
    assert plain is not None
    frame = pd.DataFrame(rows).astype(object).where(lambda f: f.notna(), "").astype(str)
    frame["tenant_code"] = "472018"
    full = check_roster(frame, np.arange(len(frame)))
    assert list(plain) == list(ROSTER_COLUMNS) == list(full.columns)
    assert full.attrs["excluded"]["count"] == 0
    for col in ROSTER_COLUMNS:
        got, want = plain[col], full[col].to_numpy()
        if got.dtype.kind == "f":
            np.testing.assert_array_equal(got, want.astype(float))
        else:
            assert got.tolist() == want.tolist(), col
    model = nudge_rt.models["checkup_nudge"]
    assets, predict = model.assets["nudge.json"], OnnxArmPredictor(model.session)
    P, arm, up = score_matrix(plain, assets, predict)
    P2, arm2, up2 = score_matrix(full, assets, predict)
    np.testing.assert_allclose(P, P2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(up, up2, rtol=0, atol=1e-9)
    assert arm.tolist() == arm2.tolist()
    assert np.isnan(plain["bmi"]).any()  # residents without results took the fast path too


@pytest.mark.parametrize("change", [
    {"age": 39}, {"age": 75}, {"age": "46"}, {"age": 46.5}, {"sex": True}, {"sex": 3},
    {"birth_date": "1980-01-01"}, {"age_fy_end": 46}, {"tenant_code": "472018"},
    {"resident_id": " R-0001"}, {"resident_id": ""}, {"sbp": 500}, {"distance_km": None},
    {"questionnaire_type": "不明"}, {"district": 5},
])
def test_plain_roster_leaves_everything_else_to_check_roster(change: dict[str, Any]) -> None:
    assert plain_roster([{**EXAMPLE_RESIDENT, **change}], "472018") is None


def test_plain_roster_declines_missing_columns_and_duplicate_ids() -> None:
    partial = {k: v for k, v in EXAMPLE_RESIDENT.items() if k != "bmi"}
    assert plain_roster([partial], "472018") is None
    assert plain_roster([EXAMPLE_RESIDENT, EXAMPLE_RESIDENT], "472018") is None
    assert plain_roster([{**EXAMPLE_RESIDENT, "questionnaire_type": ""}],
                        "472018")["questionnaire_type"].tolist() == ["unknown"]


def test_nudge_score_fast_and_full_answer_alike(nudge_root: Path,
                                                nudge_client: TestClient) -> None:
    """The same residents, once plain (fast path) and once with every number written as text
    (check_roster, as before): the same response."""
    rows = [r for r in json_residents(nudge_root, 20) if 40 <= r["age"] <= 74]
    as_text = [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows]
    assert plain_roster(rows, "472018") is not None and plain_roster(as_text, "472018") is None
    fast = nudge_client.post("/v1/checkup_nudge/score", headers=NAHA, json={"residents": rows})
    full = nudge_client.post("/v1/checkup_nudge/score", headers=NAHA,
                             json={"residents": as_text})
    assert fast.status_code == 200 and full.status_code == 200, full.text
    assert fast.json() == full.json()
    one = nudge_client.post("/v1/checkup_nudge/score", headers=NAHA,
                            json={"residents": rows[:1]})
    assert one.json()["results"] == fast.json()["results"][:1]


# ---- the single-row APIs (/score_claim, /score_resident) and their batching ----

def test_score_resident_answers_what_score_answers(nudge_root: Path,
                                                   nudge_client: TestClient) -> None:
    rows = [r for r in json_residents(nudge_root, 40) if 40 <= r["age"] <= 74][:4]
    for resident in [*rows, {**rows[0], "age": 30}]:
        one = nudge_client.post("/v1/checkup_nudge/score_resident", headers=NAHA,
                                json={"resident": resident})
        full = nudge_client.post("/v1/checkup_nudge/score", headers=NAHA,
                                 json={"residents": [resident]})
        assert one.status_code == full.status_code, one.text
        if full.status_code == 200:
            assert one.json() == {"model_version": full.json()["model_version"],
                                  **full.json()["results"][0]}
    assert one.status_code == 422 and one.json() == full.json()  # no one of checkup age


def test_batcher_scores_each_job_as_alone(nudge_root: Path, nudge_rt: Runtime) -> None:
    """Jobs of several tenants queued together on BentoML's dispatcher: each answer is the
    one the job gets alone, a failing job (an unknown district) fails alone, and the jobs
    did share batches."""
    import asyncio

    from fastapi import HTTPException

    from serving import checkup_nudge as nudge
    from serving.batching import Batcher

    rt, model = nudge_rt, nudge_rt.models["checkup_nudge"]
    naha = rt.tenant_for("kyodo-demo-472018")
    rows = [r for r in json_residents(nudge_root, 60) if 40 <= r["age"] <= 74][:24]
    bodies = [nudge.ResidentScoreRequest(resident=r) for r in rows]
    bodies[5] = nudge.ResidentScoreRequest(resident={**rows[5], "district": "472018-ZZZ"})
    alone = []
    for body in bodies:
        try:
            alone.append(nudge.score_one(rt, naha, model, body))
        except HTTPException as exc:
            alone.append(exc.status_code)

    def run(job: tuple[Any, Any, Any]) -> dict[str, Any]:
        return nudge.score_one(rt, *job)

    async def together() -> tuple[list[Any], Batcher]:
        batcher = Batcher(run, max_batch_size=8, max_latency_ms=10_000)
        got = await asyncio.gather(*(batcher((naha, model, b)) for b in bodies),
                                   return_exceptions=True)
        return [g.status_code if isinstance(g, HTTPException) else g for g in got], batcher

    got, batcher = asyncio.run(together())
    assert got == alone and alone[5] == 422
    assert max(batcher.sizes) > 1 and sum(batcher.sizes) == len(bodies)


def test_validation_error_names_the_field() -> None:
    from serving.batching import validation_error

    raw = json.dumps({"error": "1 validation error for ClaimIn", "detail": [
        {"type": "missing", "loc": ["lines", 0, "code"], "msg": "Field required"}]}).encode()
    assert validation_error(raw) == {"error": "lines.0.code: Field required", "errors": [
        {"field": "lines.0.code", "message": "Field required"}]}
    assert validation_error(b"not json")["error"] == "not json"
