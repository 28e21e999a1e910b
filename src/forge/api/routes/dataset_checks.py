"""Dataset checks for people: a file's problems by line before it is stored, and a stored dataset's rejects."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from forge.api.auth import ForgeDep, Reader
from forge.api.ids import DatasetId, DomainName
from forge.api.contract import problems
from forge.api.routes.datasets import FILE_BODY, FORMAT, SEED, VALID_SHARE, Format, body_format
from forge.services import dataset_checks as service

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


# A check takes any bytes and reports what is wrong with them, so a JSON body may be any JSON at all.
CHECK_BODY = {"requestBody": {**FILE_BODY["requestBody"], "content": {
    **FILE_BODY["requestBody"]["content"], "application/json": {"schema": {
        "description": "An array of examples; anything else is reported as the problem it is."}}}}}


@router.post("/check", openapi_extra=CHECK_BODY, responses=problems(404))
async def check_dataset(request: Request, key: Reader, forge: ForgeDep, domain: DomainName | None = None,
                        format: Format | None = FORMAT, valid_share: float = VALID_SHARE,
                        seed: int = SEED) -> dict[str, Any]:
    """Curate a file as `POST /api/v1/datasets` would, and store nothing: counts, each dropped line with its reason,
    PII found, the cost estimate, and whether it has enough examples to upload."""
    fmt = body_format(request, format)
    with tempfile.TemporaryFile() as body:
        async for chunk in request.stream():
            body.write(chunk)
        body.seek(0)
        return await run_in_threadpool(service.check_upload, forge, key.tenant, domain or forge.settings.domain,
                                       body, fmt, valid_share=valid_share, seed=seed)


@router.get("/{dataset_id}/rejects")
def dataset_rejects(dataset_id: DatasetId, key: Reader, forge: ForgeDep,
                    limit: int = Query(200, ge=1, le=1000, description="Rejects listed at most.")) -> dict[str, Any]:
    """What curation dropped from this dataset, each with its reason (and line number, for an uploaded file)."""
    return service.stored_rejects(forge, key.tenant, dataset_id, limit=limit)
