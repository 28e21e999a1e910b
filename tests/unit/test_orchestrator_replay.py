"""The orchestrator as Durable Functions runs it: `Orchestrator.handle` replaying histories, checking the actions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from azure.durable_functions.models import DurableOrchestrationContext
from azure.durable_functions.orchestrator import Orchestrator

from forge.workflow.azure import df_orchestrator

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
JOB = {"tenant": "t", "domain": "coding", "job_id": "01JOB", "provider": "azure-openai",
       "poll_interval_s": 60, "max_training_s": 3600, "retry_first_s": 1}
FROM_DATASET = {**JOB, "start": "upload", "dataset_id": "01UPLOADED"}  # a job from a dataset someone uploaded
# Durable Functions' history event types (azure.durable_functions.models.history.HistoryEventType).
EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 0, 4, 5, 6
TIMER_CREATED, TIMER_FIRED, ORCHESTRATOR_STARTED, EVENT_RAISED = 10, 11, 12, 15


class History:
    """Builds the history the Functions host hands an orchestrator on replay."""

    def __init__(self, start: datetime = datetime(2026, 11, 1, 2, 0, 0), job: dict[str, Any] = JOB):
        self.now = start
        self.job = job
        self.events: list[dict[str, Any]] = []
        self.next_id = 0
        self.add(ORCHESTRATOR_STARTED)
        self.add(EXECUTION_STARTED, Name="distill", Version="", Input=json.dumps(job),
                 OrchestrationInstance={"InstanceId": "01JOB", "ExecutionId": "e1"})

    def add(self, kind: int, event_id: int = -1, **fields: Any) -> None:
        self.now += timedelta(seconds=1)
        self.events.append({"EventType": kind, "EventId": event_id, "IsPlayed": False,
                            "Timestamp": self.now.strftime(FORMAT), **fields})

    def activity(self, name: str, result: Any) -> "History":
        task_id = self.next_id
        self.next_id += 1
        self.add(TASK_SCHEDULED, task_id, Name=name, Version="")
        self.add(ORCHESTRATOR_STARTED)
        self.add(TASK_COMPLETED, TaskScheduledId=task_id, Result=json.dumps(result))
        return self

    def failed(self, name: str, reason: str) -> "History":
        task_id = self.next_id
        self.next_id += 1
        self.add(TASK_SCHEDULED, task_id, Name=name, Version="")
        self.add(ORCHESTRATOR_STARTED)
        self.add(TASK_FAILED, TaskScheduledId=task_id, Reason=reason, Details=reason)
        return self

    def failed_attempts(self, name: str, reason: str, attempts: int) -> "History":
        """An activity failing `attempts` times; as in DTFx, a retry timer follows every failure, the last too."""
        for _ in range(attempts):
            self.failed(name, reason)
            self.timer(fired=True)
        return self

    def timer(self, fired: bool) -> "History":
        task_id = self.next_id
        self.next_id += 1
        fire_at = (self.now + timedelta(seconds=60)).strftime(FORMAT)
        self.add(TIMER_CREATED, task_id, FireAt=fire_at)
        if fired:
            self.add(ORCHESTRATOR_STARTED)
            self.add(TIMER_FIRED, TimerId=task_id, FireAt=fire_at)
        return self

    def event(self, name: str, data: Any = None) -> "History":
        self.add(ORCHESTRATOR_STARTED)
        self.add(EVENT_RAISED, Name=name, Input=json.dumps(data))
        return self

    def replay(self) -> dict[str, Any]:
        body = {"instanceId": "01JOB", "parentInstanceId": None, "isReplaying": False, "input": json.dumps(self.job), "history": self.events,
                "upperSchemaVersion": 0}
        context = DurableOrchestrationContext.from_json(json.dumps(body))
        return json.loads(Orchestrator(df_orchestrator).handle(context))


def last_actions(state: dict[str, Any]) -> list[tuple[int, str | None]]:
    return [(a["actionType"], a.get("functionName")) for a in state["actions"][-1]]


CALL_ACTIVITY, CALL_RETRY, CREATE_TIMER, WAIT_EVENT = 0, 1, 5, 6
UP_TO_TRAINING = [("gather", {"skip": False, "cutoff": "2026-11-01T00:00:00Z"}), ("curate", {"dataset_id": "ds1"}),
                  ("upload", {"train": "file-1"}), ("train", {"provider_job_id": "ftjob-1"})]


def history_until_training() -> History:
    history = History()
    for name, result in UP_TO_TRAINING:
        history.activity(name, result)
    return history


def test_the_first_replay_schedules_gather_with_retries_and_waits_for_cancel():
    state = History().replay()
    assert state["isDone"] is False
    assert sorted(last_actions(state), key=str) == sorted([(CALL_RETRY, "gather"), (WAIT_EVENT, None)], key=str)
    assert state["customStatus"] == {"stage": "COLLECTING", "activity": "gather"}


def test_each_completed_stage_leads_to_the_next_one():
    history = History()
    expected = ["curate", "upload", "train"]
    for (name, result), following in zip(UP_TO_TRAINING, expected):
        history.activity(name, result)
        state = history.replay()
        assert (CALL_RETRY, following) in last_actions(state)


def test_after_training_starts_the_orchestrator_races_a_timer_against_the_completion_event():
    state = history_until_training().replay()
    kinds = [kind for kind, _ in last_actions(state)]
    assert kinds.count(CREATE_TIMER) == 1 and kinds.count(WAIT_EVENT) >= 1
    assert state["customStatus"]["stage"] == "TRAINING"


def test_a_completion_event_makes_it_poll_and_a_success_leads_to_evaluation():
    history = history_until_training().timer(fired=False).event("training.updated", {"status": "succeeded"})
    assert (CALL_RETRY, "poll") in last_actions(history.replay())
    history.activity("poll", {"state": "succeeded", "result_model": "ft:gpt-4.1-mini:forge-coding-1"})
    assert (CALL_RETRY, "evaluate") in last_actions(history.replay())


def test_a_fired_timer_polls_and_a_running_job_arms_another_timer():
    history = history_until_training().timer(fired=True).activity("poll", {"state": "running"})
    kinds = [kind for kind, _ in last_actions(history.replay())]
    assert CREATE_TIMER in kinds


def test_skipping_notifies_with_the_reason_and_finishes():
    history = History().activity("gather", {"skip": True, "reason": "12 golden traces, 500 needed"})
    state = history.replay()
    assert (CALL_RETRY, "notify") in last_actions(state)
    state = history.activity("notify", {"status": "SKIPPED"}).replay()
    assert state["isDone"] is True and state["output"] == {"status": "SKIPPED"}


def test_a_cancel_event_cancels_training_and_ends_cancelled():
    history = history_until_training().timer(fired=False).event("cancel")
    assert (CALL_RETRY, "cancel_training") in last_actions(history.replay())
    history.activity("cancel_training", {"cancelled": True})
    state = history.replay()
    assert (CALL_RETRY, "notify") in last_actions(state)
    assert state["customStatus"] == {"stage": "CANCELLED"}


def test_one_failed_attempt_leaves_the_retry_to_the_host_and_does_not_fail_the_job():
    history = History().activity("gather", {"skip": False, "cutoff": "x"}).failed("curate", "Azurite unreachable")
    state = history.replay()
    assert state["isDone"] is False and state["customStatus"] == {"stage": "CURATING", "activity": "curate"}
    assert all(name != "notify" for _, name in last_actions(state))


def test_an_activity_that_failed_after_its_retries_fails_the_job_with_its_reason():
    history = History().activity("gather", {"skip": False, "cutoff": "x"})
    history.failed_attempts("curate", "Azurite unreachable", attempts=3)
    assert all(name != "notify" for _, name in last_actions(history.replay()))
    history.failed_attempts("curate", "Azurite unreachable", attempts=1)  # the fourth and last attempt
    state = history.replay()
    assert (CALL_RETRY, "notify") in last_actions(state)
    assert state["customStatus"] == {"stage": "FAILED"}
    notify = json.loads(state["actions"][-1][0]["input"])
    assert notify["status"] == "FAILED" and "Azurite unreachable" in notify["reason"]


def test_a_job_from_a_dataset_starts_at_upload_with_that_dataset_and_never_gathers_or_curates():
    state = History(job=FROM_DATASET).replay()
    assert sorted(last_actions(state), key=str) == sorted([(CALL_RETRY, "upload"), (WAIT_EVENT, None)], key=str)
    upload = next(a for a in state["actions"][-1] if a.get("functionName") == "upload")
    assert json.loads(upload["input"])["dataset_id"] == "01UPLOADED"
    assert state["customStatus"] == {"stage": "UPLOADING", "activity": "upload"}


def test_a_job_from_a_dataset_trains_polls_and_evaluates_on_that_dataset_like_any_run():
    history = History(job=FROM_DATASET).activity("upload", {"train": "file-1"})
    train = next(a for a in history.replay()["actions"][-1] if a.get("functionName") == "train")
    assert json.loads(train["input"])["dataset_id"] == "01UPLOADED"
    history.activity("train", {"provider_job_id": "ftjob-1"}).timer(fired=True)
    history.activity("poll", {"state": "succeeded", "result_model": "ft:gpt-4.1-mini:forge-coding-1"})
    evaluate = next(a for a in history.replay()["actions"][-1] if a.get("functionName") == "evaluate")
    assert json.loads(evaluate["input"])["dataset_id"] == "01UPLOADED"
    history.activity("evaluate", {"model_version_id": "01MODEL", "decision": "pass", "reasons": []})
    assert (CALL_RETRY, "promote") in last_actions(history.replay())
    history.activity("promote", {"outcome": "candidate"})
    state = history.activity("notify", {"status": "COMPLETED"}).replay()
    assert state["isDone"] is True and state["output"] == {"status": "COMPLETED"}
    assert all(e.get("Name") not in ("gather", "curate") for e in history.events)


def test_a_job_from_a_dataset_whose_upload_is_refused_fails_with_the_reason():
    history = History(job=FROM_DATASET).activity("upload", {"error": "openai refused the dataset: too few lines"})
    notify = next(a for a in history.replay()["actions"][-1] if a.get("functionName") == "notify")
    assert json.loads(notify["input"])["status"] == "FAILED" and "too few lines" in json.loads(notify["input"])["reason"]
