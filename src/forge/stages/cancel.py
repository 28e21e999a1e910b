"""cancel_training: stop the provider's run (time limit reached, or the job was cancelled)."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.providers.registry import training_provider
from forge.providers.training import ProviderRejected
from forge.stages.jobs import record
from forge.stages.poll import PollRequest


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
