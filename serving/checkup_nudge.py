"""checkup_nudge endpoints: 特定健診 outreach lists and per-arm attendance predictions."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from models.checkup_nudge.arms import ARM_LABELS_JA, ARMS, arm_costs
from models.checkup_nudge.checkup_xml import (
    CheckupXmlError,
    CheckupXmlTooLarge,
    looks_like_xml,
    looks_like_zip_of_xml,
    read_results,
)
from models.checkup_nudge.schema import (
    RosterInputError,
    check_roster,
    plain_roster,
    read_roster,
)
from models.checkup_nudge.scoring import (
    OnnxArmPredictor,
    gain_curve,
    list_table,
    plan_outreach,
    score_matrix,
    score_residents,
    unknown_districts,
)
from models.configs import Tenant
from serving.audit import subjects
from serving.bounds import MAX_ROSTER_CSV, MAX_ROWS_JSON, MAX_SCORE, RequestModel, Yen
from serving.deps import champion, get_runtime, metered, subscribed
from serving.downloads import download
from serving.runtime import LoadedModel, Runtime
from serving.uploads import (
    CSV_UPLOAD,
    Upload,
    json_or_csv,
    parse_csv,
    request_body,
    uploaded_files,
)

TASK = "checkup_nudge"
ASSETS = "nudge.json"
router = APIRouter(prefix=f"/v1/{TASK}", tags=[TASK])
Subscriber = Annotated[Tenant, Depends(subscribed(TASK))]
Rt = Annotated[Runtime, Depends(get_runtime)]

EXAMPLE_RESIDENT = {
    "resident_id": "R-0001", "age": 46, "sex": 1, "district": "472018-D01", "attended_y1": 0,
    "attended_y2": 1, "attended_y3": 0, "bmi": 26.1, "sbp": 138, "hba1c": 5.9, "ldl": 142,
    "outpatient_visits": 2, "has_hypertension": 1, "has_diabetes": 0, "has_dyslipidemia": 1,
    "distance_km": 3.2, "household_size": 1, "questionnaire_type": "面倒くさがり",
}


class Costs(RequestModel):
    """Postcard costs in yen; `per_arm` overrides the cost of single message types."""

    model_config = ConfigDict(extra="forbid")
    postage_yen: Yen = 85.0
    printing_yen: Yen = 15.0
    per_arm: dict[str, Yen] = Field(default_factory=dict, max_length=32)


class ScoreRequest(RequestModel):
    """Residents to score (roster columns; tenant_code is taken from the API key)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"residents": [EXAMPLE_RESIDENT]}]})
    residents: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_SCORE)
    allow_new_districts: bool = False


class OutreachRequest(RequestModel):
    """A roster as JSON with the campaign budget (CSV uploads use query parameters)."""

    model_config = ConfigDict(extra="forbid")
    residents: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS_JSON)
    budget_yen: Yen | None = None
    postcards: int | None = Field(default=None, ge=0, le=MAX_ROWS_JSON)
    costs: Costs = Costs()


def _frame(rows: list[dict[str, Any]], tenant: Tenant) -> pd.DataFrame:
    """JSON residents checked like a file roster (schema.check_roster: the fiscal-year age
    rule, then validation); errors and `attrs["excluded"]` name rows 0-based."""
    frame = pd.DataFrame(rows).astype(object).where(lambda f: f.notna(), "")
    frame = frame.astype(str)
    if "tenant_code" in frame and (frame["tenant_code"] != tenant.code).any():
        raise HTTPException(403, f"residents.tenant_code: {tenant.name} may only send its own "
                                 f"residents ({tenant.code})")
    frame["tenant_code"] = tenant.code
    try:
        return check_roster(frame, np.arange(len(frame)))
    except RosterInputError as exc:
        raise HTTPException(422, f"residents: {exc}") from None


def check_districts(residents: pd.DataFrame, assets: dict[str, Any],
                    row_offset: int | np.ndarray) -> None:
    """422 naming the rows whose district the model never saw for the municipality."""
    problem = unknown_districts(residents, assets, row_offset)
    if problem:
        raise HTTPException(422, f"{problem} (allow_new_districts=true)")


