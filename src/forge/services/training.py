"""Training at the provider, once per job: make the dataset readable by it (upload), start its run (train), ask
how it goes and copy its loss points onto the job (poll), stop it (cancel_training). A provider that is down is
waited out (services/outages.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import DistillationJob, JobEvent, JobStatus
from forge.providers.registry import training_provider
from forge.providers.training import PreparedData, ProviderRejected, ProviderUnavailable, TrainingRequest
from forge.services import outages
from forge.services.estimates import record_estimate
from forge.services.jobs import JobRef, enter, record, update_job


class UploadRequest(JobRef):
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
    except ProviderUnavailable as exc:
        return outages.wait_or_fail(forge, request, exc)
    outages.ended(forge, job)
    result = asdict(prepared)
    enter(forge, request.tenant, request.job_id, JobStatus.UPLOADING, prepared=result)
    record(forge, request.job_id, "upload", f"dataset {request.dataset_id} ready at {provider.name}", **result)
    return result


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
    except ProviderUnavailable as exc:
        return outages.wait_or_fail(forge, request, exc)
    outages.ended(forge, job)

    def started(job: Any) -> None:
        job.provider, job.provider_job_id = provider.name, provider_job_id
        if job.status != JobStatus.TRAINING:
            job.advance(JobStatus.TRAINING)

    update_job(forge, request.tenant, request.job_id, started)
    record(forge, request.job_id, "train", f"training started at {provider.name}: {provider_job_id}")
    return {"provider_job_id": provider_job_id}


class PollRequest(JobRef):
    provider: str
    provider_job_id: str | None = None


def poll(forge: Forge, request: PollRequest) -> dict[str, Any]:
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    provider_job_id = request.provider_job_id or job.provider_job_id
    provider = training_provider(forge, request.provider)
    try:
        status = provider.status(provider_job_id)
        events = provider.events(provider_job_id, after=job.state.event_cursor)
    except ProviderUnavailable as exc:
        waiting = outages.wait_or_fail(forge, request, exc)
        return {"state": "failed", "error": waiting["error"]} if "error" in waiting else waiting
    outages.ended(forge, job)
    if events:
        # Events first, cursor second: a crash in between repeats a few events rather than losing them.
        forge.storage.events.append(request.job_id, *[
            JobEvent(job_id=request.job_id, type="training.metrics" if e.type == "metrics" else "training.event",
                     message=e.message, data={**e.data, "provider_event": e.id})
            for e in events
        ])
    losses = [e.data["loss"] for e in events if e.type == "metrics" and "loss" in e.data]

    def progressed(job: Any) -> None:
        training = {"state": status.state.value, "progress": status.progress, "trained_tokens": status.trained_tokens,
                    "loss": losses[-1] if losses else job.state.training.get("loss")}
        job.state = job.state.model_copy(update={"training": training, **(
            {"event_cursor": events[-1].id} if events else {})})

    job = update_job(forge, request.tenant, request.job_id, progressed)
    if status.state.finished:
        record(forge, request.job_id, "training.finished", f"training {status.state.value}"
               + (f": {status.error}" if status.error else ""), level="error" if status.error else "info",
               result_model=status.result_model)
    return {"state": status.state.value, "progress": status.progress, "result_model": status.result_model,
            "error": status.error, "loss": job.state.training["loss"]}


def cancel_training(forge: Forge, request: PollRequest) -> dict[str, Any]:
    """Stop the provider's run, if one was started; finished or missing runs are left as they are."""
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    provider_job_id = request.provider_job_id or job.provider_job_id
    if not provider_job_id:
        return {"cancelled": False}
    provider = training_provider(forge, request.provider)
    try:
        provider.cancel(provider_job_id)
    except ProviderRejected as exc:  # e.g. it finished in the meantime
        record(forge, request.job_id, "training.cancel", f"the provider did not cancel: {exc}", level="warning")
        return {"cancelled": False}
    record(forge, request.job_id, "training.cancel", f"cancelled {provider_job_id} at {provider.name}")
    return {"cancelled": True}
