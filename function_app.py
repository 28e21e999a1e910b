"""Azure Functions entry (Python v2 model, one DFApp): timer, HTTP, Event Grid → forge; nothing else lives here."""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime, timezone
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response  # HTTP streams: the worker serves FastAPI

from forge.bootstrap import Forge, bootstrap
from forge.domain.webhooks import GridEvent
from forge.services import capture, runs, webhooks
from forge.services.reconcile import reconcile
from forge.storage.capture import QUEUE as CAPTURE_QUEUE, Incoming
from forge.workflow import canary_loop, orchestrator
from forge.workflow.activities import activity_names, build_activities
from forge.workflow.azure import DurableFunctionsOrchestrations, df_canary_loop, df_orchestrator, using_client
from forge.api.functions_http import AppResponse

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)  # Forge checks its own API keys
log = logging.getLogger("forge.functions")


@functools.lru_cache(maxsize=1)
def forge() -> Forge:
    return bootstrap()


@functools.lru_cache(maxsize=1)
def activities() -> dict[str, Any]:
    return build_activities(forge())


@functools.lru_cache(maxsize=1)
def asgi() -> Any:
    from forge.api.app import create_app

    return create_app(forge(), orchestrations=DurableFunctionsOrchestrations())


def run_activity(name: str, payload: Any) -> dict[str, Any]:
    return activities()[name](json.loads(payload) if isinstance(payload, str) else payload)


@app.orchestration_trigger(context_name="context", orchestration=orchestrator.NAME)
def distill(context: df.DurableOrchestrationContext):
    return (yield from df_orchestrator(context))


@app.orchestration_trigger(context_name="context", orchestration=canary_loop.NAME)
def canary_control(context: df.DurableOrchestrationContext):
    """One per domain, eternal: the canary's decision for each window, then continue-as-new (workflow/canary_loop)."""
    return (yield from df_canary_loop(context))


@app.activity_trigger(input_name="payload", activity=canary_loop.ACTIVITY)
def canary_step(payload: Any) -> dict[str, Any]:
    return run_activity(canary_loop.ACTIVITY, payload)


@app.activity_trigger(input_name="payload", activity=canary_loop.DRIFT_ACTIVITY)
def drift_check(payload: Any) -> dict[str, Any]:
    return run_activity(canary_loop.DRIFT_ACTIVITY, payload)


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
async def http(req: Request, client: Any) -> Response:
    """The FastAPI app (API, router, webhooks) behind one catch-all route; host.json's route prefix is empty.

    Through the HTTP streams feature: the worker's server sends the returned response, which is the app itself
    answering `req`, so SSE chunks and large bodies stream (api/functions_http.py)."""
    return AppResponse(asgi(), req, around=lambda: using_client(client))


@app.event_grid_trigger(arg_name="event")
@app.durable_client_input(client_name="client")
async def eventgrid_training(event: func.EventGridEvent, client: Any) -> None:
    """Azure ML `RunStatusChanged` → the same service as the HTTP webhook: the delivery claimed once, recorded on
    its job as `training.webhook`, `training.updated` raised on its run (which then polls)."""
    counts = await webhooks.grid_delivery(forge(), DurableFunctionsOrchestrations(client),
                                          [GridEvent(event.id, event.event_type, event.get_json())])
    log.info("Event Grid event %s: %s", event.id, counts)


@app.queue_trigger(arg_name="msg", queue_name=CAPTURE_QUEUE, connection="AzureWebJobsStorage")
def capture_traces(msg: func.QueueMessage) -> None:
    """One captured router call → its trace (services/capture.py, as `forge worker` drains it locally). Raising
    leaves the message for the host's retry; what can never be written is set aside with its reason instead."""
    message = Incoming(msg.id, msg.get_body(), msg.dequeue_count or 1)
    done = capture.handle(forge(), [message])
    if done.retry:
        raise RuntimeError(f"capture message {msg.id} not written yet (storage unreachable); the host retries it")


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
@app.durable_client_input(client_name="client")
async def reconcile_jobs(timer: func.TimerRequest, client: Any) -> None:
    """Every 5 minutes: queued runs (a drift alert's) are started, unfinished jobs whose run is missing, ended or stuck
    are resumed or failed with a reason, and due notifications are retried (services/reconcile.py, as `forge worker` does it locally)."""
    done = await reconcile(forge(), DurableFunctionsOrchestrations(client), runs.tenants(forge()),
                           datetime.now(timezone.utc))
    log.info("reconciled: started %s, resumed %s, failed %s, %d notifications delivered", done.started,
             done.resumed, done.failed, done.notified)
    orchestrations = DurableFunctionsOrchestrations(client)
    for wanted in canary_loop.loops_wanted(forge(), runs.tenants(forge())):  # each domain's control loop, once
        await orchestrations.ensure_loop(wanted)
