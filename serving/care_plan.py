"""care_plan endpoints: best care plans within the benefit cap, one plan's outcomes, batches."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ConfigDict, Field

from models.care_plan.features import encode_inputs
from models.care_plan.items import CHANGE_JA, OUTCOMES, form
from models.care_plan.plans import Catalogue, Constraints, PlanInputError, limit, plan_vector
from models.care_plan.recommend import (
    LEVEL_COL,
    NOTE_EN,
    NOTE_JA,
    Advisor,
    OnnxPredictor,
    survey_warning,
)
from models.care_plan.schema import SurveyInputError, person_inputs, read_persons
from models.care_plan.suggestions import suggestion_table
from models.configs import Tenant
from serving.audit import subjects
from serving.bounds import MAX_PERSONS_CSV, MAX_ROWS_JSON, RequestModel
from serving.deps import champion, get_runtime, metered, subscribed
from serving.downloads import download
from serving.runtime import LoadedModel, Runtime
from serving.uploads import CSV_UPLOAD, json_or_csv, parse_csv, request_body

TASK = "care_plan"
ASSETS = "plan.json"
router = APIRouter(prefix=f"/v1/{TASK}", tags=[TASK])
Subscriber = Annotated[Tenant, Depends(subscribed(TASK))]
Rt = Annotated[Runtime, Depends(get_runtime)]

EXAMPLE_ITEMS = {**{c: 1 for c in ("1-1-1", "1-1-2", "1-1-3", "1-1-4", "1-1-5", "1-2-1",
                                   "1-2-2", "1-2-3", "1-2-4", "1-3", "1-4", "1-5", "1-6")},
                 "1-7": 2, "1-8": 2, "1-9": 2, "1-10": 2, "1-11": 1, "1-12": 1, "1-13": 2,
                 **{f"2-{k}": 1 for k in range(1, 13)}, "2-10": 2, "2-11": 2, "2-12": 2,
                 **{f"3-{k}": 1 for k in range(1, 10)}, "3-4": 2,
                 **{f"4-{k}": 1 for k in range(1, 16)}, "4-12": 2,
                 **{f"5-{k}": 1 for k in range(1, 7)}, "5-1": 2, "5-2": 2, "5-5": 2, "5-6": 2,
                 **{f"6-{k}": 1 for k in range(1, 13)}}
EXAMPLE_PERSON = {"person_id": "K-0001", "age": 84, "sex": 2, "living_alone": 1,
                  "care_level": "要介護1", "physical_independence": "A1",
                  "dementia_independence": "IIa", "items": EXAMPLE_ITEMS}


class ConstraintsIn(RequestModel):
    """The care manager's limits on candidate plans."""

    model_config = ConfigDict(extra="forbid")
    exclude: list[str] = Field(default_factory=list, max_length=64,
                               description="services to leave out")
    require: list[str] = Field(default_factory=list, max_length=64,
                               description="services every plan must use")
    max_days_per_week: int | None = Field(default=None, ge=0, le=7,
                                          description="通所 days and each weekly service at "
                                                      "most this often")


class SuggestRequest(RequestModel):
    """One person's survey (items by official number) and the constraints."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"person": EXAMPLE_PERSON, "constraints": {"max_days_per_week": 3}}]})
    person: dict[str, Any]
    constraints: ConstraintsIn = ConstraintsIn()
    top: int = Field(default=3, ge=1, le=3)


class PredictRequest(RequestModel):
    """One person's survey and a plan ({service: quantity per week or month})."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"person": EXAMPLE_PERSON,
                      "plan": {"day_service": 2, "home_help_life": 1, "equipment": 1}}]})
    person: dict[str, Any]
    plan: dict[str, Any]


_ADVISORS: dict[str, Advisor] = {}


