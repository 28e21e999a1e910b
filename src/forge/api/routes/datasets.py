from __future__ import annotations

import tempfile
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.ids import DatasetId, DomainName, JobId
from forge.domain.errors import InvalidInput
from forge.services import datasets as service
from forge.services.curation import CurateRequest, curate

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

_CONTENT_TYPES = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/jsonlines": "jsonl",
                  "text/csv": "csv", "application/json": "json"}


class FromTraces(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    domain: DomainName | None = Field(None, description="The domain; the configured one by default.")
    since: datetime | None = None
    until: datetime | None = Field(None, description="The cut-off: traces before it.")
    max_examples: int | None = Field(None, ge=10, description="Keep at most this many, newest first.")
    valid_share: float = Field(0.1, ge=0, le=0.5)
    seed: int = 42
    job_id: JobId | None = Field(None, description="Build once per job: a repeat returns the same dataset.")


@router.post("", status_code=201)
async def upload_dataset(
    request: Request,
    key: Writer,
    forge: ForgeDep,
    domain: DomainName | None = None,
    format: str | None = Query(None, description="jsonl, csv or json; taken from Content-Type when absent."),
    valid_share: float = Query(0.1, ge=0, le=0.5),
    seed: int = 42,
) -> Any:
    """Upload examples (OpenAI chat JSONL, CSV with prompt/response columns, or a JSON array); they are
    validated, scrubbed of PII, deduplicated, split and stored as a new dataset version."""
    fmt = format or _CONTENT_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip())
    if fmt is None:
        raise InvalidInput("Say what the body is: ?format=jsonl|csv|json, or Content-Type application/x-ndjson, "
                           "text/csv or application/json.")
    with tempfile.TemporaryFile() as body:
        async for chunk in request.stream():  # to disk as it arrives: the body is never held whole
            body.write(chunk)
        body.seek(0)
        result = await run_in_threadpool(service.upload, forge, key.tenant, domain or forge.settings.domain, body,
                                         fmt, valid_share=valid_share, seed=seed)
    return JSONResponse(result.model_dump(mode="json", by_alias=True), status_code=201)


@router.post("/import-from-traces", status_code=201)
def import_from_traces(body: FromTraces, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Curate the tenant's golden traces of a domain into a new dataset version (the same stage a job runs)."""
    request = CurateRequest(tenant=key.tenant, domain=body.domain or forge.settings.domain, job_id=body.job_id,
                            since=body.since, until=body.until, max_examples=body.max_examples,
                            valid_share=body.valid_share, seed=body.seed)
    return curate(forge, request).model_dump(mode="json", by_alias=True)


@router.get("")
def list_datasets(
    key: Reader, forge: ForgeDep, include_deleted: bool = False, limit: int = Query(50, ge=1, le=1000),
    continuation: str | None = None,
) -> dict[str, Any]:
    page = service.list_datasets(forge, key.tenant, include_deleted=include_deleted, limit=limit,
                                 continuation=continuation)
    return {"items": [d.public() for d in page.items], "continuation": page.continuation}


@router.get("/{dataset_id}")
def get_dataset(dataset_id: DatasetId, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """The dataset's record, its stats and a preview of its first training examples."""
    return service.show(forge, key.tenant, dataset_id)


@router.post("/{dataset_id}/validate")
def validate_dataset(dataset_id: DatasetId, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Check the stored train and valid files again, as OpenAI would."""
    reports = service.validate_stored(forge, key.tenant, dataset_id)
    return {"valid": all(r.valid for r in reports.values()), "files": {k: r.as_dict() for k, r in reports.items()}}


@router.delete("/{dataset_id}")
def delete_dataset(dataset_id: DatasetId, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Soft delete: the dataset leaves the lists; its files stay for the models trained on it."""
    return service.delete(forge, key.tenant, dataset_id).public()
