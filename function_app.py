"""Azure Functions entry (Python v2 model, one DFApp): timer, HTTP, Event Grid → forge; nothing else lives here."""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime, timezone
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from forge.bootstrap import Forge, bootstrap
from forge.domain.events import TRAINING_UPDATED
from forge.services import runs
from forge.services.training_events import job_for_azureml_event
from forge.workflow import orchestrator
from forge.workflow.activities import activity_names, build_activities
from forge.workflow.azure import DurableFunctionsOrchestrations, current_client, df_orchestrator

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)  # Forge checks its own API keys
log = logging.getLogger("forge.functions")


@functools.lru_cache(maxsize=1)
def forge() -> Forge:
    return bootstrap()


@functools.lru_cache(maxsize=1)
def activities() -> dict[str, Any]:
    return build_activities(forge())


@functools.lru_cache(maxsize=1)
def asgi() -> func.AsgiMiddleware:
    from forge.api.app import create_app

    return func.AsgiMiddleware(create_app(forge(), orchestrations=DurableFunctionsOrchestrations()))


def run_activity(name: str, payload: Any) -> dict[str, Any]:
    return activities()[name](json.loads(payload) if isinstance(payload, str) else payload)


@app.orchestration_trigger(context_name="context", orchestration=orchestrator.NAME)
def distill(context: df.DurableOrchestrationContext):
    return (yield from df_orchestrator(context))


def _activity_function(name: str) -> Any:
    def activity(payload: Any) -> dict[str, Any]:
        return run_activity(name, payload)

    activity.__name__ = name  # the Functions host names each function after it
    return activity


# One activity function per stage, each a thin call into the same bound activities durabletask runs locally.
for _name in activity_names():
    app.activity_trigger(input_name="payload", activity=_name)(_activity_function(_name))


@app.timer_trigger(schedule="%FORGE_SCHEDULE_CRON%", arg_name="timer", run_on_startup=False)
@app.durable_client_input(client_name="client")
async def nightly(timer: func.TimerRequest, client: Any) -> None:
    """One run per tenant and domain with enough new golden traces; instance ids make a double fire start one."""
    f = forge()
    if not f.settings.enabled:
        log.info("nightly run skipped: FORGE_ENABLED is false")
        return
    started = await runs.nightly(f, DurableFunctionsOrchestrations(client), runs.tenants(f), datetime.now(timezone.utc))
    log.info("nightly run started %d jobs", len(started))


@app.route(route="{*route}", methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"])
@app.durable_client_input(client_name="client")
async def http(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    """The FastAPI app (API, router, webhooks) behind one catch-all route; host.json's route prefix is empty."""
    token = current_client.set(client)
    try:
        return await asgi().handle_async(req)
    finally:
        current_client.reset(token)


@app.event_grid_trigger(arg_name="event")
@app.durable_client_input(client_name="client")
async def eventgrid_training(event: func.EventGridEvent, client: Any) -> None:
    """Azure ML `RunStatusChanged` → `training.updated` on the job's orchestration (it then polls)."""
    job_id = job_for_azureml_event(event.get_json())
    if job_id is None:
        log.info("Event Grid event %s names no Forge job; ignored", event.id)
        return
    delivered = await DurableFunctionsOrchestrations(client).raise_event(
        job_id, TRAINING_UPDATED, {"source": "eventgrid", "event_id": event.id})
    log.info("training.updated for job %s %s", job_id, "delivered" if delivered else "had no running instance")
