"""Injected faults during whole runs (the real stages on durabletask's engine, provider `openai` against its
contract fake over HTTP, storage in Azurite): the worker killed at every stage, the provider down for a "minute",
storage restarted mid-curation, completion events duplicated and out of order. Each run must end as it would have
without the fault, with nothing lost and nothing done twice: one dataset, one upload per file, one provider job,
one model version, one promotion, one notification.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import httpx
import pytest
from azure.core.exceptions import AzureError
from pydantic import SecretStr

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import Forge, bootstrap
from forge.domain.job_settings import JobSettings
from forge.domain.models import DistillationJob, JobStatus
from forge.domain_templates import load_domains
from forge.services import runs
from forge.services.traces import import_jsonl
from forge.storage import Storage, StorageAccount
from forge.workflow.activities import build_activities
from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations
from tests.factories import varied_lines
from tests.fakes.openai_server import API_KEY, FakeOpenAI, running
from tests.integration.test_faults import Receiver, Restartable
from tests.integration.test_webhooks import GRID_KEY, SECRET, openai_delivery, run_event

TRACES = 24
RUN = JobSettings(trigger_threshold=10, poll_interval_s=0.2, retry_first_s=0.2)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with running(step_s=0.05, steps=4, process_s=0.0) as server:  # files processed at once: no 2 s file poll
        yield server


def wired(settings, storage: Storage, fake: FakeOpenAI, **overrides: Any) -> Forge:
    """Forge with provider `openai` (and the teacher, the student's host) at the fake."""
    return bootstrap(settings.model_copy(update={
        "curate_workers": 1,  # 24 traces: a process pool would only add its start-up
        "openai_base_url": f"{fake.url}/v1", "openai_api_key": SecretStr(API_KEY),
        "teacher_base_url": f"{fake.url}/v1", "teacher_api_key": SecretStr(API_KEY), **overrides}), storage=storage)


def with_traffic(storage: Storage, tenant: str) -> None:
    data = ("\n".join(varied_lines(TRACES)) + "\n").encode()
    import_jsonl(storage, io.BytesIO(data), tenant=tenant, domain="coding", known_domains=load_domains())


@contextmanager
def engine(forge: Forge, wrap: Callable[[str, Any], Any] | None = None) -> Iterator[tuple[LocalEngine,
                                                                                             LocalOrchestrations]]:
    activities = build_activities(forge)
    if wrap is not None:
        activities = {name: wrap(name, fn) for name, fn in activities.items()}
    with LocalEngine(activities) as local:
        yield local, LocalOrchestrations(EngineClient(local.client))


def trigger(forge: Forge, orchestrations: LocalOrchestrations, tenant: str, settings: JobSettings = RUN) -> str:
    job, started = asyncio.run(runs.trigger(forge, orchestrations, tenant=tenant, domain="coding", provider="openai",
                                            settings=settings, by_operator=True))
    assert started
    return job.job_id


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except AzureError:  # storage restarting under the test: look again
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finished(storage: Storage, tenant: str, job_id: str, timeout: float = 90) -> DistillationJob:
    return wait_until(lambda: (j := storage.jobs.get(tenant, job_id)).status.finished and j, timeout,
                      f"job {job_id} to finish")


def event_counts(storage: Storage, job_id: str) -> Counter[str]:
    return Counter(e.type for e in storage.events.list(job_id, limit=1000).items)


STAGES = {"COLLECTING": "gather", "CURATING": "curate", "UPLOADING": "upload", "TRAINING": "train",
          "EVALUATING": "evaluate", "PROMOTING": "promote"}


class Crash:
    """Activity `name` does its work, then its worker dies before the engine hears of the result."""

    def __init__(self, name: str):
        self.name, self.reached, self.release = name, threading.Event(), threading.Event()

    def wrap(self, name: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        if name != self.name:
            return fn

        def run(payload: dict[str, Any]) -> dict[str, Any]:
            fn(payload)
            self.reached.set()
            self.release.wait(60)
            raise ConnectionAbortedError("the worker was killed")  # reported to nobody: the engine is gone

        return run


def run_once_only(storage: Storage, fake: FakeOpenAI, receiver: Receiver, tenant: str, job: DistillationJob) -> None:
    """Everything a run does happened once: dataset, uploads, provider job, model version, promotion, notice."""
    assert job.status == JobStatus.COMPLETED, job.error
    counts = event_counts(storage, job.job_id)
    assert [counts[kind] for kind in ("gather", "upload", "train", "evaluation", "promotion", "job.finished")] == \
        [1, 1, 1, 1, 1, 1], counts
    assert [d.dataset_id for d in storage.datasets.scan(tenant)] == [job.dataset_id]
    assert len(fake.files) == 2 and len(fake.jobs) == 1  # train and valid uploaded once, training started once
    assert [m.version_id for m in storage.models.list(tenant, "coding").items] == [job.resulting_model_id]
    steps = [e.data.get("step") for e in storage.events.list(job.job_id, limit=1000).items
             if e.type == "training.metrics"]
    assert steps == sorted(set(steps)) and len(steps) == 4  # the loss curve copied once, in order
    notices = [body for headers, body in receiver.accepted if body.get("jobId") == job.job_id]
    assert [n["status"] for n in notices] == ["COMPLETED"]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    target = Receiver()
    target.up = True
    with serving(target.app) as url:
        yield target, f"{url}/hook"


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_worker_killed_after_a_stage_did_its_work_is_resumed_by_the_next_and_nothing_is_done_twice(
        stage, settings, storage, fake, receiver, tenant):
    target, hook = receiver
    with_traffic(storage, tenant)
    crash = Crash(STAGES[stage])
    first = wired(settings, storage, fake, notify_url=hook)
    with engine(first, crash.wrap) as (local, orchestrations):
        try:
            job_id = trigger(first, orchestrations, tenant)
            assert crash.reached.wait(60), f"the run never reached {stage}"
            assert storage.jobs.get(tenant, job_id).status.value == stage
            local.backend.stop()  # the worker process dies, and the in-memory engine's state with it
        finally:
            crash.release.set()
    second = wired(settings, storage, fake, notify_url=hook)  # a new `forge worker`: same storage, fresh engine
    with engine(second) as (_, orchestrations):
        assert asyncio.run(runs.resume_unfinished(second, orchestrations, [tenant])) == [job_id]
        job = finished(storage, tenant, job_id)
    run_once_only(storage, fake, target, tenant, job)



class Outages:
    """The provider goes down (500 and 429 in turn, with Retry-After) for `seconds` as each named activity begins."""

    def __init__(self, fake: FakeOpenAI, seconds: float, at: tuple[str, ...]):
        self.fake, self.seconds, self.pending = fake, seconds, list(at)

    def wrap(self, name: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def run(payload: dict[str, Any]) -> dict[str, Any]:
            if name in self.pending:
                self.pending.remove(name)
                self.fake.outage(self.seconds)
            return fn(payload)

        return run


def outage_events(storage: Storage, job_id: str) -> list[str]:
    return [e.message for e in storage.events.list(job_id, limit=1000).items if e.type == "provider.outage"]


def test_a_provider_down_for_a_minute_while_uploading_and_training_is_waited_out_and_nothing_is_done_twice(
        settings, storage, fake, receiver, tenant):
    # The "minute", shortened: 4 s down, against retries (the SDK's, then the engine's) that give up within 2.
    target, hook = receiver
    with_traffic(storage, tenant)
    forge = wired(settings, storage, fake, notify_url=hook, provider_outage_s=60)
    down = Outages(fake, 4.0, at=("upload", "poll"))
    with engine(forge, down.wrap) as (_, orchestrations):
        job = finished(storage, tenant, trigger(forge, orchestrations, tenant))
    assert down.pending == [] and fake.refused > 10
    run_once_only(storage, fake, target, tenant, job)
    messages = outage_events(storage, job.job_id)
    assert len(messages) == 4 and "answered again" in messages[1] and "answered again" in messages[3]
    assert job.state.outage is None


def test_a_provider_down_longer_than_forge_provider_outage_s_fails_the_job_saying_so_with_nothing_half_done(
        settings, storage, fake, receiver, tenant):
    target, hook = receiver
    with_traffic(storage, tenant)
    forge = wired(settings, storage, fake, notify_url=hook, provider_outage_s=2)
    down = Outages(fake, 600.0, at=("upload",))
    try:
        with engine(forge, down.wrap) as (_, orchestrations):
            job = finished(storage, tenant, trigger(forge, orchestrations, tenant))
    finally:
        fake.down_until = 0.0
    assert job.status == JobStatus.FAILED
    assert "unavailable for" in job.error and "FORGE_PROVIDER_OUTAGE_S" in job.error
    assert fake.files == {} and fake.jobs == {}  # nothing uploaded or started that a retry could duplicate
    notices = [body for _, body in target.accepted if body.get("jobId") == job.job_id]
    assert [n["status"] for n in notices] == ["FAILED"]


def test_storage_killed_and_restarted_mid_curation_loses_no_trace_and_builds_one_whole_dataset(
        settings, fake, receiver, tenant, tmp_path):
    target, hook = receiver
    azurite, restarts = Restartable(tmp_path / "azurite"), []
    try:
        connection = azurite.instance.connection_string
        storage = Storage.open(StorageAccount.from_connection_string(connection))
        with_traffic(storage, tenant)
        forge = wired(settings.model_copy(update={"storage_connection": connection}), storage, fake, notify_url=hook)
        tries: list[float] = []

        def restart_during_curation(name: str, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
            def run(payload: dict[str, Any]) -> dict[str, Any]:
                if name == "curate" and not restarts:
                    # Storage goes away as curation begins, for longer than the SDK's own retries (about 6 s).
                    restarts.append(threading.Thread(target=azurite.restart, args=(7.0,)))
                    restarts[0].start()
                    time.sleep(0.2)
                if name == "curate":
                    tries.append(time.monotonic())
                return fn(payload)

            return run

        with engine(forge, restart_during_curation) as (_, orchestrations):
            job = finished(storage, tenant, trigger(forge, orchestrations, tenant,
                                                    RUN.model_copy(update={"retry_first_s": 1.0})))
        assert len(tries) >= 2  # the first curation failed on the missing storage; the engine's retry finished it
        assert len(list(storage.traces.scan(tenant, domain="coding"))) == TRACES  # every imported trace kept
        run_once_only(storage, fake, target, tenant, job)
        dataset = storage.datasets.get(tenant, job.dataset_id)
        rows = sum(1 for part in ("train", "valid") for _ in storage.datasets.read_file(tenant, dataset.dataset_id,
                                                                                         part))
        # Whole, as a run without the fault builds it: every trace an example, none twice.
        assert (dataset.counts.get("train"), dataset.counts.get("valid"), rows) == (22, 2, TRACES)
    finally:
        for restart in restarts:  # an instance started after close() would outlive the test
            restart.join()
        azurite.close()


@pytest.mark.parametrize("channel", ["openai webhook", "event grid"])
def test_completion_events_duplicated_and_out_of_order_advance_the_job_once_when_the_provider_is_done(
        channel, settings, storage, fake, receiver, tenant):
    target, hook = receiver
    with_traffic(storage, tenant)
    forge = wired(settings, storage, fake, notify_url=hook, openai_webhook_secret=SecretStr(SECRET),
                  eventgrid_webhook_key=SecretStr(GRID_KEY))
    fake.frozen = True  # the provider's run stays in progress until the test lets it finish
    with engine(forge) as (_, orchestrations), serving(create_app(forge, orchestrations=orchestrations)) as url:
        # A poll interval of an hour: only completion events wake the run within this test.
        job_id = trigger(forge, orchestrations, tenant, RUN.model_copy(update={"poll_interval_s": 3600}))
        job = wait_until(lambda: (j := storage.jobs.get(tenant, job_id)).provider_job_id and j, 60, "training")

        def deliver(delivery: str, done: bool) -> httpx.Response:
            if channel == "openai webhook":
                kind = "fine_tuning.job.succeeded" if done else "fine_tuning.job.running"
                body, headers = openai_delivery(job.provider_job_id, webhook_id=delivery, kind=kind)
                return httpx.post(f"{url}/api/v1/webhooks/openai", content=body, headers=headers)
            event = run_event(job, delivery)
            event["data"]["runStatus"] = "Completed" if done else "Running"
            return httpx.post(f"{url}/api/v1/webhooks/eventgrid", json=[event, event],  # twice in one batch too
                              headers={"X-Forge-Webhook-Key": GRID_KEY})

        def duplicate(response: httpx.Response) -> bool:
            return response.status_code == 409 if channel == "openai webhook" else \
                response.json() == {"accepted": 0, "duplicates": 2, "ignored": 0}

        assert deliver("d-1", done=True).status_code == 200  # "done" before the provider is: the run asks it
        wait_until(lambda: storage.jobs.get(tenant, job_id).state.training.get("state"), 30, "the woken poll")
        assert storage.jobs.get(tenant, job_id).status == JobStatus.TRAINING  # not advanced on the event's word
        assert duplicate(deliver("d-1", done=True))
        fake.frozen = False  # the provider finishes; its events come late and out of order
        wait_until(lambda: fake._job(job.provider_job_id)["status"] == "succeeded", 30, "the provider to finish")
        assert deliver("d-2", done=False).status_code == 200  # a stale "running": the run asks, and it is done
        job = finished(storage, tenant, job_id)
        assert deliver("d-3", done=True).status_code == 200 and duplicate(deliver("d-3", done=True))
        time.sleep(0.5)  # anything the late events could still set off
    run_once_only(storage, fake, target, tenant, storage.jobs.get(tenant, job_id))
    events = storage.events.list(job_id, limit=1000).items
    assert [e.data["delivery"] for e in events if e.type == "training.webhook"] == ["d-1", "d-2", "d-3"]
    assert [e.type for e in events].count("training.finished") == 1
