"""A training provider that is down (5xx, 429, timeouts after its own retries) is waited out, not failed on.

The activity that met the outage answers `{"wait_s": …}` instead of raising: the run waits on a durable timer
(workflow/orchestrator.py `step`) and calls it again, so no activity blocks and no engine retry budget is spent.
The outage is kept on the job (`state.outage`: since, attempts, last reason), which also shows the reconciler the
job is alive. Waits grow with the outage (from the job's `retry_first_s` to a minute); once it has lasted
FORGE_PROVIDER_OUTAGE_S the activity answers an error instead and the job fails with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import DistillationJob, utcnow
from forge.providers.training import ProviderUnavailable
from forge.services.jobs import JobRef, record, update_job

LONGEST_WAIT_S = 60.0


def wait_or_fail(forge: Forge, request: JobRef, exc: ProviderUnavailable) -> dict[str, Any]:
    """`{"wait_s", "reason"}` while the outage is younger than FORGE_PROVIDER_OUTAGE_S, else `{"error"}`."""
    now, reason = utcnow(), str(exc)[:500]

    def note(job: DistillationJob) -> None:
        outage = dict(job.state.outage or {"since": now.isoformat(), "attempts": 0})
        outage.update(attempts=outage["attempts"] + 1, reason=reason)
        job.state = job.state.model_copy(update={"outage": outage})

    job = update_job(forge, request.tenant, request.job_id, note)
    outage, limit = job.state.outage or {}, forge.settings.provider_outage_s
    lasted = (now - datetime.fromisoformat(outage["since"])).total_seconds()
    if lasted >= limit:
        message = (f"the training provider has been unavailable for {_span(lasted)} ({outage['attempts']} tries), "
                   f"longer than FORGE_PROVIDER_OUTAGE_S ({_span(limit)}): {reason} If it may still be training, "
                   "cancel it there; trigger the job again once it answers.")
        record(forge, request.job_id, "provider.outage", message, level="error", attempts=outage["attempts"])
        return {"error": message}
    if outage["attempts"] == 1:
        record(forge, request.job_id, "provider.outage", f"{reason} Forge waits and tries again for up to "
               f"{_span(limit)}.", level="warning")
    wait = min(max(job.settings.retry_first_s, lasted), LONGEST_WAIT_S, limit - lasted)
    return {"wait_s": round(max(wait, 0.01), 3), "reason": reason}


def ended(forge: Forge, job: DistillationJob) -> None:
    """The provider answered: an outage the job was waiting out is over (recorded once)."""
    if not job.state.outage:
        return
    outage = job.state.outage

    def clear(stored: DistillationJob) -> None:
        stored.state = stored.state.model_copy(update={"outage": None})

    update_job(forge, job.tenant, job.job_id, clear)
    lasted = (utcnow() - datetime.fromisoformat(outage["since"])).total_seconds()
    record(forge, job.job_id, "provider.outage", f"the training provider answered again after {_span(lasted)} "
           f"({outage['attempts']} tries waited out)", attempts=outage["attempts"])


def _span(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
