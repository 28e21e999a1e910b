"""`function_app.py`'s handlers called as the Functions host would, with `azure.functions` objects.

The durable client is the one part faked: it is the Functions host's, unreachable here. Storage is Azurite.
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Iterator

import azure.functions as func
import httpx
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azurefunctions.extensions.http.fastapi import Request, WebApp
import pytest

from forge.api.server import serving
from forge.domain.capture import encode
from forge.domain.models import DistillationJob
from forge.domain.traces import new_trace_id
from forge.storage.capture import PoisonedTraces
from tests.factories import chat_line
from tests.fakes.chat_upstream import API_KEY, ChatUpstream


class FakeDurableClient:
    """Records what the handlers ask of Durable Functions; knows the instances it started."""

    def __init__(self, refuse_starts: int = 0):
        self.started: list[tuple[str, str, Any]] = []
        self.events: list[tuple[str, str, Any]] = []
        self.terminated: list[tuple[str, str]] = []
        self.refuse_starts = refuse_starts  # start_new answers None (the extension's API failed) this many times

    async def get_status(self, instance_id: str):
        known = any(i == instance_id for _, i, _ in self.started)
        return SimpleNamespace(runtime_status="Running") if known else None

    async def start_new(self, name: str, instance_id: str | None = None, client_input: Any = None) -> str | None:
        if self.refuse_starts:
            self.refuse_starts -= 1
            return None
        self.started.append((name, instance_id, client_input))
        return instance_id

    async def terminate(self, instance_id: str, reason: str) -> None:
        self.terminated.append((instance_id, reason))

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        if not any(i == instance_id for _, i, _ in self.started):
            raise Exception(f"No instance with ID {instance_id} found.")
        self.events.append((instance_id, event_name, event_data))


_FUNCTIONS: list[Any] = []


def _handlers(function_app: Any) -> dict[str, Any]:
    # get_functions() indexes the app and refuses to run twice, as the host indexes it once.
    if not _FUNCTIONS:
        _FUNCTIONS.extend(function_app.app.get_functions())
    # Durable-client triggers are wrapped to turn the host's client JSON into a client; call the code beneath.
    return {f.get_function_name(): getattr(f.get_user_function(), "__wrapped__", f.get_user_function())
            for f in _FUNCTIONS}


@pytest.fixture
def functions(monkeypatch, azurite, tenant):
    monkeypatch.setenv("FORGE_STORAGE_CONNECTION", azurite.connection_string)
    monkeypatch.setenv("FORGE_TRIGGER_THRESHOLD", "3")
    monkeypatch.setenv("FORGE_TENANT", tenant)
    import function_app

    for cached in (function_app.forge, function_app.activities, function_app.asgi):
        cached.cache_clear()
    yield function_app, _handlers(function_app)
    for cached in (function_app.forge, function_app.activities, function_app.asgi):
        cached.cache_clear()


def test_the_app_registers_the_orchestrator_every_activity_and_the_three_triggers(functions):
    function_app, handlers = functions
    assert {"distill", "gather", "curate", "upload", "train", "poll", "cancel_training", "evaluate", "promote",
            "notify", "nightly", "http", "eventgrid_training", "capture_traces", "reconcile_jobs"} <= set(handlers)
    timer = next(f for f in _FUNCTIONS if f.get_function_name() == "nightly")
    bindings = json.loads(timer.get_function_json())["bindings"]
    assert [b["schedule"] for b in bindings if b["type"] == "timerTrigger"] == ["%FORGE_SCHEDULE_CRON%"]


def test_the_nightly_timer_starts_one_run_per_domain_with_enough_golden_traces_even_if_it_fires_twice(functions, tenant):
    function_app, handlers = functions
    forge = function_app.forge()
    forge.storage.keys.create(tenant, "nightly")
    from forge.services.traces import import_jsonl
    import io

    lines = "\n".join(chat_line(i, score=95) for i in range(4)).encode()
    import_jsonl(forge.storage, io.BytesIO(lines), tenant=tenant, domain="legal", known_domains=forge.domains)
    client = FakeDurableClient()
    timer = TimerRequest(past_due=False)
    asyncio.run(handlers["nightly"](timer, client))
    asyncio.run(handlers["nightly"](timer, client))
    mine = [(name, instance) for name, instance, _ in client.started if tenant in instance]
    assert len(mine) == 1 and mine[0][0] == "distill"
    assert mine[0][1].startswith(f"nightly-{tenant}-legal-")
    assert forge.storage.jobs.get(tenant, mine[0][1]).trigger == "nightly"


def test_the_http_function_serves_the_api_and_triggers_runs_on_durable_functions(functions, tenant):
    function_app, handlers = functions
    key = function_app.forge().storage.keys.create(tenant, "http")[0]
    client = FakeDurableClient()
    with functions_http(handlers["http"], client) as http:
        assert http.get("/health").status_code == 200
        response = http.post("/api/v1/forge/jobs/trigger", json={"domain": "coding"}, headers={"X-API-Key": key})
    assert response.status_code == 202
    job_id = response.json()["jobId"]
    assert client.started == [("distill", job_id, client.started[0][2])]
    assert client.started[0][2]["tenant"] == tenant and client.started[0][2]["domain"] == "coding"


def test_through_the_http_function_the_first_sse_chunk_arrives_before_the_upstream_has_finished(
        functions, tenant, monkeypatch):
    hold = threading.Event()
    upstream = ChatUpstream(hold=hold)
    function_app, handlers = functions
    with serving(upstream.app) as upstream_url:
        monkeypatch.setenv("FORGE_TEACHER_BASE_URL", f"{upstream_url}/v1")
        monkeypatch.setenv("FORGE_TEACHER_API_KEY", API_KEY)
        key = function_app.forge().storage.keys.create(tenant, "stream")[0]
        body = {"model": "forge:coding", "stream": True, "messages": [{"role": "user", "content": "count to three"}]}
        with functions_http(handlers["http"], FakeDurableClient()) as http, \
                http.stream("POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as sse:
            lines = sse.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            finished_when_first_arrived = upstream.streams_finished
            hold.set()  # only now may the upstream send the rest
            rest = [line for line in lines if line.startswith("data: ")]
    assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
    assert finished_when_first_arrived == 0 and upstream.streams_finished == 1
    assert rest[-1] == "data: [DONE]" and "three" in "".join(rest)


def test_a_start_durable_functions_did_not_take_is_a_503_and_the_reconciler_starts_the_job(functions, tenant):
    function_app, handlers = functions
    forge = function_app.forge()
    key = forge.storage.keys.create(tenant, "http")[0]
    client = FakeDurableClient(refuse_starts=1)
    with functions_http(handlers["http"], client) as http:
        refused = http.post("/api/v1/forge/jobs/trigger", json={"domain": "coding"}, headers={"X-API-Key": key})
    assert refused.status_code == 503 and "did not start" in refused.json()["detail"]
    [job] = forge.storage.jobs.scan(tenant)
    assert job.status.value == "COLLECTING" and client.started == []
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    with _clock(later):
        asyncio.run(handlers["reconcile_jobs"](TimerRequest(past_due=False), client))
    assert job.job_id in [instance for _, instance, _ in client.started]
    assert "reconcile.resumed" in [e.type for e in forge.storage.events.list(job.job_id).items]


def test_the_event_grid_trigger_goes_through_the_webhook_service_claiming_each_delivery_once(functions, tenant):
    function_app, handlers = functions
    forge = function_app.forge()
    job = forge.storage.jobs.create(DistillationJob(tenant=tenant, domain="coding"))
    client = FakeDurableClient()
    client.started.append(("distill", job.job_id, {}))
    event = func.EventGridEvent(id=f"grid-{job.job_id}", data={"runId": "r1", "runStatus": "Completed",
                                                               "runTags": {"forge_job_id": job.job_id,
                                                                           "forge_tenant": tenant}},
                                topic="/subscriptions/x", subject="runs/r1",
                                event_type="Microsoft.MachineLearningServices.RunStatusChanged",
                                event_time=None, data_version="2")
    asyncio.run(handlers["eventgrid_training"](event, client))
    asyncio.run(handlers["eventgrid_training"](event, client))  # Event Grid delivers at least once
    assert [e[:2] for e in client.events] == [(job.job_id, "training.updated")]
    recorded = [e for e in forge.storage.events.list(job.job_id).items if e.type == "training.webhook"]
    assert len(recorded) == 1 and recorded[0].data["delivery"] == event.id


def test_the_queue_trigger_writes_a_captured_call_and_sets_a_bad_one_aside_with_its_reason(functions, tenant):
    function_app, handlers = functions
    forge = function_app.forge()
    good = captured_call(tenant, "coding")
    handlers["capture_traces"](queue_message("m1", encode(good)))
    handlers["capture_traces"](queue_message("m1", encode(good)))  # delivered twice: still one trace
    assert [t.id for t in forge.storage.traces.scan(tenant)] == [good["trace_id"]]
    handlers["capture_traces"](queue_message(f"bad-{tenant}", encode({**good, "tenant": "../x"})))
    poisoned = PoisonedTraces(forge.storage.account).recent("-", limit=1000)
    assert any(p["messageId"] == f"bad-{tenant}" and "malformed" in p["reason"] for p in poisoned)


def queue_message(message_id: str, payload: bytes, dequeue_count: int = 1) -> QueueMessage:
    """What the host hands the queue trigger: the message bytes after base64 (host.json messageEncoding)."""
    return QueueMessage(id=message_id, body=payload, dequeue_count=dequeue_count)


def captured_call(tenant: str, domain: str, content: str = "hi") -> dict[str, Any]:
    created = datetime.now(timezone.utc)
    return {"trace_id": new_trace_id(domain, created), "tenant": tenant, "domain": domain,
            "created_at": created.isoformat(), "model": "gpt-4.1",
            "request": {"model": f"forge:{domain}", "messages": [{"role": "user", "content": content}]},
            "response": {"role": "assistant", "content": "hello"}, "usage": {"prompt_tokens": 3},
            "latency_ms": 12.5, "metadata": {"route": "teacher"}}


@contextmanager
def functions_http(handler: Any, client: Any) -> Iterator[httpx.Client]:
    """The HTTP function served as the Python worker serves it with the HTTP streams feature: the extension's
    FastAPI app with one catch-all route, which hands the FastAPI request to the function (with this
    invocation's durable client) and returns the function's response to be sent by the worker's server."""
    worker_app = WebApp()

    @worker_app.route
    async def catch_all(request: Request):
        request.path_params.clear()
        request.path_params.update({"route": request.url.path.lstrip("/")})  # as sync_route_params does
        return await handler(request, client)

    with serving(worker_app.get_app()) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


@contextmanager
def _clock(moment: datetime) -> Iterator[None]:
    """The reconciler's `now` comes from the timer function's clock: move it past the start grace."""
    import function_app

    real = function_app.datetime

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return moment

    function_app.datetime = Later
    try:
        yield
    finally:
        function_app.datetime = real
