"""Jobs and their events: reads within the caller's tenant, and the read-modify-write under ETags every stage and
service uses to change a job or a model version."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict

from forge.bootstrap import Forge
from forge.domain.errors import ConcurrentUpdate
from forge.domain.models import DistillationJob, JobEvent, JobStatus, ModelVersion
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


WRITE_ATTEMPTS = 10
T = TypeVar("T")


class JobRef(BaseModel):
    """Whose job a use case acts on. The orchestrator's payload may carry more keys than a stage reads (such as
    `provider`); they are ignored."""

    model_config = ConfigDict(extra="ignore")

    tenant: str
    domain: str
    job_id: str


def read_modify_write(read: Callable[[], T], change: Callable[[T], None], save: Callable[[T], T], what: str) -> T:
    """Apply `change` to a fresh read and save it under its ETag; on a concurrent write, read again and reapply."""
    for _ in range(WRITE_ATTEMPTS):
        current = read()
        change(current)
        try:
            return save(current)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"{what} kept changing under {WRITE_ATTEMPTS} attempts to update it; retry.")


def update_job(forge: Forge, tenant: str, job_id: str, change: Callable[[DistillationJob], None]) -> DistillationJob:
    """Apply `change` to the freshest copy of the job; on a concurrent write, read again and reapply."""
    return read_modify_write(lambda: forge.storage.jobs.get(tenant, job_id), change, forge.storage.jobs.save,
                             f"Job {job_id}")


def update_model(forge: Forge, tenant: str, domain: str, version_id: str,
                 change: Callable[[ModelVersion], None]) -> ModelVersion:
    """Apply `change` to the freshest copy of a model version; on a concurrent write, read again and reapply."""
    return read_modify_write(lambda: forge.storage.models.get(tenant, domain, version_id), change,
                             forge.storage.models.save, f"Model {version_id}")


def enter(forge: Forge, tenant: str, job_id: str, status: JobStatus, **state: Any) -> DistillationJob:
    """Mark the job as in `status` (once: a retried stage keeps its first stamp) and record `state` (JobState
    fields) on it."""

    def change(job: DistillationJob) -> None:
        if job.status != status:
            job.advance(status)
        if state:
            job.state = job.state.model_copy(update=state)

    return update_job(forge, tenant, job_id, change)


def record(forge: Forge, job_id: str, type: str, message: str, level: str = "info", **data: Any) -> None:
    forge.storage.events.append(job_id, JobEvent(job_id=job_id, type=type, message=message, level=level, data=data))
