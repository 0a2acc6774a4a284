"""claim_screening endpoints: score claims, build a month's review queue, record outcomes."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from models.claim_screening import codes as C
from models.claim_screening import masters, uke
from models.claim_screening.features import Reference
from models.claim_screening.generate import ERROR_TYPES, LINE_COLUMNS
from models.claim_screening.policy import review_queue
from models.claim_screening.schema import KNOWN_CODES, MONTH, code_format_problem, read_claims
from models.claim_screening.scoring import (
    OnnxPredictor,
    Scored,
    contributions,
    flag_summary,
    for_features,
    reason_details,
    reasons_at,
    score_claims,
    unknown_codes_at,
    widen_medians,
)
from models.configs import Tenant
from models.pseudonym import pseudonymise
from serving import drift
from serving.audit import subjects
from serving.bounds import MAX_LINES, MAX_QUEUE_JSON, MAX_SCORE, Count, Days, Points, RequestModel
from serving.deps import champion, get_runtime, metered, subscribed
from serving.downloads import FileFormat, download
from serving.runtime import LoadedModel, Runtime
from serving.uploads import (
    CSV_UPLOAD,
    UkeBody,
    json_or_csv,
    parse_csv,
    request_body,
    uploaded_files,
)

TASK = "claim_screening"
router = APIRouter(prefix=f"/v1/{TASK}", tags=[TASK])
Subscriber = Annotated[Tenant, Depends(subscribed(TASK))]
Rt = Annotated[Runtime, Depends(get_runtime)]


class LineIn(RequestModel):
    """One claim line: a diagnosis (ICD-10), procedure or drug code with quantities. A code of
    the right shape that the code table lacks is scored and flagged in `unknown_codes`."""

    model_config = ConfigDict(extra="forbid")
    line_kind: Literal["diagnosis", "procedure", "drug"]
    code: str = Field(max_length=16, examples=["E11"])
    count: Count = Field(default=0, description="procedure count or drug daily quantity")
    days: Days = Field(default=0, description="drug days")
    points: Points = 0

    @field_validator("code")
    @classmethod
    def _well_formed(cls, v: str, info: ValidationInfo) -> str:
        problem = code_format_problem(info.data.get("line_kind", ""), v)
        if problem:
            raise ValueError(problem)
        return v


class ClaimIn(RequestModel):
    """A claim (レセプト) header with its lines."""

    model_config = ConfigDict(extra="forbid")
    claim_id: str = Field(min_length=1, max_length=64)
    patient_id: str = Field(min_length=1, max_length=128, description="echoed, never stored")
    age: int = Field(ge=0, le=120)
    sex: Literal[1, 2] = Field(description="1 男, 2 女")
    service_month: str = Field(pattern=MONTH, examples=["2026-01"])
    provider_id: str = Field(min_length=1, max_length=64)
    claim_type: Literal["医科入院", "医科入院外", "歯科", "調剤"]
    total_points: Points
    insured_until: str = Field(default="", pattern=r"^$|^\d{4}-(0[1-9]|1[0-2])$")
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)


EXAMPLE_CLAIM = {
    "claim_id": "402303-202601-0000001", "patient_id": "P-000123", "age": 67, "sex": 1,
    "service_month": "2026-01", "provider_id": "402303C0001", "claim_type": "医科入院外",
    "total_points": 465, "insured_until": "",
    # 再診料, ＨｂＡ１ｃ x 3 (上限回数 2), メトホルミン, ゾルピデム 60 days without 睡眠障害
    "lines": [{"line_kind": "diagnosis", "code": "E11"},
              {"line_kind": "procedure", "code": "112007410", "count": 1, "points": 75},
              {"line_kind": "procedure", "code": "160010010", "count": 3, "points": 147},
              {"line_kind": "drug", "code": "622421201", "count": 2, "days": 90,
               "points": 182},
              {"line_kind": "drug", "code": "622134101", "count": 1, "days": 60,
               "points": 61}],
}


class ScoreRequest(RequestModel):
    """Claims to score now."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"claims": [EXAMPLE_CLAIM]}]})
    claims: list[ClaimIn] = Field(min_length=1, max_length=MAX_SCORE)
    explain: bool = Field(default=True, description="include top feature contributions")


