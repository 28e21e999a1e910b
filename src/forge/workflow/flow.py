"""`Flow`: the few durable operations the pipeline needs, with one adapter per engine.

`DurableTaskFlow` wraps durabletask's `OrchestrationContext` (local engine, tests); `DurableFunctionsFlow` wraps
Durable Functions' `DurableOrchestrationContext` (Azure). The differences they hide: durabletask takes `input=`
by keyword, naive UTC datetimes and `task.when_any`; Durable Functions takes the input positionally, aware
datetimes and `task_any`, and wants a losing timer cancelled before the orchestration may finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol


@dataclass(frozen=True)
class Retry:
    """Retries for transient activity failures: attempts in all, exponential backoff from `first_s`."""

    attempts: int = 4
    first_s: float = 2.0
    backoff: float = 2.0
    max_s: float = 60.0


class Flow(Protocol):
    instance_id: str

    def call(self, activity: str, input: Any, retry: Retry | None = None) -> Any: ...

    def timer(self, fire_at: datetime) -> Any: ...

    def event(self, name: str) -> Any: ...

    def first(self, *tasks: Any) -> Any:
        """A task completing with whichever of `tasks` completes first (compare it with `is`)."""
        ...

    def all(self, tasks: list[Any]) -> Any:
        """A task completing when every one of `tasks` has (fan-in); its result is their results, in order, and it
        fails when one of them fails."""
        ...

    def result(self, task: Any) -> Any:
        """A completed task's value; raises the task's failure."""
        ...

    def cancel(self, task: Any) -> None:
        """Give up on a timer that lost a race (a no-op where the engine does not need it)."""
        ...

    def now(self) -> datetime:
        """The orchestration's replay-safe clock, timezone-aware UTC."""
        ...

    def status(self, value: Any) -> None: ...

    def continue_as_new(self, input: Any) -> None:
        """Start this instance over with `input` and an empty history once the orchestrator returns (an eternal
        orchestration); the caller returns right after."""
        ...


class DurableTaskFlow:
    def __init__(self, ctx: Any):
        from durabletask import task

        self._ctx = ctx
        self._task = task
        self.instance_id = ctx.instance_id

    def call(self, activity: str, input: Any, retry: Retry | None = None) -> Any:
        policy = None
        if retry is not None:
            policy = self._task.RetryPolicy(
                first_retry_interval=timedelta(seconds=retry.first_s),
                max_number_of_attempts=retry.attempts,
                backoff_coefficient=retry.backoff,
                max_retry_interval=timedelta(seconds=retry.max_s),
            )
        return self._ctx.call_activity(activity, input=input, retry_policy=policy)

    def timer(self, fire_at: datetime) -> Any:
        return self._ctx.create_timer(_naive_utc(fire_at))

    def event(self, name: str) -> Any:
        return self._ctx.wait_for_external_event(name)

    def first(self, *tasks: Any) -> Any:
        return self._task.when_any(list(tasks))

    def all(self, tasks: list[Any]) -> Any:
        return self._task.when_all(list(tasks))

    def result(self, task: Any) -> Any:
        return task.get_result()

    def cancel(self, task: Any) -> None:
        """durabletask lets a losing timer lapse on its own."""

    def now(self) -> datetime:
        return self._ctx.current_utc_datetime.replace(tzinfo=timezone.utc)

    def status(self, value: Any) -> None:
        self._ctx.set_custom_status(value)

    def continue_as_new(self, input: Any) -> None:
        self._ctx.continue_as_new(input, save_events=False)


class DurableFunctionsFlow:
    def __init__(self, ctx: Any):
        self._ctx = ctx
        self.instance_id = ctx.instance_id

    def call(self, activity: str, input: Any, retry: Retry | None = None) -> Any:
        if retry is None:
            return self._ctx.call_activity(activity, input)
        from azure.durable_functions import RetryOptions

        # Durable Functions' retry options have no backoff knobs: a fixed first interval and a count.
        options = RetryOptions(int(retry.first_s * 1000), retry.attempts)
        return self._ctx.call_activity_with_retry(activity, options, input)

    def timer(self, fire_at: datetime) -> Any:
        return self._ctx.create_timer(_aware_utc(fire_at))

    def event(self, name: str) -> Any:
        return self._ctx.wait_for_external_event(name)

    def first(self, *tasks: Any) -> Any:
        return self._ctx.task_any(list(tasks))

    def all(self, tasks: list[Any]) -> Any:
        return self._ctx.task_all(list(tasks))

    def result(self, task: Any) -> Any:
        value = task.result
        if isinstance(value, Exception) and task.state.name == "FAILED":
            raise value
        return value

    def cancel(self, task: Any) -> None:
        if hasattr(task, "cancel") and not getattr(task, "is_completed", False):
            task.cancel()

    def now(self) -> datetime:
        return _aware_utc(self._ctx.current_utc_datetime)

    def status(self, value: Any) -> None:
        self._ctx.set_custom_status(value)

    def continue_as_new(self, input: Any) -> None:
        self._ctx.continue_as_new(input)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _aware_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
