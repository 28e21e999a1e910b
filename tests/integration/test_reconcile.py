"""The reconciler over stored jobs: a missing run is started again, an ended or stuck one fails the job with a reason."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from forge.domain.deadlines import MAX_RESUMES
from forge.domain.models import DistillationJob, JobStatus
from forge.services.reconcile import reconcile

LATER = timedelta(hours=6)


class Engine:
    """An engine whose instances are in the states a test says (None: it has none)."""

    def __init__(self, states: dict[str, str | None]):
        self.states = states
        self.started: list[str] = []
        self.terminated: list[tuple[str, str]] = []

    async def start(self, job_input: dict[str, Any]) -> bool:
        self.started.append(job_input["job_id"])
        return True

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool:
        return False

    async def state(self, instance_id: str) -> str | None:
        return self.states.get(instance_id)

    async def terminate(self, instance_id: str, reason: str) -> None:
        self.terminated.append((instance_id, reason))


def stored(forge, tenant: str, status: JobStatus, **fields: Any) -> DistillationJob:
    return forge.storage.jobs.create(DistillationJob(tenant=tenant, domain="coding", status=status, **fields))


def run(forge, tenant: str, engine: Engine, moment: datetime) -> Any:
    return asyncio.run(reconcile(forge, engine, [tenant], moment))


def test_a_job_whose_run_is_missing_is_started_again_and_failed_after_three_losses(forge, tenant):
    job = stored(forge, tenant, JobStatus.CURATING)
    engine = Engine({})
    assert run(forge, tenant, engine, datetime.now(timezone.utc)).resumed == []  # just stored: still starting
    now = datetime.now(timezone.utc) + timedelta(minutes=5)
    for _ in range(MAX_RESUMES):
        assert run(forge, tenant, engine, now).resumed == [job.job_id]
    assert forge.storage.jobs.get(tenant, job.job_id).state.resumes == MAX_RESUMES
    assert run(forge, tenant, engine, now).failed == [job.job_id]
    failed = forge.storage.jobs.get(tenant, job.job_id)
    assert failed.status == JobStatus.FAILED and "lost" in failed.error
    assert engine.started == [job.job_id] * MAX_RESUMES


def test_a_run_that_ended_without_finishing_its_job_fails_the_job_with_the_reason(forge, tenant):
    job = stored(forge, tenant, JobStatus.EVALUATING)
    done = run(forge, tenant, Engine({job.job_id: "failed"}), datetime.now(timezone.utc) + timedelta(minutes=5))
    assert done.failed == [job.job_id]
    failed = forge.storage.jobs.get(tenant, job.job_id)
    assert failed.status == JobStatus.FAILED and "ended (failed)" in failed.error


def test_a_run_stuck_past_its_stages_deadline_is_terminated_and_its_job_failed_but_a_slow_one_is_left(forge, tenant):
    stuck = stored(forge, tenant, JobStatus.CURATING)
    engine = Engine({stuck.job_id: "running"})
    assert run(forge, tenant, engine, datetime.now(timezone.utc) + timedelta(minutes=20)).failed == []
    assert run(forge, tenant, engine, datetime.now(timezone.utc) + LATER).failed == [stuck.job_id]
    assert engine.terminated and engine.terminated[0][0] == stuck.job_id
    failed = forge.storage.jobs.get(tenant, stuck.job_id)
    assert failed.status == JobStatus.FAILED and "stuck in CURATING" in failed.error
    assert "reconcile.failed" in [e.type for e in forge.storage.events.list(stuck.job_id).items]
