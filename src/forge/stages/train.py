"""train: start the provider's training job, once per Forge job."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import JobStatus
from forge.providers.registry import training_provider
from forge.providers.training import PreparedData, ProviderRejected
from forge.stages.jobs import record, update_job
from forge.stages.upload import UploadRequest, training_request


class TrainRequest(UploadRequest):
    prepared: dict[str, Any]


def train(forge: Forge, request: TrainRequest) -> dict[str, Any]:
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    if job.provider_job_id:
        return {"provider_job_id": job.provider_job_id}  # started before this retry or restart
    provider = training_provider(forge, request.provider)
    prepared = PreparedData(**{k: v for k, v in request.prepared.items() if k in ("train", "valid")})
    try:
        # The provider is idempotent too: a crash after start but before the job was saved finds the same run.
        provider_job_id = provider.start(training_request(forge, job, request.dataset_id), prepared)
    except ProviderRejected as exc:
        return {"error": f"{provider.name} refused to start training: {exc}"}

    def started(job: Any) -> None:
        job.provider, job.provider_job_id = provider.name, provider_job_id
        if job.status != JobStatus.TRAINING:
            job.advance(JobStatus.TRAINING)

    update_job(forge, request.tenant, request.job_id, started)
    record(forge, request.job_id, "train", f"training started at {provider.name}: {provider_job_id}")
    return {"provider_job_id": provider_job_id}
