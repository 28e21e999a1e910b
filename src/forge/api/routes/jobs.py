from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse

from forge.api.auth import EngineDep, ForgeDep, Reader, Writer
from forge.api.contract import problems
from forge.api.ids import JobId
from forge.api.pagination import PagingDep
from forge.api.schemas import (Estimate, EstimateIn, JobAccepted, JobEventView, JobIn, JobView, Labels, Page,
                               TriggerIn)
from forge.domain.errors import InvalidInput
from forge.domain.models import DistillationJob
from forge.services import estimates, labels, runs
from forge.services import jobs as service

router = APIRouter(prefix="/api/v1/forge/jobs", tags=["jobs"])
ACCEPTED = {"description": "The job was stored and its run started; follow it at `statusUrl` (also `Location`).",
            "headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}}}


def _accepted(request: Request, job: DistillationJob, started: bool) -> JSONResponse:
    url = str(request.url_for("get_job", job_id=job.job_id))
    body = {"jobId": job.job_id, "status": job.status.value, "statusUrl": url, "started": started, "job": job.public()}
    return JSONResponse(body, status_code=202, headers={"Location": url})


@router.post("", status_code=202, response_model=JobAccepted, responses={202: ACCEPTED, **problems(403, 404, 503)})
async def create_job(body: JobIn, request: Request, key: Writer, forge: ForgeDep, engine: EngineDep) -> Any:
    """Fine-tune on a stored dataset: the run starts at upload (no gather, no curate), then trains, evaluates on the
    domain's eval set (else the dataset's validation split) and promotes by the domain's gates. The job carries the
    cost estimate before anything is spent."""
    settings = body.settings
    if body.base_model:
        if settings.base_model is not None:
            raise InvalidInput("baseModel and settings.base_model both name the base model; send it once.")
        settings = settings.model_copy(update={"base_model": body.base_model})
    job, started = await runs.trigger(
        forge, engine, tenant=key.tenant, domain=body.domain, provider=body.provider, settings=settings,
        dataset_id=body.dataset_id,
        labels={"name": body.name, "description": body.description, "tags": body.tags})
    return _accepted(request, job, started)


@router.post("/trigger", status_code=202, response_model=JobAccepted,
             responses={202: ACCEPTED, **problems(403, 404, 503)})
async def trigger_job(body: TriggerIn, request: Request, key: Writer, forge: ForgeDep, engine: EngineDep) -> Any:
    """Distil the domain's new golden traces: gather → curate → upload → train → evaluate → promote."""
    job, started = await runs.trigger(forge, engine, tenant=key.tenant, domain=body.domain or forge.settings.domain,
                                      provider=body.provider, settings=body.settings)
    return _accepted(request, job, started)


@router.post("/estimate-cost", response_model=Estimate, responses=problems(404))
def estimate_cost(body: EstimateIn, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Billed tokens, epochs, price and cost of fine-tuning a stored dataset or inline examples, before a run."""
    found = estimates.estimate_for_tenant(forge, key.tenant, dataset_id=body.dataset_id, examples=body.examples,
                                          model=body.model, epochs=body.epochs)
    return Estimate.model_validate(found.model_dump(mode="json")).model_dump(mode="json", by_alias=True)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobView, responses=problems(409, 503))
async def cancel_job(job_id: JobId, key: Writer, forge: ForgeDep, engine: EngineDep) -> dict[str, Any]:
    """Stop the run: its training is cancelled at the provider and the job ends CANCELLED."""
    return (await runs.cancel(forge, engine, key.tenant, job_id)).public()


@router.post("/{job_id}/sync", status_code=202, response_model=JobView, responses=problems(409, 503))
async def sync_job(job_id: JobId, key: Writer, forge: ForgeDep, engine: EngineDep) -> dict[str, Any]:
    """Ask the provider about the training run now instead of at the next poll."""
    return (await runs.sync(forge, engine, key.tenant, job_id)).public()


@router.get("", response_model=Page[JobView])
def list_jobs(key: Reader, forge: ForgeDep, paging: PagingDep) -> dict[str, Any]:
    """The tenant's jobs, oldest first."""
    page = service.list_jobs(forge.storage, key.tenant, limit=paging.limit, continuation=paging.continuation)
    return {"items": [j.public() for j in page.items], "continuation": page.continuation}


@router.get("/{job_id}", response_model=JobView)
def get_job(job_id: JobId, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """A job's settings and outcome: status, stage times, dataset, training progress, evaluation, cost, model."""
    return service.get_job(forge.storage, key.tenant, job_id).public()


@router.put("/{job_id}", response_model=JobView, responses=problems(409))
def update_job(job_id: JobId, body: Labels, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Name, describe or tag the job; only the fields sent change (null clears a name or description)."""
    return labels.label_job(forge, key.tenant, job_id, body).public()


@router.get("/{job_id}/events", response_model=Page[JobEventView])
def job_events(job_id: JobId, key: Reader, forge: ForgeDep, paging: PagingDep,
               after: int = Query(0, ge=0, le=10**9, description="Only events after this sequence number.")
               ) -> dict[str, Any]:
    """The job's events in order: stages, training metrics, warnings, webhooks."""
    page = service.job_events(forge.storage, key.tenant, job_id, after=after, limit=paging.limit,
                              continuation=paging.continuation)
    return {"items": [e.public() for e in page.items], "continuation": page.continuation}