def _scored(model: LoadedModel, residents: pd.DataFrame) -> pd.DataFrame:
    return score_residents(residents, model.assets[ASSETS], OnnxArmPredictor(model.session))


# a small roster whose values are plain (schema.plain_roster) is scored on the event loop: about
# a millisecond, less than the hop to a worker thread; others take the full check in a thread
INLINE_ROWS = 32
NONE_EXCLUDED = {"count": 0, "rows": [], "message": ""}


@router.post("/score")
async def score(body: ScoreRequest, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Per resident: P(attend) under every message type, uplift over none, the best type.
    Residents outside the 特定健診 ages are left out and listed under `excluded` (0-based)."""
    model = champion(rt, TASK)
    plain = (plain_roster(body.residents, tenant.code)
             if len(body.residents) <= INLINE_ROWS else None)
    if plain is not None:
        return _score(rt, tenant, model, body, plain)
    return await run_in_threadpool(_score, rt, tenant, model, body, None)


def _score(rt: Runtime, tenant: Tenant, model: LoadedModel, body: ScoreRequest,
           plain: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """Score the residents: `plain` when schema.plain_roster took them as they are (the same
    columns check_roster gives them), else through check_roster (`_frame`)."""
    with metered(rt, tenant, TASK, "score", model.version) as meter:
        if plain is None:
            frame = _frame(body.residents, tenant)
            residents, lines, excluded = frame, frame.attrs["lines"], frame.attrs["excluded"]
        else:
            residents = plain
            lines, excluded = np.arange(len(body.residents)), dict(NONE_EXCLUDED, rows=[])
        if not body.allow_new_districts:
            check_districts(residents, model.assets[ASSETS], lines)
        P, arm, up = score_matrix(residents, model.assets[ASSETS],
                                  OnnxArmPredictor(model.session))
        ids = np.asarray(residents["resident_id"], dtype=object)
        best = [ARMS[k] for k in arm]
        meter["rows"] = len(ids)
        meter["subjects"] = subjects(tenant.code, ids)
        meter["summary"] = {"residents": len(ids), "best_arm": dict(Counter(best).most_common())}
    results = []
    for i, resident in enumerate(ids):
        p = {a: round(float(P[i, k]), 5) for k, a in enumerate(ARMS)}
        results.append({"resident_id": resident, "probabilities": p,
                        "uplift": {a: round(p[a] - p["none"], 5) for a in ARMS[1:]},
                        "best_arm": best[i], "best_arm_ja": ARM_LABELS_JA[best[i]],
                        "best_uplift": round(float(up[i]), 5)})
    return {"task": TASK, "model_version": model.version, "arms": list(ARMS),
            "arm_labels_ja": ARM_LABELS_JA, "results": results, "excluded": excluded}


class ResidentScoreRequest(RequestModel):
    """One resident to score (roster columns; tenant_code is taken from the API key)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"resident": EXAMPLE_RESIDENT}]})
    resident: dict[str, Any]
    allow_new_districts: bool = False


class ResidentScore(BaseModel):
    """One resident's P(attend) per message type, as /score gives it."""

    model_version: str
    resident_id: str
    probabilities: dict[str, float]
    uplift: dict[str, float] = Field(description="over no message, per message type")
    best_arm: str
    best_arm_ja: str
    best_uplift: float


SCORE_RESIDENT = f"/v1/{TASK}/score_resident"


@router.post("/score_resident", response_model=ResidentScore)
async def score_resident(body: ResidentScoreRequest, tenant: Subscriber, rt: Rt,
                         ) -> dict[str, Any]:
    """Score one resident: /score's figures for a one-resident call (a resident outside the
    特定健診 ages is a 422, as /score says when no one is left). Under `bentoml serve`
    with serving.batching on, BentoML's adaptive batching serves this path
    (serving/service.py); the answer is the same."""
    return score_one(rt, tenant, champion(rt, TASK), body)


