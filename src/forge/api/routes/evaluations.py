"""A job's evaluation, example by example: `GET /api/v1/forge/jobs/{id}/evaluation`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from forge.api.auth import ForgeDep, Reader
from forge.api.ids import JobId
from forge.services import candidates

router = APIRouter(prefix="/api/v1/forge/jobs", tags=["jobs"])


@router.get("/{job_id}/evaluation")
def job_evaluation(job_id: JobId, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """The verdict, its reasons, measures and comparisons, and each benchmark task's or held-out example's score
    (the production model's beside it), what it missed, and the judge's outcome."""
    return candidates.results(forge, key.tenant, job_id)
