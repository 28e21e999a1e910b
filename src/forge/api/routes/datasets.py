from __future__ import annotations

import tempfile
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.contract import problems
from forge.api.ids import DatasetId, DomainName
from forge.api.pagination import PagingDep
from forge.api.schemas import DatasetBuilt, DatasetDetail, DatasetStats, DatasetView, FromTraces, Labels, Page
from forge.domain.errors import DatasetInvalid, ForgeError, InvalidInput
from forge.services import datasets as service
from forge.services import labels, summaries
from forge.services.curation import CurateRequest, curate

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

_CONTENT_TYPES = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/jsonlines": "jsonl",
                  "text/csv": "csv", "application/json": "json"}
Format = Literal["jsonl", "csv", "json"]
_LINES = {"type": "string", "format": "binary",
          "description": "OpenAI chat fine-tuning JSONL: one `{\"messages\": [...]}` a line (or `{prompt, response}`)."}
# The body of an upload (and of a check): a file in one of these types; `?format=` says which when the type cannot.
FILE_BODY: dict[str, Any] = {"requestBody": {"required": True, "description": "The examples, as a file.", "content": {
    "application/x-ndjson": {"schema": _LINES}, "application/jsonl": {"schema": _LINES},
    "application/jsonlines": {"schema": _LINES},
    "text/csv": {"schema": {"type": "string", "format": "binary", "description": "A header row naming prompt and "
                            "response (system and score optional), then one example a row."}},
    "application/json": {"schema": {"type": "array", "items": {},
                                    "description": "An array of examples (chat or prompt/response); each is checked "
                                                   "on its own, so an item of any shape is taken and reported."}},
}}}
FORMAT = Query(None, description="jsonl, csv or json; taken from Content-Type when absent.")
VALID_SHARE = Query(0.1, ge=0, le=0.5, description="Share of examples held out for validation.")
SEED = Query(42, ge=0, le=2**32 - 1, description="Seeds the train/validation split.")


class NotEnoughTraces(ForgeError):
    status = 409
    title = "Not enough golden traces"


def body_format(request: Request, given: str | None) -> str:
    fmt = given or _CONTENT_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip().lower())
    if fmt is None:
        raise InvalidInput("Say what the body is: ?format=jsonl|csv|json, or Content-Type application/x-ndjson, "
                           "text/csv or application/json.")
    return fmt


@router.post("", status_code=201, response_model=DatasetBuilt, openapi_extra=FILE_BODY, responses=problems(404, 409))
async def upload_dataset(request: Request, key: Writer, forge: ForgeDep, domain: DomainName | None = None,
                         format: Format | None = FORMAT, valid_share: float = VALID_SHARE,
                         seed: int = SEED) -> Any:
    """Upload examples (OpenAI chat JSONL, CSV with prompt/response columns, or a JSON array); they are validated,
    scrubbed of PII, deduplicated, split and stored as a new dataset version. A file with too few usable examples
    is a 422 that says why (`POST /api/v1/datasets/check` lists each dropped line)."""
    fmt = body_format(request, format)
    with tempfile.TemporaryFile() as body:
        async for chunk in request.stream():  # to disk as it arrives: the body is never held whole
            body.write(chunk)
        body.seek(0)
        result = await run_in_threadpool(service.upload, forge, key.tenant, domain or forge.settings.domain, body,
                                         fmt, valid_share=valid_share, seed=seed)
    return JSONResponse(result.model_dump(mode="json", by_alias=True), status_code=201)


@router.post("/import-from-traces", status_code=201, response_model=DatasetBuilt, responses=problems(404, 409))
def import_from_traces(body: FromTraces, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Curate the tenant's golden traces of a domain into a new dataset version (the same stage a job runs); a 409
    when too few golden traces survive curation (import or approve more, then retry)."""
    request = CurateRequest(tenant=key.tenant, domain=body.domain or forge.settings.domain, job_id=body.job_id,
                            since=body.since, until=body.until, max_examples=body.max_examples,
                            valid_share=body.valid_share, seed=body.seed)
    try:
        return curate(forge, request).model_dump(mode="json", by_alias=True)
    except DatasetInvalid as exc:  # the traces stored now are too few: the same request can succeed later
        raise NotEnoughTraces(str(exc)) from None


@router.get("", response_model=Page[DatasetView])
def list_datasets(key: Reader, forge: ForgeDep, paging: PagingDep,
                  include_deleted: bool = Query(False, description="Also list deleted datasets.")) -> dict[str, Any]:
    """The tenant's datasets, oldest first."""
    page = service.list_datasets(forge, key.tenant, include_deleted=include_deleted, limit=paging.limit,
                                 continuation=paging.continuation)
    return {"items": [d.public() for d in page.items], "continuation": page.continuation}


@router.get("/stats", response_model=DatasetStats)
def dataset_stats(key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Counts by state, domain and source; examples and tokens; the estimated cost of a run on each; how many jobs
    and models used them."""
    return summaries.dataset_stats(forge, key.tenant)


@router.get("/{dataset_id}", response_model=DatasetDetail)
def get_dataset(dataset_id: DatasetId, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """The dataset's record, its stats and a preview of its first training examples."""
    return service.show(forge, key.tenant, dataset_id)


@router.put("/{dataset_id}", response_model=DatasetView, responses=problems(409))
def update_dataset(dataset_id: DatasetId, body: Labels, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Name, describe or tag the dataset; only the fields sent change (null clears a name or description)."""
    return labels.label_dataset(forge, key.tenant, dataset_id, body).public()


@router.post("/{dataset_id}/validate")
def validate_dataset(dataset_id: DatasetId, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Check the stored train and valid files again, as OpenAI would."""
    reports = service.validate_stored(forge, key.tenant, dataset_id)
    return {"valid": all(r.valid for r in reports.values()), "files": {k: r.as_dict() for k, r in reports.items()}}


@router.delete("/{dataset_id}", response_model=DatasetView, responses=problems(409))
def delete_dataset(dataset_id: DatasetId, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Soft delete: the dataset leaves the lists; its files stay for the models trained on it."""
    return service.delete(forge, key.tenant, dataset_id).public()
