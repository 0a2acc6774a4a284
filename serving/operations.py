"""Platform operations routes for every task: costs, Prometheus metrics, audit."""

from __future__ import annotations

from fastapi import APIRouter

from serving import audit, costs, metrics

router = APIRouter()
router.include_router(costs.router)
router.include_router(metrics.router)
router.include_router(audit.router)
