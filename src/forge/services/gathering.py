"""Gathering a run's traces: count the golden ones since the domain's watermark and decide whether the run goes on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import JobStatus
from forge.services.domains import domain_for
from forge.services.traces import count_golden
from forge.services.jobs import JobRef, enter, record


class GatherRequest(JobRef):
    """The job `gather` counts new golden traces for."""


def watermark(forge: Forge, tenant: str, domain: str) -> datetime | None:
    """The cut-off of the domain's last completed job: traces after it are new."""
    cutoffs = [
        datetime.fromisoformat(job.state.cutoff)
        for job in forge.storage.jobs.scan(tenant, domain=domain, statuses=[JobStatus.COMPLETED])
        if job.state.cutoff
    ]
    return max(cutoffs, default=None)


def gather(forge: Forge, request: GatherRequest) -> dict[str, Any]:
    """Decide skip or go; the cut-off is the job's creation time, so a retried gather decides the same way."""
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    if job.state.golden_new is None or job.state.cutoff is None:
        since = watermark(forge, request.tenant, request.domain)
        cutoff = job.created_at
        counts = count_golden(forge.storage, request.tenant, request.domain, forge.settings.min_score,
                              since=since, until=cutoff)
        job = enter(forge, request.tenant, request.job_id, JobStatus.COLLECTING,
                    watermark=since.isoformat() if since else None, cutoff=cutoff.isoformat(),
                    golden_new=counts.golden, traces_new=counts.total)
        record(forge, request.job_id, "gather", f"{counts.golden} new golden traces of {counts.total} since "
               f"{since.isoformat() if since else 'the beginning'}", golden=counts.golden, total=counts.total)
    threshold = job.settings.trigger_threshold
    if threshold is None:  # the domain's own threshold, else the configured one
        threshold = domain_for(forge, request.tenant, request.domain, job.domain_version).trigger_threshold
    threshold = forge.settings.trigger_threshold if threshold is None else threshold
    golden = job.state.golden_new or 0
    if golden < threshold:
        return {"skip": True, "golden_new": golden, "cutoff": job.state.cutoff,
                "reason": f"{golden} new golden traces since the last run; {threshold} needed "
                          "(the domain's trigger_threshold, else FORGE_TRIGGER_THRESHOLD). Collect more traces or "
                          "lower the threshold."}
    return {"skip": False, "golden_new": golden, "cutoff": job.state.cutoff}
