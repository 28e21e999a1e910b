"""Completion webhooks: a provider says a training run changed, Forge wakes the job's run (`training.updated`).

Each accepted delivery is recorded on its job as a `training.webhook` event and raised on the job's orchestration
when an engine is attached; the run then polls the provider, so a webhook never decides an outcome by itself. A
delivery id is claimed before anything happens and released if handling fails, so a sender's retry is handled
afresh while a duplicate changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Mapping

from forge.bootstrap import Forge
from forge.domain import webhooks as rules
from forge.domain.errors import InvalidInput, JobNotFound
from forge.domain.models import JobEvent
from forge.services.runs import Orchestrations, tenants
from forge.services.training_events import job_for_azureml_event, tenant_for_azureml_event
from forge.storage.webhooks import WebhookDeliveries
from forge.domain.events import TRAINING_UPDATED

KEY_HEADER = "x-forge-webhook-key"
FINE_TUNING_EVENT = "fine_tuning.job."


async def openai_delivery(forge: Forge, engine: Orchestrations | None, headers: Mapping[str, str],
                          body: bytes) -> dict[str, Any]:
    """An OpenAI webhook: signature and age checked, then the fine-tuning job's Forge job woken once."""
    secret = forge.settings.openai_webhook_secret
    if secret is None:
        raise rules.WebhookNotConfigured("Set FORGE_OPENAI_WEBHOOK_SECRET to the whsec_… secret of your OpenAI "
                                         "webhook endpoint to receive fine-tuning webhooks.")
    delivery = rules.verify(secret.get_secret_value(), headers, body, time.time())
    event = _json(body)
    kind, data = str(event.get("type", "")), event.get("data") or {}
    if not kind.startswith(FINE_TUNING_EVENT) or not isinstance(data, dict) or not data.get("id"):
        return {"status": "ignored", "reason": f"'{kind}' is not a fine-tuning job event"}
    deliveries = WebhookDeliveries(forge.storage.account)
    if not deliveries.claim("openai", delivery):
        raise rules.WebhookReplayed(f"Delivery {delivery} was received before; nothing changed.")
    try:
        # Only the provider job id is in the event; its metadata (set by `start`) names the Forge job.
        ref = await asyncio.to_thread(_openai_job, forge, data["id"])
        if ref is None:
            return {"status": "ignored", "reason": f"{data['id']} belongs to no job of this Forge"}
        return await _wake(forge, engine, ref, source="openai", delivery=delivery, event=kind,
                           provider_job_id=data["id"])
    except BaseException:
        deliveries.release("openai", delivery)
        raise


async def eventgrid_delivery(forge: Forge, engine: Orchestrations | None, key: str | None,
                             body: bytes) -> dict[str, Any]:
    """Event Grid: the subscription handshake, or Azure ML `RunStatusChanged` events mapped to their jobs."""
    _check_key(forge, key)
    events = rules.grid_events(_json(body, array=True))
    for event in events:
        if event.type == rules.VALIDATION_EVENT:
            code = event.data.get("validationCode") if isinstance(event.data, dict) else None
            if not code:
                raise InvalidInput("The subscription validation event has no data.validationCode.")
            return {"validationResponse": code}
    return await grid_delivery(forge, engine, events)


async def grid_delivery(forge: Forge, engine: Orchestrations | None, events: list[rules.GridEvent]) -> dict[str, int]:
    """Authenticated Event Grid events (the HTTP webhook after its key, or the Functions Event Grid trigger):
    each delivery claimed once, recorded on its job, and raised on the job's run."""
    counts = {"accepted": 0, "duplicates": 0, "ignored": 0}
    deliveries = WebhookDeliveries(forge.storage.account)
    for event in events:
        job_id = job_for_azureml_event(event.data) if event.type == rules.RUN_STATUS_CHANGED else None
        if job_id is None:
            counts["ignored"] += 1
            continue
        if not deliveries.claim("eventgrid", event.id, job_id):
            counts["duplicates"] += 1
            continue
        try:
            ref = await asyncio.to_thread(_stored_job, forge, tenant_for_azureml_event(event.data), job_id)
            if ref is not None:
                await _wake(forge, engine, ref, source="eventgrid", delivery=event.id, event=event.type,
                            run_status=_run_status(event.data))
        except BaseException:
            deliveries.release("eventgrid", event.id)
            raise
        counts["accepted" if ref else "ignored"] += 1
    return counts


def cloudevents_handshake(forge: Forge, key: str | None, origin: str | None) -> dict[str, str]:
    """The CloudEvents abuse-protection answer (an OPTIONS request): which origin may deliver, at any rate."""
    _check_key(forge, key)
    return {"WebHook-Allowed-Origin": origin or "*", "WebHook-Allowed-Rate": "*"}


async def _wake(forge: Forge, engine: Orchestrations | None, ref: tuple[str, str], *, source: str, delivery: str,
                event: str, **details: Any) -> dict[str, Any]:
    """Raise `training.updated` on the (stored) job `ref`'s run and record the delivery on the job."""
    _, job_id = ref
    # Raised before it is recorded: if recording fails, the sender's retry raises again (one extra, idempotent poll).
    raised = False
    if engine is not None:
        raised = await engine.raise_event(job_id, TRAINING_UPDATED, {"source": source, "event": event,
                                                                     "delivery": delivery})
    forge.storage.events.append(job_id, JobEvent(
        job_id=job_id, type="training.webhook", message=f"{source} webhook: {event}",
        data={"source": source, "delivery": delivery, "event": event, "raised": raised, **details}))
    return {"status": "accepted", "jobId": job_id, "raised": raised}


def _openai_job(forge: Forge, provider_job_id: str) -> tuple[str, str] | None:
    from forge.providers.registry import training_provider

    ref = training_provider(forge, "openai").forge_job(provider_job_id)  # type: ignore[attr-defined]
    return _stored_job(forge, ref[0], ref[1]) if ref else None


def _stored_job(forge: Forge, tenant: str | None, job_id: str) -> tuple[str, str] | None:
    """(tenant, job id): the tenant the event names, else whichever known tenant holds the job."""
    for candidate in [tenant] if tenant else tenants(forge):
        try:
            forge.storage.jobs.get(candidate, job_id)
            return candidate, job_id
        except JobNotFound:
            continue
    return None


def _check_key(forge: Forge, key: str | None) -> None:
    expected = forge.settings.eventgrid_webhook_key
    if expected is None:
        raise rules.WebhookNotConfigured("Set FORGE_EVENTGRID_WEBHOOK_KEY and give it to the Event Grid subscription "
                                         "(?code=KEY on its URL, or an X-Forge-Webhook-Key delivery header).")
    if not rules.key_matches(expected.get_secret_value(), key):
        raise rules.WebhookRejected("Wrong or missing webhook key: send FORGE_EVENTGRID_WEBHOOK_KEY as ?code=KEY or "
                                    "the X-Forge-Webhook-Key header.")


def _run_status(data: Any) -> str | None:
    return data.get("runStatus") or data.get("RunStatus") if isinstance(data, dict) else None


def _json(body: bytes, array: bool = False) -> Any:
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidInput("The webhook body is not JSON.") from None
    if not isinstance(value, (dict, list) if array else dict):
        raise InvalidInput("The webhook body is not a JSON object.")
    return value
