"""curate: build the job's dataset from its golden traces (once) and note it on the job; too few examples is a
permanent error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forge.bootstrap import Forge
from forge.domain.errors import DatasetInvalid
from forge.domain.models import DistillationJob, JobStatus
from forge.services.curation import CurateRequest, curate, plan_shards
from forge.services.jobs import JobRef, enter, record, update_job

NAME = "curate"


class Request(JobRef):
    """The orchestrator's `curate` payload; sizes and split come from the job's settings."""

    until: datetime | None = None
    parts: list[str] | None = None  # the shard activities' parts (a fan-out's second call: only the reduce is left)


def request_for(job: DistillationJob, request: Request) -> CurateRequest:
    """The curation a job asks for: its window, sizes and split from its settings."""
    settings = job.settings
    return CurateRequest(tenant=request.tenant, domain=request.domain, job_id=request.job_id, until=request.until,
                         max_examples=settings.max_examples, valid_share=settings.valid_share, seed=settings.seed,
                         domain_version=job.domain_version, parts=request.parts)


def run(forge: Forge, request: Request) -> dict[str, Any]:
    job = enter(forge, request.tenant, request.job_id, JobStatus.CURATING)
    wanted = request_for(job, request)
    try:
        if forge.settings.curate_fanout and request.parts is None:
            # In Azure: one activity per shard maps it (curate_shard), then this stage runs again to reduce.
            plan = plan_shards(forge, wanted)
            if plan is not None:
                return {"fan_out": {**plan, "parallel": forge.settings.curate_fanout}}
        result = curate(forge, wanted)
    except DatasetInvalid as exc:
        record(forge, request.job_id, "curate", str(exc), level="error")
        return {"error": str(exc)}

    def note(job: DistillationJob) -> None:
        # The run's cost estimate goes on the job when training starts (services/estimates.py), from the
        # dataset's `estimate` written here.
        job.dataset_id, job.dataset_size = result.dataset_id, result.train
        if result.eval_set_version:
            job.state = job.state.model_copy(update={"eval_set": result.eval_set_version})

    update_job(forge, request.tenant, request.job_id, note)
    if not result.reused:  # a retried activity does not repeat its events
        record(forge, request.job_id, "curate", f"dataset {result.dataset_id} v{result.version}: {result.train} "
               f"train, {result.valid} valid, {sum(result.dropped.values())} dropped", **result.counts)
        for warning in result.warnings:
            record(forge, request.job_id, "curate", warning, level="warning")
    return {"dataset_id": result.dataset_id, "version": result.version, "sha256": result.sha256,
            "train": result.train, "valid": result.valid, "billed_tokens": result.billed_tokens,
            "estimated_cost": result.estimated_cost}
