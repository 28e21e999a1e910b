"""Starting, cancelling, syncing and resuming distillation runs, on whichever engine runs `distill`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol

from forge.bootstrap import Forge
from forge.config import Provider
from forge.domain.errors import AlreadyExists, Forbidden, ForgeError, InvalidInput
from forge.domain.job_settings import OPENAI_HYPERPARAMETERS, JobSettings, tenant_base_model_problem
from forge.domain.models import Dataset, DistillationJob, JobStatus, new_id
from forge.services import domains
from forge.services.traces import count_golden
from forge.services.gathering import watermark
from forge.services.notifications import NotifyRequest, notify
from forge.services.training import PollRequest, cancel_training, training_request
from forge.services import datasets
from forge.services.estimates import estimate_for_job
from forge.domain.events import CANCEL, TRAINING_UPDATED

UNFINISHED = [s for s in JobStatus if not s.finished]


class Orchestrations(Protocol):
    """An engine's client: the local durabletask one or the Durable Functions one."""

    async def start(self, job_input: dict[str, Any]) -> bool: ...

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool: ...

    async def state(self, instance_id: str) -> str | None:
        """running, completed, failed or terminated; None when the engine has no such instance."""
        ...

    async def terminate(self, instance_id: str, reason: str) -> None: ...


class EngineUnavailable(ForgeError):
    status = 503
    title = "No orchestration engine"


class JobFinished(ForgeError):
    status = 409
    title = "Job already finished"


def job_input(forge: Forge, job: DistillationJob) -> dict[str, Any]:
    """The orchestrator's input: ids and the few knobs it needs; everything else the activities read."""
    return {
        "tenant": job.tenant, "domain": job.domain, "job_id": job.job_id,
        "provider": job.provider or forge.settings.provider.value,
        "poll_interval_s": job.settings.poll_interval_s,
        "max_training_s": job.settings.max_training_s,
        "retry_first_s": job.settings.retry_first_s,
        **({"start": job.start, "dataset_id": job.dataset_id} if job.start != "gather" else {}),
    }


HOSTED = (Provider.AZURE_OPENAI.value, Provider.OPENAI.value)


def check_request(forge: Forge, provider: str, settings: JobSettings, *, by_operator: bool) -> None:
    """Refuse, before anything is stored, a job its caller may not ask for: a provider outside
    FORGE_ALLOWED_PROVIDERS, a local model folder from a tenant, LoRA hyperparameters on a hosted provider."""
    known = [p.value for p in Provider]
    if provider not in known:
        raise InvalidInput(f"Unknown provider '{provider}'; use one of {', '.join(known)}.")
    allowed = forge.settings.tenant_providers
    if not by_operator and provider not in allowed:
        raise Forbidden(f"Provider '{provider}' is not open to API callers here; allowed: {', '.join(allowed)} "
                        "(the operator sets FORGE_ALLOWED_PROVIDERS).")
    problem = None if by_operator else tenant_base_model_problem(settings)
    if problem:
        raise InvalidInput(problem)
    lora_only = sorted(set(settings.hyperparameters.given()) - OPENAI_HYPERPARAMETERS)
    if provider in HOSTED and lora_only:
        raise InvalidInput(f"Provider {provider} fine-tunes with {', '.join(sorted(OPENAI_HYPERPARAMETERS))} only; "
                           f"remove {', '.join(lora_only)} or use a LoRA provider (local, azureml).")


async def trigger(
    forge: Forge,
    engine: Orchestrations | None,
    *,
    tenant: str,
    domain: str | None,
    provider: str | None = None,
    trigger_kind: str = "manual",
    job_id: str | None = None,
    settings: JobSettings | None = None,
    by_operator: bool = False,
    dataset_id: str | None = None,
    labels: dict[str, Any] | None = None,
) -> tuple[DistillationJob, bool]:
    """Create the job record and start its run; (job, started). A second trigger of the same id starts nothing.

    `by_operator` is for entry points only the operator runs (the CLI, the nightly timer): they may name a local
    model folder and any provider; API callers may not. With `dataset_id` the run trains on that dataset: it starts
    at upload (no gather, no curate), in the dataset's domain unless `domain` names another. `labels`: the job's
    name, description and tags."""
    dataset = datasets.get(forge, tenant, dataset_id) if dataset_id is not None else None  # 404 before anything
    if engine is None:
        raise EngineUnavailable("No orchestration engine is attached: run `forge serve` or `forge worker`.")
    job = _new_job(forge, tenant=tenant, domain=domain, provider=provider, trigger_kind=trigger_kind, job_id=job_id,
                   settings=settings, by_operator=by_operator, dataset=dataset, labels=labels)
    try:
        job = forge.storage.jobs.create(job)
    except AlreadyExists:
        # A retried trigger (a nightly fire after a failed start) starts the stored job if nothing runs it.
        job = forge.storage.jobs.get(tenant, job.job_id)
        return job, (not job.status.finished and await engine.start(job_input(forge, job)))
    started = await engine.start(job_input(forge, job))  # raises when the engine did not take it
    return job, started