def score_one(rt: Runtime, tenant: Tenant, model: LoadedModel, body: ResidentScoreRequest,
              ) -> dict[str, Any]:
    """One resident scored and metered exactly as a one-resident /score (ResidentScore's
    fields); HTTPException as /score raises it."""
    one = ScoreRequest(residents=[body.resident], allow_new_districts=body.allow_new_districts)
    out = _score(rt, tenant, model, one, plain_roster(one.residents, tenant.code))
    return {"model_version": out["model_version"], **out["results"][0]}


def _budget(budget_yen: float | None, postcards: int | None, costs: dict[str, float],
            n: int, per_resident: float) -> tuple[float, str]:
    """Budget in yen and where it came from: given, postcards x the standard postcard, or the
    configured default per resident."""
    if budget_yen is not None and postcards is not None:
        raise ValueError("give either budget_yen or postcards, not both")
    if budget_yen is not None:
        return budget_yen, "budget_yen"
    if postcards is not None:
        return postcards * costs["standard"], "postcards"
    return per_resident * n, f"default ({per_resident:g} yen per resident)"


def _plan(model: LoadedModel, residents: pd.DataFrame, budget: float | None,
          postcards: int | None, costs: Costs) -> tuple[pd.DataFrame, dict[str, Any]]:
    assets = model.assets[ASSETS]
    try:
        prices = arm_costs(costs.postage_yen, costs.printing_yen, costs.per_arm)
        scored = _scored(model, residents)
        yen, source = _budget(budget, postcards, prices, len(scored),
                              assets["budget_yen_per_resident"])
        listing, summary = plan_outreach(scored, yen, prices, assets.get("policy"))
    except ValueError as exc:
        raise HTTPException(422, f"budget/costs: {exc}") from None
    summary["budget_source"] = source
    steps = [yen * f for f in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)]
    summary["gain_curve"] = gain_curve(scored, prices, steps, assets.get("policy"))
    summary["costs"] = prices
    summary["arm_labels_ja"] = ARM_LABELS_JA
    return listing, summary


async def _roster(request: Request, tenant: Tenant) -> tuple[pd.DataFrame, OutreachRequest | None]:
    """The roster from JSON, a raw CSV body or a multipart upload; 特定健診 XML files (or ZIPs
    of them) sent with a roster file in the same form are merged into it (see _with_xml)."""
    body, raw = await json_or_csv(request, OutreachRequest, MAX_ROSTER_CSV)
    if body is not None:
        return await run_in_threadpool(_frame, body.residents, tenant), body
    assert raw is not None
    files = await uploaded_files(request, raw)
    is_xml = [looks_like_xml(b) or looks_like_zip_of_xml(b) for _, b in files]
    if not any(is_xml):
        return await parse_csv(raw, lambda b: read_roster(b, tenant.code), "roster CSV"), None
    xml = [f for f, x in zip(files, is_xml, strict=True) if x]
    tables = [f for f, x in zip(files, is_xml, strict=True) if not x]
    return await _with_xml(tenant, xml, tables), None


async def _with_xml(tenant: Tenant, xml: list[tuple[str, bytes]],
                    tables: list[tuple[str, bytes]]) -> pd.DataFrame:
    """The one roster file with bmi/sbp/hba1c/ldl filled from the 特定健診 XML (recognised by
    content, not by name). The XML alone is not a roster: it carries sex, birth date and the
    results, but not district, past attendance, visits, household or distance, which the
    model needs; so a roster file is required. 413 for a ZIP over the limits, 422 naming the
    file (ZIP/member.xml) for malformed XML."""
    if len(tables) != 1:
        raise HTTPException(422, "file: 特定健診XMLと一緒に名簿ファイル（CSV/xlsx）を1つ送って"
                                 f"ください（{len(tables)}個） / send exactly one roster file "
                                 f"(CSV/xlsx) with the 特定健診 XML, got {len(tables)}: the XML "
                                 "has no district, past attendance or household fields")
    try:
        results = await run_in_threadpool(read_results, xml, tenant.code)
    except CheckupXmlTooLarge as exc:
        raise HTTPException(413, f"特定健診 XML: {exc}") from None
    except CheckupXmlError as exc:
        raise HTTPException(422, f"特定健診 XML: {exc}") from None
    name, raw = tables[0]
    return await parse_csv(Upload.named(raw, name),
                           lambda b: read_roster(b, tenant.code, results=results),
                           "roster CSV")