def advisor(model: LoadedModel) -> Advisor:
    """The model's Advisor (catalogue and change.onnx loaded once per loaded model)."""
    if model.tag not in _ADVISORS:
        assets = model.assets[ASSETS]
        # rank.onnx was opened and smoke-tested when the model was loaded (serving/runtime.py)
        predictor = OnnxPredictor(model.session, assets["classes"], model.extra.get("rank"))
        _ADVISORS[model.tag] = Advisor(Catalogue.from_dict(assets["catalogue"]), assets,
                                       predictor)
    return _ADVISORS[model.tag]


def _person(raw: dict[str, Any], tenant: Tenant) -> tuple[str, np.ndarray]:
    if "tenant_code" in raw and str(raw["tenant_code"]) != tenant.code:
        raise HTTPException(403, f"person.tenant_code: {tenant.name} may only send its own "
                                 f"clients ({tenant.code})")
    try:
        return person_inputs(raw)
    except SurveyInputError as exc:
        raise HTTPException(422, f"person: {exc}") from None


def _envelope(model: LoadedModel, person_id: str, inputs: np.ndarray) -> dict[str, Any]:
    warning = survey_warning(inputs)
    return {"task": TASK, "model_version": model.version, "person_id": person_id,
            "warnings": [warning] if warning else [], "note_ja": NOTE_JA, "note_en": NOTE_EN,
            "change_labels_ja": CHANGE_JA, "outcome_labels": list(OUTCOMES)}


