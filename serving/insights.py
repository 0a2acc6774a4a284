"""What sharing brought each municipality (pooling gain) and how its inputs drift (PSI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from models.configs import Tenant
from serving.deps import admin, current_tenant, get_runtime
from serving.drift import drift_report
from serving.runtime import Runtime

router = APIRouter(tags=["platform"])
Rt = Annotated[Runtime, Depends(get_runtime)]
HOW = "run `kyodo report pooling` after training"


def load_report(reports: Path) -> tuple[dict[str, Any], str]:
    """The full pooling report, or the per-task pooled vs local figures of the last training
    (no others-only model, no CI) when `kyodo report pooling` has not run yet."""
    path = reports / "pooling.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8")), "kyodo report pooling"
    report: dict[str, Any] = {}
    for metrics in sorted(reports.glob("*/metrics.json")):
        pool = json.loads(metrics.read_text(encoding="utf-8")).get("pooling", {})
        report[metrics.parent.name] = {code: {**r, "others_only": None, "ci_low": None,
                                              "ci_high": None} for code, r in pool.items()}
    if not report:
        raise HTTPException(404, f"no pooling report yet: {HOW}")
    return report, "training metrics (pooled vs local only; " + HOW + " for CIs)"


def _reports(rt: Runtime) -> Path:
    return rt.root / rt.platform.paths.reports


def tenant_view(report: dict[str, dict[str, dict[str, Any]]], code: str) -> dict[str, Any]:
    """What one tenant may see: its own rows and the other tenants' gains without their codes."""
    view: dict[str, Any] = {}
    for name, rows in report.items():
        gains = sorted(r["pooled"] - r["local"] for c, r in rows.items()
                       if c != code and r.get("local") is not None)
        view[name] = {"own": rows.get(code), "others_gain": gains}
    return view


@router.get("/v1/pooling")
def tenant_pooling(rt: Rt, tenant: Tenant = Depends(current_tenant)) -> dict[str, Any]:
    """The calling tenant's pooling gain per task, next to the other tenants' gains
    (pooled - local-only headline, anonymised: no codes, sorted)."""
    report, source = load_report(_reports(rt))
    view = tenant_view({t: rows for t, rows in report.items() if t in tenant.tasks}, tenant.code)
    return {"tenant": tenant.code, "source": source, "tasks": view}


@router.get("/v1/admin/pooling", dependencies=[Depends(admin)])
def admin_pooling(rt: Rt) -> dict[str, Any]:
    """Every tenant's pooled, local-only and others-only headline with the CI (operator)."""
    report, source = load_report(_reports(rt))
    return {"source": source, "tasks": report}


Days = Annotated[float | None, Query(gt=0, le=3650, description="window (default: config)")]


def _drift(rt: Runtime, days: float | None, tenants: list[str] | None) -> dict[str, Any]:
    """The drift report over `days` (default: config) for the current champions."""
    window = days or rt.platform.operations.drift_days
    rt.refresh_models()
    return {"days": window, "threshold": rt.platform.operations.drift_psi_threshold,
            "drift": drift_report(rt, window, tenants)}


@router.get("/v1/drift")
def tenant_drift(rt: Rt, days: Days = None,
                 tenant: Tenant = Depends(current_tenant)) -> dict[str, Any]:
    """PSI of the calling tenant's recent request inputs and scores vs the champion's
    reference, per task (features at or over the threshold are flagged)."""
    return {"tenant": tenant.code, **_drift(rt, days, [tenant.code])}


@router.get("/v1/admin/drift", dependencies=[Depends(admin)])
def admin_drift(rt: Rt, days: Days = None) -> dict[str, Any]:
    """PSI per task and tenant over the last days of requests (operator)."""
    return _drift(rt, days, None)
