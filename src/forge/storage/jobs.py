"""Distillation jobs (PartitionKey tenant, RowKey job id): the source of truth for where a run stands."""

from __future__ import annotations

from typing import Iterable, Iterator

from forge.domain.errors import JobNotFound
from forge.domain.models import DistillationJob, JobStatus
from forge.storage.account import StorageAccount
from forge.storage.tables import Page, RecordTable, quote


class JobRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(account.tables.get_table_client("jobs"), DistillationJob, lambda j: (j.tenant, j.job_id))

    def create(self, job: DistillationJob) -> DistillationJob:
        return self.table.create(job)

    def get(self, tenant: str, job_id: str) -> DistillationJob:
        job = self.table.get(tenant, job_id)
        if job is None:
            raise JobNotFound(f"No job '{job_id}' for this tenant; `forge jobs list` shows the jobs there are.")
        return job

    def save(self, job: DistillationJob) -> DistillationJob:
        """Write a job read earlier; ConcurrentUpdate if it changed since, so no update is ever lost."""
        return self.table.replace(job)

    def scan(
        self, tenant: str, *, domain: str | None = None, statuses: Iterable[JobStatus] | None = None
    ) -> Iterator[DistillationJob]:
        """Every job of the tenant, optionally of one domain and in some statuses (filtered by the service)."""
        query = f"PartitionKey eq {quote(tenant)}"
        if domain:
            query += f" and domain eq {quote(domain)}"
        wanted = list(statuses or [])
        if wanted:
            query += " and (" + " or ".join(f"status eq {quote(s.value)}" for s in wanted) + ")"
        return self.table.scan(query)

    def list(self, tenant: str, *, limit: int = 50, continuation: str | None = None) -> Page[DistillationJob]:
        """Oldest first (job ids are ULIDs)."""
        return self.table.page(f"PartitionKey eq {quote(tenant)}", limit, continuation)