class QueueRequest(RequestModel):
    """A month's claims as JSON (CSV uploads use the same endpoint)."""

    model_config = ConfigDict(extra="forbid")
    claims: list[ClaimIn] = Field(min_length=1, max_length=MAX_QUEUE_JSON)
    capacity: float | None = Field(default=None, gt=0, le=1)
    month: str | None = Field(default=None, pattern=MONTH)


class FeedbackItem(RequestModel):
    """A reviewer's outcome for one claim."""

    model_config = ConfigDict(extra="forbid")
    claim_id: str = Field(min_length=1, max_length=64)
    error_confirmed: bool
    recovered_points: Points = 0
    error_type: Literal["", *ERROR_TYPES, "other"] = Field(  # type: ignore[valid-type]
        default="", description="kind of error found; empty when none")
    note: str = Field(default="", max_length=2000)
    queue_id: str | None = Field(default=None, max_length=64)


class FeedbackRequest(RequestModel):
    """Outcomes to record (all or nothing)."""

    model_config = ConfigDict(extra="forbid")
    items: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


def _line_rows(claims: list[ClaimIn], tenant: str) -> list[tuple[Any, ...]]:
    """JSON claims as line tuples (LINE_COLUMNS); duplicate claim ids are a 422."""
    ids = [c.claim_id for c in claims]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i, c in enumerate(ids) if c in seen or seen.add(c))
        raise HTTPException(422, f"claims.{dup}.claim_id: duplicate claim_id {ids[dup]!r} "
                                 f"({len(ids) - len(set(ids))} duplicates in the request)")
    return [(c.claim_id, tenant, c.patient_id, c.age, c.sex, c.service_month, c.provider_id,
             c.claim_type, c.total_points, c.insured_until, no, ln.line_kind, ln.code, ln.count,
             ln.days, ln.points)
            for c in claims for no, ln in enumerate(c.lines, start=1)]


def claims_to_lines(claims: list[ClaimIn], tenant: str) -> pd.DataFrame:
    """JSON claims as the flat line table the scorer reads; duplicate claim ids are a 422."""
    return pd.DataFrame(_line_rows(claims, tenant), columns=LINE_COLUMNS)


def claims_to_columns(claims: list[ClaimIn], tenant: str) -> dict[str, np.ndarray]:
    """claims_to_lines as a dict of column arrays (text as object arrays, numbers as int64),
    which the scorer reads alike (models/claim_screening/rules.py ClaimLines): the JSON /score
    path, where building a DataFrame cost more than scoring one claim."""
    columns = zip(*_line_rows(claims, tenant), strict=True)
    return {name: np.array(values, dtype=object if isinstance(values[0], str) else np.int64)
            for name, values in zip(LINE_COLUMNS, columns, strict=True)}


def _scored(model: LoadedModel, lines: pd.DataFrame | dict[str, np.ndarray],
            as_frame: bool = True) -> tuple[Scored, Any]:
    assets = model.assets["reference.json"]
    predictor = for_features(OnnxPredictor(model.session), assets["features"])
    reference = Reference.from_dict(assets["reference"])
    return score_claims(lines, reference, predictor, as_frame), predictor


def _explain(model: LoadedModel, scored: Scored, rows: np.ndarray, predictor: Any,
             ) -> list[list[dict]]:
    assets = model.assets["reference.json"]
    medians = widen_medians(assets["medians"], assets["features"])
    with drift.paused():  # occluded copies are not what the tenant sent
        return contributions(scored.X[rows], medians, predictor)


def _item(row: dict[str, Any], reasons: list[str], explained: list[dict] | None,
          unknown: list[str]) -> dict[str, Any]:
    return {
        "claim_id": row["claim_id"], "patient_id": row["patient_id"],
        "provider_id": row["provider_id"], "service_month": row["service_month"],
        "claim_type": row["claim_type"], "total_points": int(row["total_points"]),
        "score": round(float(row["score"]), 6),
        "expected_points": round(float(row["expected_points"]), 1),
        "priority": round(float(row["priority"]), 2),
        "reasons": reason_details(reasons),
        "contributions": explained or [],
        "unknown_codes": unknown,
        "new_provider": bool(row["new_provider"]),
    }


# a claims CSV or レセ電 (UKE) files: raw, or in a form (several UKE files: several parts)
UPLOADS = {**CSV_UPLOAD, "application/octet-stream": UkeBody}


@router.post("/score", openapi_extra=request_body({"application/json": ScoreRequest,
                                                   **UPLOADS}))