@router.post("/outreach", openapi_extra=request_body({"application/json": OutreachRequest,
                                                      **CSV_UPLOAD}))
async def outreach(request: Request, tenant: Subscriber, rt: Rt,
                   budget_yen: Annotated[float | None,
                                         Query(ge=0, le=1e12, allow_inf_nan=False)] = None,
                   postcards: Annotated[int | None, Query(ge=0, le=MAX_ROSTER_CSV)] = None,
                   postage_yen: Annotated[float, Query(ge=0, le=1e6, allow_inf_nan=False)] = 85.0,
                   printing_yen: Annotated[float, Query(ge=0, le=1e6, allow_inf_nan=False)] = 15.0,
                   format: Annotated[Literal["json", "csv", "csv_cp932", "xlsx"],
                                     Query()] = "json",
                   include_all: Annotated[bool, Query()] = False,
                   allow_new_districts: Annotated[bool, Query()] = False,
                   limit: Annotated[int, Query(ge=0, le=100_000)] = 1000) -> Response:
    """The outreach list for a roster (CSV in UTF-8 or Shift_JIS, or JSON) and a budget in yen
    or postcards: who gets which reminder, expected attendees gained, and the two baselines.
    特定健診 XML files or ZIPs sent in the same form (field 'file', several parts) fill the
    roster's BMI, blood pressure, HbA1c and LDL (summary.checkup_xml counts the merge).
    `format=csv|csv_cp932|xlsx` downloads the list with Japanese headers."""
    model = champion(rt, TASK)
    limits = rt.platform.serving
    if int(request.headers.get("content-length") or 0) > limits.max_upload_mb * 1_000_000:
        raise HTTPException(413, f"file: 送信データが上限 {limits.max_upload_mb} MB を超えて"
                                 "います。特定健診XMLはZIPにまとめるか、年度の全件は "
                                 "kyodo nudge import-xml で読み込んでください / upload larger "
                                 f"than {limits.max_upload_mb} MB (serving.max_upload_mb)")
    with metered(rt, tenant, TASK, "outreach", model.version) as meter:
        residents, body = await _roster(request, tenant)
        meter["rows"] = len(residents)
        if not allow_new_districts:
            check_districts(residents, model.assets[ASSETS], residents.attrs.get("lines", 2))
        costs = body.costs if body else Costs(postage_yen=postage_yen, printing_yen=printing_yen)
        budget = body.budget_yen if body and body.budget_yen is not None else budget_yen
        cards = body.postcards if body and body.postcards is not None else postcards
        listing, summary = await run_in_threadpool(_plan, model, residents, budget, cards, costs)
        summary["excluded"] = residents.attrs.get("excluded", {"count": 0, "rows": [],
                                                               "message": ""})
        if "checkup_xml" in residents.attrs:
            summary["checkup_xml"] = residents.attrs["checkup_xml"]
        meter["subjects"] = subjects(tenant.code, residents["resident_id"])
        meter["summary"] = {k: summary.get(k) for k in ("residents", "mailed", "budget_yen",
                                                        "expected_additional_attendees")}
    if format != "json":
        return download(list_table(listing, include_all), format, f"outreach-{tenant.code}")
    chosen = listing if include_all else listing[listing["mailed"]]
    items = chosen.head(limit).to_dict("records")
    payload = {"task": TASK, "model_version": model.version, "summary": summary,
               "items": items, "items_total": len(chosen), "items_returned": len(items)}
    return Response(json.dumps(payload, ensure_ascii=False, default=_jsonable),
                    media_type="application/json")


def _jsonable(value: Any) -> Any:
    """numpy scalars in the listing as plain JSON numbers and booleans."""
    return value.item() if hasattr(value, "item") else str(value)
