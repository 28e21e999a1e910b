from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import JSONResponse

from forge.api.auth import EngineDep, ForgeDep, Reader, Writer
from forge.api.ids import DatasetId, DomainName, JobId
from forge.config import Provider
from forge.domain.job_settings import JobSettings
from forge.services import jobs as service
from forge.services import estimates, runs

router = APIRouter(prefix="/api/v1/forge/jobs", tags=["jobs"])


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: DomainName | None = Field(None, description="Domain to distil; the configured one by default.")
    provider: Provider | None = Field(None, description="FORGE_PROVIDER by default; one of FORGE_ALLOWED_PROVIDERS.")
    settings: JobSettings = Field(default_factory=JobSettings, validation_alias=AliasChoices("settings", "config"),
                                  description="Job settings (`config` is accepted as an older name).")


@router.post("/trigger", status_code=202)
async def trigger_job(body: TriggerIn, request: Request, key: Writer, forge: ForgeDep, engine: EngineDep) -> Any:
    provider = body.provider.value if body.provider else None
    job, started = await runs.trigger(forge, engine, tenant=key.tenant, domain=body.domain or forge.settings.domain,
                                      provider=provider, settings=body.settings)
    url = str(request.url_for("get_job", job_id=job.job_id))
    return JSONResponse({"jobId": job.job_id, "status": job.status.value, "statusUrl": url, "started": started},
                        status_code=202, headers={"Location": url})


class EstimateIn(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    dataset_id: DatasetId | None = Field(None, description="A stored dataset (its train.jsonl is billed).")
    examples: list[dict[str, Any]] | None = Field(None, description="Or chat examples sent inline.")
    model: str | None = Field(None, description="Base model; FORGE_STUDENT_BASE_MODEL by default.")
    epochs: int | None = Field(None, ge=1, description="Epochs; OpenAI's auto choice by default.")


@router.post("/estimate-cost")
def estimate_cost(body: EstimateIn, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Billed tokens, epochs, price and cost of fine-tuning, before a run starts."""
    found = estimates.estimate_for_tenant(forge, key.tenant, dataset_id=body.dataset_id, examples=body.examples,
                                          model=body.model, epochs=body.epochs)
    return {to_camel(k): v for k, v in found.model_dump(mode="json").items()}


@router.post("/{job_id}/cancel", status_code=202)
async def cancel_job(job_id: JobId, key: Writer, forge: ForgeDep, engine: EngineDep) -> dict[str, Any]:
    return (await runs.cancel(forge, engine, key.tenant, job_id)).public()


@router.post("/{job_id}/sync", status_code=202)
async def sync_job(job_id: JobId, key: Writer, forge: ForgeDep, engine: EngineDep) -> dict[str, Any]:
    return (await runs.sync(forge, engine, key.tenant, job_id)).public()


@router.get("")
def list_jobs(
    key: Reader, forge: ForgeDep, limit: int = Query(50, ge=1, le=1000), continuation: str | None = None
) -> dict[str, Any]:
    page = service.list_jobs(forge.storage, key.tenant, limit=limit, continuation=continuation)
    return {"items": [j.public() for j in page.items], "continuation": page.continuation}


@router.get("/{job_id}")
def get_job(job_id: JobId, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    return service.get_job(forge.storage, key.tenant, job_id).public()


@router.get("/{job_id}/events")
def job_events(
    job_id: JobId,
    key: Reader,
    forge: ForgeDep,
    after: int = Query(0, ge=0, description="Only events after this sequence number."),
    limit: int = Query(200, ge=1, le=1000),
    continuation: str | None = None,
) -> dict[str, Any]:
    page = service.job_events(forge.storage, key.tenant, job_id, after=after, limit=limit, continuation=continuation)
    return {"items": [e.public() for e in page.items], "continuation": page.continuation}
