"""Reading jobs and their events, always within the caller's tenant."""

from __future__ import annotations

from forge.domain.models import DistillationJob, JobEvent
from forge.storage import Storage
from forge.storage.tables import Page


def list_jobs(storage: Storage, tenant: str, *, limit: int = 50, continuation: str | None = None) -> Page[DistillationJob]:
    return storage.jobs.list(tenant, limit=limit, continuation=continuation)


def get_job(storage: Storage, tenant: str, job_id: str) -> DistillationJob:
    """The job, or JobNotFound — also when it belongs to another tenant."""
    return storage.jobs.get(tenant, job_id)


def job_events(
    storage: Storage, tenant: str, job_id: str, *, after: int = 0, limit: int = 200, continuation: str | None = None
) -> Page[JobEvent]:
    storage.jobs.get(tenant, job_id)  # the events of another tenant's job are as invisible as the job
    return storage.events.list(job_id, after=after, limit=limit, continuation=continuation)
