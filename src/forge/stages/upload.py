"""upload: make the dataset readable by the training provider (Files API upload, run folder, Blob URIs)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import DistillationJob, JobStatus
from forge.providers.registry import training_provider
from forge.providers.training import ProviderRejected, TrainingRequest
from forge.services.estimates import record_estimate
from forge.stages.jobs import JobStageRequest, enter, record


class UploadRequest(JobStageRequest):
    provider: str
    dataset_id: str


def training_request(forge: Forge, job: DistillationJob, dataset_id: str) -> TrainingRequest:
    """What the provider is asked to train, from the job's config and its dataset (the same on every retry)."""
    dataset = forge.storage.datasets.get(job.tenant, dataset_id)
    return TrainingRequest(
        job_id=job.job_id,
        tenant=job.tenant,
        domain=job.domain,
        dataset_id=dataset_id,
        dataset_sha256=dataset.sha256 or "",
        base_model=job.settings.base_model or forge.settings.student_base_model,
        suffix=f"forge-{job.domain}-{dataset.version}",
        hyperparameters=job.settings.hyperparameters.given(),
        seed=job.settings.seed,
    )


def upload(forge: Forge, request: UploadRequest) -> dict[str, Any]:
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    if job.state.prepared:
        return job.state.prepared  # uploaded before this retry or restart
    provider = training_provider(forge, request.provider)
    enter(forge, request.tenant, request.job_id, JobStatus.UPLOADING)
    wanted = training_request(forge, job, request.dataset_id)
    record_estimate(forge, wanted)  # on the job before anything is spent at the provider
    try:
        prepared = provider.prepare(wanted)
    except ProviderRejected as exc:
        return {"error": f"{provider.name} refused the dataset: {exc}"}
    result = asdict(prepared)
    enter(forge, request.tenant, request.job_id, JobStatus.UPLOADING, prepared=result)
    record(forge, request.job_id, "upload", f"dataset {request.dataset_id} ready at {provider.name}", **result)
    return result
