"""Cost sharing over HTTP: a tenant's own monthly bill, the operator's bills for all tenants."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from models.configs import Tenant
from models.costs import bill_table, month_of, month_range, monthly_bills
from serving.deps import admin, current_tenant, get_runtime
from serving.downloads import download
from serving.runtime import Runtime

router = APIRouter(tags=["platform"])
Rt = Annotated[Runtime, Depends(get_runtime)]
Month = Annotated[str | None, Query(description="YYYY-MM (Japan time); default this month")]
Format = Annotated[Literal["json", "csv", "csv_cp932", "xlsx"], Query()]


def _month(month: str | None) -> str:
    month = month or month_of(time.time())
    try:
        month_range(month)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return month


@router.get("/v1/admin/costs", dependencies=[Depends(admin)])
def all_costs(rt: Rt, month: Month = None, format: Format = "json") -> Any:
    """Every tenant's bill by task, stand-alone estimate and saving (admin key).
    `format=csv|csv_cp932|xlsx` downloads the table."""
    result = monthly_bills(rt.store, rt.platform.costs, rt.tenants.tenants, _month(month))
    if format != "json":
        return download(bill_table(result["bills"]), format, f"costs-{result['month']}")
    return result


@router.get("/v1/costs")
def own_costs(tenant: Annotated[Tenant, Depends(current_tenant)], rt: Rt,
              month: Month = None, format: Format = "json") -> Any:
    """The calling municipality's own bill by task, its stand-alone estimate and saving."""
    result = monthly_bills(rt.store, rt.platform.costs, rt.tenants.tenants, _month(month))
    bill = result["bills"].get(tenant.code)
    if bill is None:
        raise HTTPException(404, f"{tenant.name} subscribes to no task, so it has no bill")
    if format != "json":
        return download(bill_table({tenant.code: bill}), format,
                        f"costs-{result['month']}-{tenant.code}")
    return {"month": result["month"], "currency": "JPY", "tenant": tenant.code, "bill": bill,
            "pools_yen": result["pools_yen"]}
