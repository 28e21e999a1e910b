"""`distill` on durabletask's in-memory backend, with scripted activities standing in for the stages.

These pin the pipeline's own behaviour (ordering, events, limits, cancellation, retries); the real stages run
end to end in tests/e2e.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from forge.workflow.local import EngineClient, LocalEngine
from forge.domain.events import CANCEL, TRAINING_UPDATED
from forge.workflow.activities import activity_names


class Script:
    """Activities that record their calls; training finishes after `train_polls` polls unless told otherwise."""

    def __init__(self, train_polls: int = 2, golden: int = 10, fail_training: str | None = None):
        self.calls: Counter[str] = Counter()
        self.train_polls = train_polls
        self.golden = golden
        self.fail_training = fail_training
        self.flaky: dict[str, int] = {}
        self.finished: dict[str, Any] = {}
        self.lock = threading.Lock()

    def activities(self) -> dict[str, Any]:
        return {name: self._wrap(name) for name in activity_names()}  # a stage not scripted here answers {}

    def _wrap(self, name: str):
        def run(payload: dict[str, Any]) -> dict[str, Any]:
            with self.lock:
                self.calls[name] += 1
                if self.flaky.get(name, 0) > 0:
                    self.flaky[name] -= 1
                    raise ConnectionError(f"{name}: transient")
            return getattr(self, name, lambda _: {})(payload)

        return run

    def gather(self, p):
        if self.golden < 5:
            return {"skip": True, "reason": f"{self.golden} golden traces, 5 needed"}
        return {"skip": False, "cutoff": "2026-11-01T00:00:00Z"}

    def curate(self, p):
        return {"dataset_id": "ds1"}

    def upload(self, p):
        return {"train": "file-1"}

    def train(self, p):
        return {"provider_job_id": "ftjob-1"}

    def poll(self, p):
        if self.fail_training:
            return {"state": "failed", "error": self.fail_training}
        done = self.calls["poll"] >= self.train_polls
        return {"state": "succeeded" if done else "running", "result_model": "ft:model" if done else None}

    def evaluate(self, p):
        return {"model_version_id": "mv1", "decision": "pass", "reasons": []}

    def promote(self, p):
        return {"outcome": "canary"}

    def cancel_training(self, p):
        return {"cancelled": True}

    def notify(self, p):
        self.finished = p
        return {"status": p["status"], "reason": p.get("reason")}


@pytest.fixture
def run():
    engines: list[LocalEngine] = []

    def start(script: Script, **overrides: Any) -> tuple[EngineClient, dict[str, Any]]:
        engine = LocalEngine(script.activities()).start()
        engines.append(engine)
        job = {"tenant": "t", "domain": "coding", "job_id": f"job-{len(engines)}-{time.monotonic_ns()}",
               "provider": "fake", "poll_interval_s": 0.2, "max_training_s": 30, "retry_first_s": 0.05, **overrides}
        client = EngineClient(engine.client)
        assert client.start(job)
        return client, job

    yield start
    for engine in engines:
        engine.stop()


def output(client: EngineClient, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    state = client.wait(job["job_id"], timeout)
    assert state is not None and state.runtime_status.name == "COMPLETED", state
    return state.get_output() if hasattr(state, "get_output") else state.serialized_output


def test_a_run_goes_through_every_stage_in_order_and_completes(run):
    script = Script(train_polls=2)
    client, job = run(script)
    result = output(client, job)
    assert result == {"status": "COMPLETED", "reason": None}
    assert script.finished["model_version_id"] == "mv1" and script.finished["promotion"] == "canary"
    assert all(script.calls[n] == 1 for n in ("gather", "curate", "upload", "train", "evaluate", "promote", "notify"))
    assert script.calls["poll"] == 2


def test_the_custom_status_carries_the_stage_and_training_progress(run):
    script = Script(train_polls=10_000)
    script.poll = lambda p: {"state": "running", "progress": 0.25, "loss": 1.5}
    client, job = run(script)
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        state = client.state(job["job_id"])
        status = state.get_custom_status() if state else None
        if status and status.get("progress") is not None:
            break
        time.sleep(0.1)
    assert status == {"stage": "TRAINING", "activity": "poll", "progress": 0.25, "loss": 1.5}
    client.raise_event(job["job_id"], CANCEL)
    assert output(client, job)["status"] == "CANCELLED"


def test_too_few_golden_traces_skip_the_job_before_curation(run):
    script = Script(golden=2)
    client, job = run(script)
    assert output(client, job) == {"status": "SKIPPED", "reason": "2 golden traces, 5 needed"}
    assert script.calls["curate"] == 0


def test_a_provider_failure_fails_the_job_with_the_providers_reason(run):
    script = Script(fail_training="invalid training file: line 3 has no assistant message")
    client, job = run(script)
    result = output(client, job)
    assert result["status"] == "FAILED" and "line 3 has no assistant message" in result["reason"]
    assert script.calls["evaluate"] == 0


def test_the_time_limit_cancels_training_at_the_provider_and_fails_the_job(run):
    script = Script(train_polls=10_000)
    client, job = run(script, max_training_s=1.0)
    result = output(client, job)
    assert result["status"] == "FAILED" and "maximum" in result["reason"]
    assert script.calls["cancel_training"] == 1 and script.calls["evaluate"] == 0


def test_a_completion_event_wakes_the_poll_before_the_timer_and_duplicates_advance_the_job_once(run):
    script = Script(train_polls=1)
    client, job = run(script, poll_interval_s=600)
    deadline = time.monotonic() + 30
    while script.calls["train"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(3):  # the same completion delivered three times
        client.raise_event(job["job_id"], TRAINING_UPDATED, {"status": "succeeded"})
    result = output(client, job, timeout=60)
    assert result["status"] == "COMPLETED"
    assert script.calls["evaluate"] == 1 and script.calls["promote"] == 1 and script.calls["notify"] == 1


def test_a_cancel_event_stops_the_run_and_cancels_training(run):
    script = Script(train_polls=10_000)
    client, job = run(script, poll_interval_s=0.2)
    deadline = time.monotonic() + 30
    while script.calls["poll"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.raise_event(job["job_id"], CANCEL)
    result = output(client, job)
    assert result == {"status": "CANCELLED", "reason": "cancelled on request"}
    assert script.calls["cancel_training"] == 1 and script.calls["evaluate"] == 0


def test_transient_activity_failures_are_retried_and_persistent_ones_fail_the_job(run):
    script = Script(train_polls=1)
    script.flaky = {"curate": 2}
    client, job = run(script)
    assert output(client, job)["status"] == "COMPLETED" and script.calls["curate"] == 3

    broken = Script(train_polls=1)
    broken.flaky = {"upload": 99}
    client, job = run(broken)
    result = output(client, job)
    assert result["status"] == "FAILED" and "upload: transient" in result["reason"]
    assert broken.calls["upload"] == 4 and broken.calls["train"] == 0


def test_starting_the_same_instance_twice_starts_one_run(run):
    script = Script(train_polls=1)
    client, job = run(script)
    assert client.start(job) is False
    output(client, job)
    assert script.calls["gather"] == 1
