"""poll: ask the provider how training goes, copy its new events (loss points) onto the job."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import JobEvent
from forge.providers.registry import training_provider
from forge.providers.training import ProviderRejected
from forge.stages.jobs import JobStageRequest, record, update_job


class PollRequest(JobStageRequest):
    provider: str
    provider_job_id: str | None = None


def poll(forge: Forge, request: PollRequest) -> dict[str, Any]:
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    provider_job_id = request.provider_job_id or job.provider_job_id
    provider = training_provider(forge, request.provider)
    status = provider.status(provider_job_id)
    events = provider.events(provider_job_id, after=job.state.event_cursor)
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

