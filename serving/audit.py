"""The prediction audit trail: who (pseudonymously) was scored by which model, when, with what.

Every metered request writes one audit record in the same transaction as its usage record
(serving/metering.py). Handlers add `meter["subjects"] = subjects(tenant, ids)` and a small
`meter["summary"]`; raw identifiers never reach the store. A tenant reads only its own trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from models.configs import Tenant
from models.costs import JST
from models.pseudonym import pseudonymise
from serving.deps import current_tenant, get_runtime
from serving.runtime import Runtime

MAX_SUBJECTS = 100_000  # one audit record names at most this many people (a month's queue)
router = APIRouter(tags=["platform"])


def subjects(tenant_code: str, raw_ids: Iterable[Any]) -> list[str]:
    """Sorted distinct pseudonyms of the people a request scored (never the raw identifiers)."""
    distinct = sorted({str(x) for x in raw_ids})[:MAX_SUBJECTS]
    return sorted(pseudonymise(tenant_code, x) for x in distinct)


def _day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=JST).timestamp()


@router.get("/v1/audit")
def audit_trail(
    tenant: Annotated[Tenant, Depends(current_tenant)],
    rt: Annotated[Runtime, Depends(get_runtime)],
    date_from: Annotated[date | None, Query(alias="from", description="YYYY-MM-DD, Japan")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
    subject: Annotated[str | None, Query(pattern=r"^[0-9a-f]{20}$",
                                         description="a subject's pseudonym")] = None,
    subject_id: Annotated[str | None, Query(
        min_length=1, max_length=100,
        description="a raw patient/resident id: pseudonymised here, never stored")] = None,
    model_version: Annotated[str | None, Query(max_length=40)] = None,
    task: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """The calling municipality's own audit trail, newest first: time, task, endpoint, model
    version, status, rows, subject pseudonyms and an output summary."""
    if date_from and date_to and date_to < date_from:
        raise HTTPException(422, "to: must not be before from")
    if subject and subject_id:
        raise HTTPException(422, "subject_id: give either subject or subject_id, not both")
    if subject_id:
        subject = pseudonymise(tenant.code, subject_id)
    start = _day_start(date_from) if date_from else None
    end = _day_start(date_to + timedelta(days=1)) if date_to else None
    items = rt.store.audit(tenant.code, start, end, subject, model_version, task, limit)
    for it in items:
        it["time"] = datetime.fromtimestamp(it["ts"], JST).isoformat(timespec="seconds")
    return {"tenant": tenant.code, "retention_days": rt.platform.operations.audit_retention_days,
            "returned": len(items), "items": items}
