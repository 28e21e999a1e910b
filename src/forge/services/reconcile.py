"""The reconciler: jobs that are not finished but that no engine is carrying forward are resumed or failed.

Run every few minutes by a timer function in Azure and by `forge worker` locally (the same code). For each
unfinished job past its start grace: no orchestration → start it again (its activities find what was done),
at most `MAX_RESUMES` times; an orchestration that ended without finishing the job → the job fails with that
reason; an orchestration still running past its stage's deadline (domain/deadlines.py) → terminated, the
provider's training cancelled, the job failed with the reason. Due notifications are delivered on the same beat.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from forge.bootstrap import Forge
from forge.domain.deadlines import MAX_RESUMES, just_started, overdue
from forge.domain.models import DistillationJob, JobStatus
from forge.services.jobs import record, update_job
from forge.services.notifications import NotifyRequest, deliver_due, notify
from forge.services.runs import UNFINISHED, Orchestrations, job_input
from forge.services.training import PollRequest, cancel_training

log = logging.getLogger("forge.services.reconcile")


@dataclass
class Reconciled:
    resumed: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # queued runs (a drift alert's) started now
    failed: list[str] = field(default_factory=list)
    notified: int = 0


async def reconcile(forge: Forge, engine: Orchestrations, tenants: list[str], now: datetime) -> Reconciled:
    """One pass over every tenant's unfinished jobs, then the notifications that are due."""
    done = Reconciled()
    for tenant in tenants:
        for job in forge.storage.jobs.scan(tenant, statuses=UNFINISHED):
            if just_started(job, now) and not job.state.queued:
                continue
            try:
                await (_start_queued(forge, engine, job, done) if job.state.queued else _one(forge, engine, job, now,
                                                                                              done))
            except Exception as exc:  # one job the engine or storage cannot handle now never stops the others
                log.warning("reconciling job %s failed (%s); the next pass retries", job.job_id, type(exc).__name__)
    done.notified = await asyncio.to_thread(deliver_due, forge, now)
    return done


async def _start_queued(forge: Forge, engine: Orchestrations, job: DistillationJob, done: Reconciled) -> None:
    """A queued job's first start. The flag is cleared first: if the start is lost, the job is an ordinary
    unfinished one the next pass resumes (and counts), never a queued one started for ever."""
    def started(stored: DistillationJob) -> None:
        stored.state = stored.state.model_copy(update={"queued": False})

    update_job(forge, job.tenant, job.job_id, started)
    if await engine.start(job_input(forge, job)):
        record(forge, job.job_id, "run.started", f"started the run queued by its {job.trigger} trigger")
        done.started.append(job.job_id)


async def _one(forge: Forge, engine: Orchestrations, job: DistillationJob, now: datetime, done: Reconciled) -> None:
    state = await engine.state(job.job_id)
    if state is None:
        if job.state.resumes >= MAX_RESUMES:
            await _fail(forge, job, f"its run was lost {MAX_RESUMES + 1} times and was not started again; "
                                    "trigger the job again")
            done.failed.append(job.job_id)
            return

        def count(stored: DistillationJob) -> None:
            stored.state = stored.state.model_copy(update={"resumes": stored.state.resumes + 1})

        update_job(forge, job.tenant, job.job_id, count)
        if await engine.start(job_input(forge, job)):
            record(forge, job.job_id, "reconcile.resumed", f"no run carried the job in {job.status.value}; "
                   "started it again (finished steps are not repeated)", level="warning")
            done.resumed.append(job.job_id)
        return
    if state != "running":
        await _fail(forge, job, f"its run ended ({state}) without finishing the job in {job.status.value}; "
                                "trigger the job again")
        done.failed.append(job.job_id)
        return
    why = overdue(job, now, forge.settings.activity_budget_s)
    if why:
        await engine.terminate(job.job_id, why)
        await _fail(forge, job, why)
        done.failed.append(job.job_id)


async def _fail(forge: Forge, job: DistillationJob, reason: str) -> None:
    base = {"tenant": job.tenant, "domain": job.domain, "job_id": job.job_id, "provider": job.provider or "local"}
    if job.provider_job_id and job.status == JobStatus.TRAINING:
        try:
            await asyncio.to_thread(cancel_training, forge, PollRequest(**base))
        except Exception as exc:  # the job fails either way; the event says the provider may still be training
            record(forge, job.job_id, "reconcile.cancel_failed", f"could not cancel training at the provider "
                   f"({type(exc).__name__}); cancel it there", level="warning")
    record(forge, job.job_id, "reconcile.failed", reason, level="error")
    await asyncio.to_thread(notify, forge, NotifyRequest(**base, status=JobStatus.FAILED, reason=reason))
