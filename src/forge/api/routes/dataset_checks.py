"""Dataset checks for people: a file's problems by line before it is stored, and a stored dataset's rejects."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from forge.api.auth import ForgeDep, Reader
from forge.api.ids import DatasetId, DomainName
from forge.api.routes.datasets import _CONTENT_TYPES as CONTENT_TYPES
from forge.domain.errors import InvalidInput
from forge.services import dataset_checks as service

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@router.post("/check")
async def check_dataset(
    request: Request,
    key: Reader,
    forge: ForgeDep,
    domain: DomainName | None = None,
    format: str | None = Query(None, description="jsonl, csv or json; taken from Content-Type when absent."),
    valid_share: float = Query(0.1, ge=0, le=0.5),
    seed: int = 42,
) -> dict[str, Any]:
    """Curate a file as `POST /api/v1/datasets` would, and store nothing: counts, each dropped line with its reason,
    PII found, the cost estimate, and whether it has enough examples to upload."""
    fmt = format or CONTENT_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip())
    if fmt is None:
        raise InvalidInput("Say what the body is: ?format=jsonl|csv|json, or Content-Type application/x-ndjson, "
                           "text/csv or application/json.")
    with tempfile.TemporaryFile() as body:
        async for chunk in request.stream():
            body.write(chunk)
        body.seek(0)
        return await run_in_threadpool(service.check_upload, forge, key.tenant, domain or forge.settings.domain,
                                       body, fmt, valid_share=valid_share, seed=seed)


@router.get("/{dataset_id}/rejects")
def dataset_rejects(dataset_id: DatasetId, key: Reader, forge: ForgeDep,
                    limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
    """What curation dropped from this dataset, each with its reason (and line number, for an uploaded file)."""
    return service.stored_rejects(forge, key.tenant, dataset_id, limit=limit)
