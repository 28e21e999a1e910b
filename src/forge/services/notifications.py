"""Finishing a job: write its final status and tell whoever asked to be told (an optional webhook)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from forge.bootstrap import Forge
from forge.domain.models import DistillationJob, JobStatus
from forge.services.jobs import JobRef, record, update_job

log = logging.getLogger("forge.services.notifications")


class NotifyRequest(JobRef):
    status: JobStatus
    reason: str | None = None
    model_version_id: str | None = None
    decision: str | None = None
    promotion: str | None = None


def notify(forge: Forge, request: NotifyRequest) -> dict[str, Any]:
    if not request.status.finished:
        raise ValueError(f"notify needs a final status, not {request.status.value}")

    def finish(job: DistillationJob) -> None:
        if job.status == request.status:
            return  # a retried notify changes nothing twice
        job.advance(request.status, error=request.reason if request.status == JobStatus.FAILED else None)
        if request.reason and request.status != JobStatus.FAILED:
            job.reason = request.reason
        if request.model_version_id:
            job.resulting_model_id = request.model_version_id

    before = forge.storage.jobs.get(request.tenant, request.job_id)
    job = update_job(forge, request.tenant, request.job_id, finish)
    summary = {"jobId": job.job_id, "tenant": job.tenant, "domain": job.domain, "status": job.status.value,
               "reason": request.reason, "resultingModelId": job.resulting_model_id, "decision": request.decision,
               "promotion": request.promotion}
    if before.status != request.status:
        record(forge, job.job_id, "job.finished", f"{job.status.value}" + (f": {request.reason}" if request.reason
               else ""), level="error" if job.status == JobStatus.FAILED else "info", **summary)
        _webhook(forge, summary)
    return {"status": job.status.value, "reason": request.reason}


def _webhook(forge: Forge, summary: dict[str, Any]) -> None:
    url = forge.settings.notify_url
    if not url:
        return
    try:
        httpx.post(url, json=summary, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        # A notification that cannot be delivered never changes the job's outcome.
        log.warning("notify webhook failed for job %s: %s", summary["jobId"], type(exc).__name__)
        record(forge, summary["jobId"], "notify.failed", f"the webhook did not accept the notification "
               f"({type(exc).__name__})", level="warning")
