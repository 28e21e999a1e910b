"""Read-only views the dashboard needs that the resource APIs do not give: the overview and the domains' settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from forge.api.auth import ForgeDep, Reader
from forge.services import insights as service

router = APIRouter(prefix="/api/v1/insights", tags=["dashboard"])


@router.get("/overview")
def overview(key: Reader, forge: ForgeDep, days: int = Query(14, ge=1, le=92)) -> dict[str, Any]:
    """Per domain: traces, golden traces and routed requests per day (UTC), who serves, the last job, the saving
    against the teacher at the configured prices; and alerts (failed jobs, refused promotions)."""
    return service.overview(forge, key.tenant, days=days)


@router.get("/domains")
def domains(key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """The tenant's domains (its own and the templates): description, system prompt, filters, scoring, gates,
    routing, task and eval set; `/api/v1/domains` manages them."""
    return {"items": service.domains(forge, key.tenant)}
