"""When an unfinished job is stuck: each stage's deadline, from the activity budget or the training limit.

An activity runs at most the activity budget and is tried `ACTIVITY_ATTEMPTS` times with backoff; a stage that
works in pages records progress (and so `updated_at`) after every page. A job whose record has not moved for
`STAGE_FACTOR` budgets is therefore stuck, not slow. Training is bounded by the job's own `max_training_s`, which
the run enforces itself; the deadline here only catches a run that stopped enforcing it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from forge.domain.models import DistillationJob, JobStatus

ACTIVITY_ATTEMPTS = 4  # workflow/orchestrator.py ACTIVITY_RETRY
STAGE_FACTOR = ACTIVITY_ATTEMPTS + 2  # every attempt at its budget, plus the backoffs and a margin
START_GRACE = timedelta(minutes=2)  # a job just stored may not have reached its engine yet
MAX_RESUMES = 3


def stage_deadline(job: DistillationJob, budget_s: float) -> timedelta:
    if job.status == JobStatus.TRAINING:
        return timedelta(seconds=job.settings.max_training_s + 3 * job.settings.poll_interval_s) + \
            timedelta(seconds=STAGE_FACTOR * budget_s)
    return timedelta(seconds=STAGE_FACTOR * budget_s)


def overdue(job: DistillationJob, now: datetime, budget_s: float) -> str | None:
    """Why `job` is stuck in its stage at `now`, or None while it is within the stage's deadline."""
    if job.status.finished:
        return None
    since = job.stage_times.get(job.status.value, job.updated_at) if job.status == JobStatus.TRAINING \
        else job.updated_at
    waited, deadline = now - since, stage_deadline(job, budget_s)
    if waited <= deadline:
        return None
    return (f"stuck in {job.status.value} for {_span(waited)} (its deadline is {_span(deadline)}); the reconciler "
            "ended it. Trigger the job again; if it recurs, raise FORGE_ACTIVITY_BUDGET_S or max_training_s.")


def just_started(job: DistillationJob, now: datetime) -> bool:
    return now - job.updated_at < START_GRACE


def _span(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.0f} min"
