"""`function_app.py`'s handlers called as the Functions host would, with `azure.functions` objects.

The durable client is the one part faked: it is the Functions host's, unreachable here. Storage is Azurite.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest
import pytest

from tests.factories import chat_line


class FakeDurableClient:
    """Records what the handlers ask of Durable Functions; knows the instances it started."""

    def __init__(self):
        self.started: list[tuple[str, str, Any]] = []
        self.events: list[tuple[str, str, Any]] = []

    async def get_status(self, instance_id: str):
        known = any(i == instance_id for _, i, _ in self.started)
        return SimpleNamespace(runtime_status="Running") if known else None

    async def start_new(self, name: str, instance_id: str | None = None, client_input: Any = None) -> str:
        self.started.append((name, instance_id, client_input))
        return instance_id

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
            "notify", "nightly", "http", "eventgrid_training"} <= set(handlers)
    timer = next(f for f in _FUNCTIONS if f.get_function_name() == "nightly")
    bindings = json.loads(timer.get_function_json())["bindings"]
    assert [b["schedule"] for b in bindings if b["type"] == "timerTrigger"] == ["%FORGE_SCHEDULE_CRON%"]


def test_an_azure_ml_run_event_raises_training_updated_on_its_job(functions):
    _, handlers = functions
    client = FakeDurableClient()
    client.started.append(("distill", "01JOB", {}))
    event = func.EventGridEvent(id="e1", data={"runId": "r1", "runStatus": "Completed",
                                               "runTags": {"forge_job_id": "01JOB"}},
                                topic="/subscriptions/x", subject="runs/r1",
                                event_type="Microsoft.MachineLearningServices.RunStatusChanged",
                                event_time=None, data_version="2")
    asyncio.run(handlers["eventgrid_training"](event, client))
    assert client.events == [("01JOB", "training.updated", {"source": "eventgrid", "event_id": "e1"})]
    stranger = func.EventGridEvent(id="e2", data={"runId": "r2"}, topic="t", subject="s",
                                   event_type="Microsoft.MachineLearningServices.RunStatusChanged",
                                   event_time=None, data_version="2")
    asyncio.run(handlers["eventgrid_training"](stranger, client))
    assert len(client.events) == 1


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
    health = asyncio.run(handlers["http"](func.HttpRequest("GET", "http://localhost/health", body=b"",
                                                             route_params={"route": "health"}), client))
    assert health.status_code == 200
    request = func.HttpRequest("POST", "http://localhost/api/v1/forge/jobs/trigger",
                               headers={"X-API-Key": key, "Content-Type": "application/json"},
                               body=json.dumps({"domain": "coding"}).encode(),
                               route_params={"route": "api/v1/forge/jobs/trigger"})
    response = asyncio.run(handlers["http"](request, client))
    assert response.status_code == 202
    job_id = json.loads(response.get_body())["jobId"]
    assert client.started == [("distill", job_id, client.started[0][2])]
    assert client.started[0][2]["tenant"] == tenant and client.started[0][2]["domain"] == "coding"