@router.post("/suggest")
def suggest(body: SuggestRequest, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Up to 3 plans within the care level's cap with the best predicted P(improve or maintain),
    their predicted outcomes, cost, co-payment and reasons; the typical plan alongside."""
    model = champion(rt, TASK)
    with metered(rt, tenant, TASK, "suggest", model.version) as meter:
        person_id, inputs = _person(body.person, tenant)
        c = body.constraints
        try:
            result = advisor(model).suggest(
                inputs, Constraints(tuple(c.exclude), tuple(c.require), c.max_days_per_week),
                body.top)
        except PlanInputError as exc:
            raise HTTPException(422, f"constraints: {exc}") from None
        meter["rows"] = result["candidates_scored"]
        meter["subjects"] = subjects(tenant.code, [person_id])
        meter["summary"] = {"care_level": result["care_level"],
                            "candidates": result["candidates_scored"],
                            "plans": [p["plan"] for p in result["plans"]]}
    return {**_envelope(model, person_id, inputs), **result}


@router.post("/predict")
def predict(body: PredictRequest, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Predicted outcomes of one given plan (e.g. the care manager's own) and the typical plan."""
    model = champion(rt, TASK)
    with metered(rt, tenant, TASK, "predict", model.version) as meter:
        person_id, inputs = _person(body.person, tenant)
        adv = advisor(model)
        try:
            q = plan_vector(adv.cat, body.plan)
        except PlanInputError as exc:
            raise HTTPException(422, str(exc)) from None
        level = int(inputs[0, LEVEL_COL])
        plan, typical = adv.details(inputs, np.vstack([q, adv.typical(level)]))
        meter["rows"] = 1
        meter["subjects"] = subjects(tenant.code, [person_id])
        meter["summary"] = {"plan": plan["plan"], "p_worsen": plan["p_worsen"]}
    env = _envelope(model, person_id, inputs)
    if plan["monthly_units"] > plan["cap_units"]:
        over = plan["monthly_units"] - plan["cap_units"]
        env["warnings"].append({
            "field": "plan", "message_ja": f"区分支給限度基準額を {over:,} 単位超えています"
                                           "（超過分は全額自己負担）。",
            "message_en": f"the plan exceeds the monthly cap by {over:,} units (paid fully by "
                          "the client)"})
    plan["vs_typical"] = round(plan["p_improve_or_maintain"] - typical["p_improve_or_maintain"],
                               4)
    return {**env, "plan": plan, "typical_plan": typical}


@router.get("/items")
def items(tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """The survey form (74 items by group with official choices), scales, care levels, and the
    service catalogue of the serving model."""
    out = {"task": TASK, **form()}
    model = rt.models.get(TASK)
    if model is not None:
        cat = advisor(model).cat
        out["services"] = [{"service": n, "name_ja": cat.labels_ja[j], "per": cat.per[j],
                            "unit_ja": cat.unit_ja[j], "grid": list(cat.grids[j]),
                            "max": limit(cat, j)} for j, n in enumerate(cat.names)]
        out["caps"] = {lv: int(v) for lv, v in zip(form()["care_levels"], cat.caps[1:],
                                                    strict=True)}
        out["yen_per_unit"] = cat.yen_per_unit
        out["model_version"] = model.version
    return out


class BatchRequest(RequestModel):
    """Persons as JSON (CSV uploads use the form field 'file' or a text/csv body)."""

    model_config = ConfigDict(extra="forbid")
    persons: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS_JSON)


def _json_persons(rows: list[dict[str, Any]], tenant: Tenant) -> tuple[np.ndarray, np.ndarray]:
    """JSON persons checked like one-person requests; errors name the row (0-based)."""
    ids, inputs = [], []
    for k, raw in enumerate(rows):
        if "tenant_code" in raw and str(raw["tenant_code"]) != tenant.code:
            raise HTTPException(403, f"persons[{k}].tenant_code: {tenant.name} may only send "
                                     f"its own clients ({tenant.code})")
        try:
            pid, x = person_inputs(raw)
        except SurveyInputError as exc:
            raise HTTPException(422, f"persons[{k}]: {exc}") from None
        ids.append(pid)
        inputs.append(x)
    return np.array(ids), np.vstack(inputs)


def _csv_persons(raw: bytes, tenant: Tenant) -> tuple[np.ndarray, np.ndarray]:
    frame = read_persons(raw, tenant.code)
    return frame["person_id"].astype(str).to_numpy(), encode_inputs(frame)


@router.post("/batch", openapi_extra=request_body({"application/json": BatchRequest,
                                                   **CSV_UPLOAD}))
async def batch(request: Request, tenant: Subscriber, rt: Rt,
                format: Annotated[Literal["csv", "csv_cp932", "xlsx"], Query()] = "csv",
                max_days_per_week: Annotated[int | None, Query(ge=0, le=7)] = None,
                exclude: Annotated[str, Query(max_length=2000,
                                               description="comma-separated services")] = "",
                ) -> Response:
    """Many persons (CSV in UTF-8 or Shift_JIS with columns item_1-1-1 .. or 1-1-1 .., or JSON)
    -> the top 3 plans of each with P(improve / maintain / worsen), units, cost and co-payment,
    as a CSV (format=csv|csv_cp932) or Excel (xlsx) file with Japanese headers."""
    model = champion(rt, TASK)
    limits = rt.platform.serving
    if int(request.headers.get("content-length") or 0) > limits.max_upload_mb * 1_000_000:
        raise HTTPException(413, f"upload larger than {limits.max_upload_mb} MB")
    with metered(rt, tenant, TASK, "batch", model.version) as meter:
        body, raw = await json_or_csv(request, BatchRequest, MAX_PERSONS_CSV)
        ids, inputs = (await run_in_threadpool(_json_persons, body.persons, tenant)
                       if body is not None else
                       await parse_csv(raw, lambda b: _csv_persons(b, tenant), "persons CSV"))
        meter["rows"] = len(ids)
        cons = Constraints(tuple(s.strip() for s in exclude.split(",") if s.strip()), (),
                           max_days_per_week)
        try:
            table = await run_in_threadpool(suggestion_table, advisor(model), ids, inputs, cons)
        except PlanInputError as exc:
            raise HTTPException(422, f"constraints: {exc}") from None
        meter["subjects"] = subjects(tenant.code, ids)
        meter["summary"] = {"persons": len(ids), "rows": len(table)}
    return download(table, format, f"care-plans-{tenant.code}")
