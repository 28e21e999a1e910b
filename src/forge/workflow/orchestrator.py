"""`distill`: the whole pipeline, one deterministic generator over `Flow`, on durabletask or Durable Functions.

gather → curate → upload → train → poll (durable timer | `training.updated`) → evaluate → promote → notify.
An activity that answers `wait_s` (a provider outage) is called again after a durable timer of that length.
With FORGE_CURATE_FANOUT, curate fans out: one `curate_shard` per trace shard (bounded), then curate reduces.
A job from a dataset someone uploaded starts at upload (`start`), with that dataset; the rest is the same path.
Replay rules: no I/O, no clock but `flow.now()`, no randomness; activities take and return small JSON.
Every activity is idempotent by job id, so a resumed or replayed run finds earlier results instead of redoing them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Generator, Literal

from pydantic import BaseModel, Field, model_validator

from forge.domain.events import CANCEL, TRAINING_UPDATED
from forge.workflow.flow import Flow, Retry

NAME = "distill"
ACTIVITY_RETRY = Retry(attempts=4, first_s=2.0, backoff=2.0, max_s=60.0)


class DistillInput(BaseModel):
    tenant: str
    domain: str
    job_id: str
    provider: str
    poll_interval_s: float = Field(60.0, gt=0)
    max_training_s: float = Field(24 * 3600.0, gt=0)
    retry_first_s: float = Field(2.0, gt=0)
    start: Literal["gather", "upload"] = "gather"  # gather: from golden traces; upload: from `dataset_id`
    dataset_id: str | None = None

    @model_validator(mode="after")
    def _dataset_to_start_from(self) -> "DistillInput":
        if self.start == "upload" and not self.dataset_id:
            raise ValueError("a run that starts at upload needs the dataset_id it trains on")
        return self


class _Cancelled(Exception):
    pass


def distill(flow: Flow, raw: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """Run one distillation job to a final status; returns the final job summary."""
    job = DistillInput.model_validate(raw)
    retry = Retry(ACTIVITY_RETRY.attempts, job.retry_first_s, ACTIVITY_RETRY.backoff, ACTIVITY_RETRY.max_s)
    base = {"tenant": job.tenant, "domain": job.domain, "job_id": job.job_id, "provider": job.provider}
    cancel = flow.event(CANCEL)  # one waiter for the whole run: every stage races against it
    shown: dict[str, Any] = {}

    def show(stage: str, **fields: Any) -> None:
        """Custom status: the stage, and what is known of it (the activity, training progress and loss)."""
        if shown.get("stage") != stage:
            shown.clear()
        shown.update(stage=stage, **fields)
        flow.status(dict(shown))

    def step(activity: str, stage: str, **payload: Any) -> Generator[Any, Any, dict[str, Any]]:
        show(stage, activity=activity)
        while True:
            task = flow.call(activity, {**base, **payload}, retry)
            winner = yield flow.first(task, cancel)
            if winner is cancel:
                raise _Cancelled
            result = flow.result(winner)
            if not (isinstance(result, dict) and result.get("wait_s")):
                return result
            # The activity could not do its work yet (its provider is down, services/outages.py): a durable
            # timer, then the same call again; the activity decides when waiting has lasted long enough.
            timer = flow.timer(flow.now() + timedelta(seconds=float(result["wait_s"])))
            if (yield flow.first(timer, cancel)) is cancel:
                flow.cancel(timer)
                raise _Cancelled

    def finish(status: str, reason: str | None = None, **extra: Any) -> Generator[Any, Any, dict[str, Any]]:
        show(status)
        return (yield flow.call("notify", {**base, "status": status, "reason": reason, **extra}, retry))

    try:
        dataset_id = job.dataset_id
        if job.start == "gather":
            gathered = yield from step("gather", "COLLECTING")
            if gathered.get("skip"):
                return (yield from finish("SKIPPED", gathered.get("reason")))
            curated = yield from _curate(flow, step, show, cancel, {**base, "until": gathered["cutoff"]}, retry)
            if curated.get("error"):
                return (yield from finish("FAILED", curated["error"]))
            dataset_id = curated["dataset_id"]
        prepared = yield from step("upload", "UPLOADING", dataset_id=dataset_id)
        if prepared.get("error"):
            return (yield from finish("FAILED", prepared["error"]))
        started = yield from step("train", "TRAINING", dataset_id=dataset_id, prepared=prepared)
        if started.get("error"):
            return (yield from finish("FAILED", started["error"]))
        provider_job_id = started["provider_job_id"]

        trained = yield from _poll(flow, job, step, show, cancel, provider_job_id)
        if trained.get("state") != "succeeded":
            if trained.get("timed_out"):
                yield from step("cancel_training", "TRAINING", provider_job_id=provider_job_id)
            return (yield from finish("FAILED", trained.get("error") or "training did not succeed"))

        evaluated = yield from step("evaluate", "EVALUATING", dataset_id=dataset_id,
                                    result_model=trained["result_model"])
        if evaluated.get("error"):
            return (yield from finish("FAILED", evaluated["error"]))
        promoted = yield from step("promote", "PROMOTING", model_version_id=evaluated["model_version_id"],
                                   decision=evaluated["decision"], reasons=evaluated.get("reasons", []))
        return (yield from finish("COMPLETED", None, model_version_id=evaluated["model_version_id"],
                                  decision=evaluated["decision"], promotion=promoted.get("outcome")))
    except _Cancelled:
        show("CANCELLED")
        return (yield from _cancelled(flow, base, retry))
    except Exception as exc:  # an activity failed after its retries: the job fails, with the reason
        return (yield from finish("FAILED", _reason(exc)))


def _curate(flow: Flow, step: Any, show: Any, cancel: Any, payload: dict[str, Any],
            retry: Retry) -> Generator[Any, Any, dict[str, Any]]:
    """`curate`; when it fans out (FORGE_CURATE_FANOUT, in Azure), one `curate_shard` per shard, `parallel` at a
    time, each retried alone by the engine, then `curate` again with their parts to reduce them."""
    curated = yield from step("curate", "CURATING", until=payload["until"])
    plan = curated.get("fan_out")
    if not plan:
        return curated
    shards, width, parts = plan["shards"], max(1, int(plan["parallel"])), []
    for at in range(0, len(shards), width):
        show("CURATING", activity="curate_shard", progress=round(at / len(shards), 3))
        tasks = [flow.call("curate_shard", {**payload, "shard": shard, "cutoff": plan["cutoff"]}, retry)
                 for shard in shards[at: at + width]]
        winner = yield flow.first(flow.all(tasks), cancel)
        if winner is cancel:
            raise _Cancelled
        parts += [mapped["part"] for mapped in flow.result(winner)]
    return (yield from step("curate", "CURATING", until=payload["until"], parts=parts))


def _poll(flow: Flow, job: DistillInput, step: Any, show: Any, cancel: Any,
          provider_job_id: str) -> Generator[Any, Any, dict]:
    """Wait for training: a durable timer or a `training.updated` event, then ask the provider; bounded in time."""
    deadline = flow.now() + timedelta(seconds=job.max_training_s)
    updated = flow.event(TRAINING_UPDATED)
    while True:
        wake_at = min(flow.now() + timedelta(seconds=job.poll_interval_s), deadline)
        timer = flow.timer(wake_at)
        winner = yield flow.first(timer, updated, cancel)
        if winner is cancel:
            flow.cancel(timer)
            raise _Cancelled
        if winner is updated:
            flow.cancel(timer)
            updated = flow.event(TRAINING_UPDATED)  # re-arm; duplicate deliveries only cause an extra, idempotent poll
        polled = yield from step("poll", "TRAINING", provider_job_id=provider_job_id)
        show("TRAINING", progress=polled.get("progress"), loss=polled.get("loss"))
        if polled.get("state") in ("succeeded", "failed", "cancelled"):
            return polled
        if flow.now() >= deadline:
            hours = job.max_training_s / 3600
            return {"state": "failed", "timed_out": True,
                    "error": f"training ran past the maximum of {hours:g} h and was cancelled at the provider; "
                             "raise max_training_s or use a smaller dataset"}


def _cancelled(flow: Flow, base: dict[str, Any], retry: Retry) -> Generator[Any, Any, dict[str, Any]]:
    yield flow.call("cancel_training", {**base}, retry)
    return (yield flow.call("notify", {**base, "status": "CANCELLED", "reason": "cancelled on request"}, retry))


def _reason(exc: Exception) -> str:
    # durabletask wraps activity failures in TaskFailedError whose details carry the activity's message.
    details = getattr(exc, "details", None)
    message = getattr(details, "message", None) or str(exc) or type(exc).__name__
    return message.strip()
