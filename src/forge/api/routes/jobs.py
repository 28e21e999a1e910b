from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from forge.api.auth import ForgeDep, Reader
from forge.services import jobs as service

router = APIRouter(prefix="/api/v1/forge/jobs", tags=["jobs"])


@router.get("")
def list_jobs(
    key: Reader, forge: ForgeDep, limit: int = Query(50, ge=1, le=1000), continuation: str | None = None
) -> dict[str, Any]:
    page = service.list_jobs(forge.storage, key.tenant, limit=limit, continuation=continuation)
    return {"items": [j.public() for j in page.items], "continuation": page.continuation}


@router.get("/{job_id}")
def get_job(job_id: str, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    return service.get_job(forge.storage, key.tenant, job_id).public()


@router.get("/{job_id}/events")
def job_events(
    job_id: str,
    key: Reader,
    forge: ForgeDep,
    after: int = Query(0, ge=0, description="Only events after this sequence number."),
    limit: int = Query(200, ge=1, le=1000),
    continuation: str | None = None,
) -> dict[str, Any]:
    page = service.job_events(forge.storage, key.tenant, job_id, after=after, limit=limit, continuation=continuation)
    return {"items": [e.public() for e in page.items], "continuation": page.continuation}