async def score(request: Request, tenant: Subscriber, rt: Rt,
                explain: Annotated[bool, Query()] = True) -> Response:
    """Score claims (JSON, a claims CSV or a レセ電 UKE file, recognised by content): P(error),
    expected recoverable points, priority, reasons, contributions."""
    model = champion(rt, TASK)
    body, raw = await json_or_csv(request, ScoreRequest)
    lines: pd.DataFrame | dict[str, np.ndarray]
    if body is not None:
        lines, explain, intake = claims_to_columns(body.claims, tenant.code), body.explain, {}
        n_claims = len(body.claims)
    else:
        lines, intake = await _read_upload(request, raw, tenant)
        n_claims = lines["claim_id"].nunique()
    if n_claims > rt.platform.serving.max_claims_json:
        raise HTTPException(413, f"claims: at most {rt.platform.serving.max_claims_json} claims "
                                 "per score call; use /queue for a month's claims")
    if len(lines["claim_id"]) <= INLINE_LINES and not explain:
        result = _score(rt, tenant, model, lines, explain)
    else:
        result = await run_in_threadpool(_score, rt, tenant, model, lines, explain)
    result.update(intake)
    return Response(json.dumps(result, ensure_ascii=False), media_type="application/json")


class Reason(BaseModel):
    """A rule that fired, with its Japanese label and explanation."""

    code: str
    label: str
    explanation: str


class ClaimScore(BaseModel):
    """One claim's score, as /score gives it without contributions."""

    model_version: str
    claim_id: str
    patient_id: str
    provider_id: str
    service_month: str
    claim_type: str
    total_points: int
    score: float = Field(description="P(error)")
    expected_points: float = Field(description="expected recoverable points")
    priority: float
    reasons: list[Reason]
    unknown_codes: list[str]
    new_provider: bool


SCORE_CLAIM = f"/v1/{TASK}/score_claim"