def queue(forge: Forge, *, tenant: str, domain: str, trigger_kind: str, job_id: str) -> tuple[DistillationJob, bool]:
    """Create a job whose run the next reconcile pass starts: for code that runs where no engine client is (an
    activity, such as a drift alert's). As an API caller's run (default provider and settings); (job, created)."""
    job = _new_job(forge, tenant=tenant, domain=domain, provider=None, trigger_kind=trigger_kind, job_id=job_id,
                   settings=None, by_operator=False, dataset=None, labels=None)
    job.state = job.state.model_copy(update={"queued": True})
    try:
        return forge.storage.jobs.create(job), True
    except AlreadyExists:
        return forge.storage.jobs.get(tenant, job_id), False


def _new_job(forge: Forge, *, tenant: str, domain: str | None, provider: str | None, trigger_kind: str,
             job_id: str | None, settings: JobSettings | None, by_operator: bool, dataset: Dataset | None,
             labels: dict[str, Any] | None) -> DistillationJob:
    domain = domain or (dataset.domain if dataset else forge.settings.domain)
    found = domains.usable(forge, tenant, domain)  # DomainNotFound (404), DomainDisabled
    settings = settings or JobSettings()
    provider = provider or forge.settings.provider.value
    check_request(forge, provider, settings, by_operator=by_operator)
    job = DistillationJob(job_id=job_id or new_id(), tenant=tenant, domain=domain, trigger=trigger_kind,
                          provider=provider, settings=settings, **(labels or {}),
                          domain_version=domains.TEMPLATE if found.version is None else found.version)
    if dataset is not None:
        from_dataset(forge, job, dataset)
    return job


def from_dataset(forge: Forge, job: DistillationJob, dataset: Dataset) -> None:
    """Make `job` train on a stored dataset: it starts at upload, with the dataset's size and the run's cost estimate
    on it before anything runs (an estimate that cannot be made never blocks the run)."""
    job.start, job.dataset_id, job.dataset_size = "upload", dataset.dataset_id, dataset.counts.get("train")
    job.advance(JobStatus.UPLOADING)
    try:
        estimate = estimate_for_job(forge, training_request(forge, job, dataset.dataset_id))
    except ForgeError:
        return
    job.cost = {"estimate": estimate.model_dump(mode="json")}


async def cancel(forge: Forge, engine: Orchestrations | None, tenant: str, job_id: str) -> DistillationJob:
    """Ask the run to stop; a job no engine runs any more is marked CANCELLED at once."""
    job = forge.storage.jobs.get(tenant, job_id)
    if job.status.finished:
        raise JobFinished(f"Job {job_id} already ended {job.status.value}; there is nothing to cancel.")
    if engine is not None and await engine.raise_event(job_id, CANCEL):
        return job
    base = {"tenant": tenant, "domain": job.domain, "job_id": job_id, "provider": job.provider or "local"}
    if job.provider_job_id:
        cancel_training(forge, PollRequest(**base))
    notify(forge, NotifyRequest(**base, status=JobStatus.CANCELLED, reason="cancelled on request"))
    return forge.storage.jobs.get(tenant, job_id)


async def sync(forge: Forge, engine: Orchestrations | None, tenant: str, job_id: str) -> DistillationJob:
    """Poll the provider now instead of at the next timer."""
    job = forge.storage.jobs.get(tenant, job_id)
    if job.status.finished:
        raise JobFinished(f"Job {job_id} already ended {job.status.value}.")
    if engine is None or not await engine.raise_event(job_id, TRAINING_UPDATED, {"source": "sync"}):
        raise EngineUnavailable(f"No engine runs job {job_id} now; `forge worker` resumes it.")
    return job


async def resume_unfinished(forge: Forge, engine: Orchestrations, tenants: list[str]) -> list[str]:
    """Start `distill` again for every unfinished job: its activities find what was already done."""
    resumed = []
    for tenant in tenants:
        for job in forge.storage.jobs.scan(tenant, statuses=UNFINISHED):
            if await engine.start(job_input(forge, job)):
                resumed.append(job.job_id)
    return resumed


def nightly_id(tenant: str, domain: str, moment: datetime) -> str:
    return f"nightly-{tenant}-{domain}-{moment:%Y%m%d}"


async def nightly(forge: Forge, engine: Orchestrations, tenants: list[str], moment: datetime) -> list[str]:
    """The scheduled run: one job per tenant and enabled domain with enough new golden traces (the domain's own
    threshold, else FORGE_TRIGGER_THRESHOLD); a double fire starts one."""
    started = []
    for tenant in tenants:
        for domain in domains.names(forge, tenant):
            since = watermark(forge, tenant, domain)
            counts = count_golden(forge.storage, tenant, domain, forge.settings.min_score, since=since)
            threshold = domains.domain_for(forge, tenant, domain).trigger_threshold
            if counts.golden < (forge.settings.trigger_threshold if threshold is None else threshold):
                continue
            job, fresh = await trigger(forge, engine, tenant=tenant, domain=domain, trigger_kind="nightly",
                                       job_id=nightly_id(tenant, domain, moment), by_operator=True)
            if fresh:
                started.append(job.job_id)
    return started


def tenants(forge: Forge) -> list[str]:
    """Tenants Forge works for: those holding API keys or domains of their own, and the configured default."""
    return sorted({forge.settings.tenant, *forge.storage.keys.tenants(), *forge.storage.domains.tenants()})


def run_sync(coroutine: Any) -> Any:
    """Run a service coroutine from synchronous code (the CLI)."""
    return asyncio.run(coroutine)