@router.post("/score_claim", response_model=ClaimScore)
async def score_claim(claim: ClaimIn, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Score one claim (the body is the claim itself): /score's figures for a one-claim call
    without contributions. Under `bentoml serve` with serving.batching on, BentoML's adaptive
    batching serves this path (serving/service.py); the answer is the same."""
    return score_one(rt, tenant, champion(rt, TASK), claim)


def score_one(rt: Runtime, tenant: Tenant, model: LoadedModel, claim: ClaimIn,
              ) -> dict[str, Any]:
    """One claim scored and metered exactly as a one-claim /score without explanations
    (ClaimScore's fields); HTTPException as /score raises it."""
    out = _score(rt, tenant, model, claims_to_columns([claim], tenant.code), explain=False)
    item = out["results"][0]
    del item["contributions"]
    return {"model_version": out["model_version"], **item}


# a score of this many lines or fewer, without explanations, runs on the event loop (about a
# millisecond, less than the hop to a worker thread costs); larger ones run in a thread
INLINE_LINES = 64


def _score(rt: Runtime, tenant: Tenant, model: LoadedModel,
           lines: pd.DataFrame | dict[str, np.ndarray], explain: bool) -> dict[str, Any]:
    """Score the lines (a DataFrame from an upload, or claims_to_columns' arrays: the same
    scores), in the order given."""
    with metered(rt, tenant, TASK, "score", model.version) as meter:
        scored, predictor = _scored(model, lines, as_frame=False)
        table = scored.frame
        rows = np.arange(len(scored))
        meter["rows"] = len(rows)
        meter["subjects"] = subjects(tenant.code, table["patient_id"])
        meter["summary"] = {"claims": len(rows),
                            "max_score": round(float(scored.column("score").max()), 4)}
        explained = _explain(model, scored, rows, predictor) if explain else [None] * len(rows)
        records = [dict(zip(table, values, strict=True)) for values in zip(*table.values(),
                                                                            strict=True)]
        results = [_item(row, reasons, why, unknown) for row, reasons, why, unknown in zip(
            records, reasons_at(scored, rows), explained, unknown_codes_at(scored, rows),
            strict=True)]
    months = sorted(set(np.asarray(lines["service_month"], dtype=object).tolist()))
    return {"model_version": model.version, "task": TASK, "results": results,
            "flags": flag_summary(scored), **masters.version_info(months)}


async def _read_upload(request: Request, raw: bytes, tenant: Tenant,
                       ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Claim lines from an uploaded file: a レセ電 (UKE) file when its content starts with an
    IR/YK record (whatever its name), else a claims CSV. A multipart form may carry several UKE
    files (one per 医療機関, as they arrive) in repeated 'file' fields. UKE errors are 422
    naming file, line and field; the import summary goes into the response as `intake`."""
    if not uke.looks_like_uke(raw):
        lines = await parse_csv(raw, read_claims, "claims CSV")
        _own_tenant(lines, tenant)
        return lines, {}
    files = await uploaded_files(request, raw)
    book = masters.in_use()

    def read(_: bytes) -> uke.UkeResult:
        return uke.read_many(files, tenant.code, book, validate=True)

    result = await parse_csv(raw, read, "UKE")
    return result.lines, {"intake": result.summary([name for name, _ in files])}


def _queue(rt: Runtime, tenant: Tenant, model: LoadedModel, lines: pd.DataFrame,
           capacity: float, month: str | None, explain_top: int) -> dict[str, Any]:
    """The month's review queue as the evaluation cuts it (models/claim_screening/policy.py
    `review_queue`); store it."""
    scored, predictor = _scored(model, lines)
    table = scored.frame
    month = month or str(table["service_month"].max())
    in_month = table[table["service_month"] == month]
    if in_month.empty:
        raise HTTPException(422, f"month: no claims with service_month {month} in the upload")
    top = review_queue(in_month, capacity)
    rows, k = top.index.to_numpy(), len(top)
    n_explain = min(explain_top, len(rows))
    explained = _explain(model, scored, rows[:n_explain], predictor) + [None] * (k - n_explain)
    reasons = reasons_at(scored, rows)
    unknown = unknown_codes_at(scored, rows)
    items = []
    for i, row in enumerate(top.to_dict("records")):
        item = {"rank": i + 1, **_item(row, reasons[i], explained[i], unknown[i])}
        item["patient_pseudonym"] = pseudonymise(tenant.code, str(row["patient_id"]))
        items.append(item)
    queue_id = uuid.uuid4().hex[:16]
    rt.store.save_queue(queue_id, tenant.code, TASK, month, len(in_month), capacity,
                        model.version, items)
    return {"queue_id": queue_id, "task": TASK, "model_version": model.version, "month": month,
            "claims_received": len(table), "claims_in_month": len(in_month),
            "capacity": capacity, "queued": k,
            "flags": flag_summary(scored, in_month.index.to_numpy()), "items": items}


def _own_tenant(lines: pd.DataFrame, tenant: Tenant) -> None:
    others = sorted(set(lines["tenant_code"].astype(str)) - {tenant.code})
    if others:
        raise HTTPException(403, "tenant_code: the file holds claims of other municipalities "
                                 f"({', '.join(others[:3])}); {tenant.name} may only submit "
                                 "its own")


@router.post("/queue", openapi_extra=request_body({"application/json": QueueRequest,
                                                   **UPLOADS}))
async def queue(request: Request, tenant: Subscriber, rt: Rt,
                capacity: Annotated[float | None, Query(gt=0, le=1)] = None,
                month: Annotated[str | None, Query(pattern=MONTH)] = None,
                format: Annotated[Literal["json", "csv", "csv_cp932", "xlsx"], Query()] = "json",
                explain_top: Annotated[int, Query(ge=0, le=1000)] = 50) -> Response:
    """A month's review queue from JSON claims, a CSV upload (UTF-8 or Shift_JIS) or a レセ電
    (UKE) file, ranked by priority and cut at capacity (default: the capacity the model was
    evaluated with, shipped in its policy.json). `format=csv` downloads it as CSV."""
    model = champion(rt, TASK)
    limits = rt.platform.serving
    declared = int(request.headers.get("content-length") or 0)
    if declared > limits.max_upload_mb * 1_000_000:
        raise HTTPException(413, f"upload is {declared / 1e6:.0f} MB; "
                                 f"limit {limits.max_upload_mb} MB")
    with metered(rt, tenant, TASK, "queue", model.version) as meter:
        lines, capacity, month, intake = await _read_queue_body(request, capacity, month,
                                                                tenant)
        n_claims = lines["claim_id"].nunique()
        if n_claims > limits.max_claims_per_request:
            raise HTTPException(413, f"{n_claims} claims; limit {limits.max_claims_per_request}")
        meter["rows"] = int(n_claims)
        cap = capacity or model.policy.capacity  # shipped with the model, read at load
        result = await run_in_threadpool(_queue, rt, tenant, model, lines, cap, month,
                                         explain_top)
        meter["subjects"] = subjects(tenant.code, lines["patient_id"])
        meter["summary"] = {k: result[k] for k in ("queue_id", "month", "claims_in_month",
                                                   "capacity", "queued")}
        result.update(intake)
        result.update(masters.version_info([result["month"]]))
    if format != "json":
        return download(_queue_table(result["items"]), format,
                        f"queue-{result['month']}-{result['queue_id']}")
    return Response(json.dumps(result, ensure_ascii=False), media_type="application/json")


async def _read_queue_body(request: Request, capacity: float | None, month: str | None,
                           tenant: Tenant,
                           ) -> tuple[pd.DataFrame, float | None, str | None, dict[str, Any]]:
    """Claims from JSON, or an uploaded CSV or UKE file (raw body or multipart)."""
    body, raw = await json_or_csv(request, QueueRequest)
    if body is not None:
        lines = claims_to_lines(body.claims, tenant.code)
        return lines, body.capacity or capacity, body.month or month, {}
    lines, intake = await _read_upload(request, raw, tenant)
    return lines, capacity, month, intake


def _queue_table(items: list[dict[str, Any]], patient: str = "patient_id") -> pd.DataFrame:
    """The queue with Japanese headers, as reviewers open it in Excel."""
    return pd.DataFrame([{
        "順位": it["rank"], "レセプト番号": it["claim_id"], "患者": it[patient],
        "医療機関": it["provider_id"], "種別": it["claim_type"],
        "請求点数": it["total_points"], "誤りの確率": it["score"],
        "見込み査定点数": it["expected_points"], "優先度": it["priority"],
        "理由": " / ".join(r["label"] for r in it["reasons"]),
        # stored queues from before these flags read as unflagged
        "未登録コード": " ".join(it.get("unknown_codes") or []),
        "新規医療機関": "はい" if it.get("new_provider") else "",
    } for it in items], columns=["順位", "レセプト番号", "患者", "医療機関", "種別", "請求点数",
                                 "誤りの確率", "見込み査定点数", "優先度", "理由", "未登録コード",
                                 "新規医療機関"])


@router.get("/queues")
def queues(tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """The tenant's own review queues, newest first."""
    return {"queues": rt.store.queues(tenant.code, TASK)}


def _stored_queue(rt: Runtime, tenant: Tenant, queue_id: str) -> tuple[dict, list[dict]]:
    items = rt.store.queue_items(tenant.code, queue_id)
    if items is None:
        raise HTTPException(404, f"queue {queue_id} not found")
    return rt.store.queues(tenant.code, TASK, queue_id)[0], items


@router.get("/queues/{queue_id}")
def queue_items(queue_id: str, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """One of the tenant's queues with its items (404 for anyone else's)."""
    meta, items = _stored_queue(rt, tenant, queue_id)
    return {**meta, "items": items}


@router.get("/queues/{queue_id}/download")
def queue_download(queue_id: str, tenant: Subscriber, rt: Rt,
                   format: Annotated[FileFormat, Query()] = "csv",
                   ) -> Response:
    """A stored queue as CSV (UTF-8 BOM or cp932) or .xlsx, without scoring again."""
    _, items = _stored_queue(rt, tenant, queue_id)
    return download(_queue_table(items, "patient_pseudonym"), format, f"queue-{queue_id}")


@router.post("/feedback")
def feedback(body: FeedbackRequest, tenant: Subscriber, rt: Rt) -> dict[str, Any]:
    """Record reviewer outcomes; they become next month's training labels."""
    model = rt.models.get(TASK)
    with metered(rt, tenant, TASK, "feedback", model.version if model else None) as meter:
        items = [{**it.model_dump(), "model_version": model.version if model else None}
                 for it in body.items]
        meter["rows"] = rt.store.save_feedback(tenant.code, TASK, items)
    return {"recorded": len(items)}


@router.get("/feedback")
def feedback_list(tenant: Subscriber, rt: Rt,
                  queue_id: Annotated[str | None, Query(max_length=64)] = None,
                  ) -> dict[str, Any]:
    """The tenant's own recorded outcomes, optionally of one queue."""
    return {"items": rt.store.feedback(tenant.code, TASK, queue_id)}


@router.get("/codes")
def code_names(tenant: Subscriber) -> dict[str, str]:
    """Japanese names of every code, for the reviewer page."""
    return {code: C.item_name(code) for code in sorted(KNOWN_CODES)}
