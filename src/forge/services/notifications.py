"""Finishing a job: write its final status and tell whoever asked to be told, at least once.

Each channel (the `FORGE_NOTIFY_URL` webhook, the `FORGE_NOTIFY_EVENTGRID_ENDPOINT` topic) gets an outbox record
before the job's status is written (domain/outbox.py); one delivery is tried at once, and the reconciler's beat
(`deliver_due`) retries the rest with backoff. A notification is only delivered while its job still has the status
it tells of, so a record orphaned by a crash before the status was written is never sent.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime
from typing import Any

import httpx

from forge.bootstrap import Forge
from forge.domain.errors import ConcurrentUpdate, JobNotFound
from forge.domain.models import DistillationJob, JobStatus, utcnow
from forge.domain.outbox import EVENTGRID, WEBHOOK, Notification, cloud_event, event_types, next_attempt
from forge.services.jobs import JobRef, record, update_job
from forge.storage.outbox import Outbox

log = logging.getLogger("forge.services.notifications")
TIMEOUT_S = 10.0
ANY_STATUS = "-"  # a notification's job_status when it is not about a job's end
EVENTGRID_SCOPE = "https://eventgrid.azure.net/.default"


class NotifyRequest(JobRef):
    status: JobStatus
    reason: str | None = None
    model_version_id: str | None = None
    decision: str | None = None
    promotion: str | None = None


def notify(forge: Forge, request: NotifyRequest) -> dict[str, Any]:
    if not request.status.finished:
        raise ValueError(f"notify needs a final status, not {request.status.value}")

    def finish(job: DistillationJob) -> None:
        if job.status == request.status:
            return  # a retried notify changes nothing twice
        job.advance(request.status, error=request.reason if request.status == JobStatus.FAILED else None)
        if request.reason and request.status != JobStatus.FAILED:
            job.reason = request.reason
        if request.model_version_id:
            job.resulting_model_id = request.model_version_id

    before = forge.storage.jobs.get(request.tenant, request.job_id)
    summary = {"jobId": before.job_id, "tenant": before.tenant, "domain": before.domain,
               "status": request.status.value, "reason": request.reason,
               "resultingModelId": request.model_version_id or before.resulting_model_id,
               "decision": request.decision, "promotion": request.promotion}
    outbox = Outbox(forge.storage.account)
    notes = _notifications(forge, summary, request)
    for note in notes:  # first: a crash after this and before the status is written loses nothing
        outbox.add(note)
    job = update_job(forge, request.tenant, request.job_id, finish)
    if before.status != request.status:
        record(forge, job.job_id, "job.finished", f"{job.status.value}" + (f": {request.reason}" if request.reason
               else ""), level="error" if job.status == JobStatus.FAILED else "info", **summary)
    for note in outbox.for_job(job.tenant, job.job_id):
        if note.status == "pending":
            _attempt(forge, outbox, note, job, utcnow())
    return {"status": job.status.value, "reason": request.reason}


def announce(forge: Forge, tenant: str, job_id: str, kind: str, key: str, payload: dict[str, Any]) -> None:
    """A notification that is not a job's end (a canary decision, a drift alert): outboxed per channel, tried once
    now and retried by `deliver_due` like the others. `key` makes it unique (a repeat adds nothing)."""
    outbox = Outbox(forge.storage.account)
    channels = [(WEBHOOK, forge.settings.notify_url), (EVENTGRID, forge.settings.notify_eventgrid_endpoint)]
    for channel, target in channels:
        if not target:
            continue
        note = Notification(tenant=tenant, key=f"{key}.{kind}.{channel}", job_id=job_id, channel=channel, type=kind,
                            job_status=ANY_STATUS, payload=payload)
        outbox.add(note)
        stored = next((n for n in outbox.for_job(tenant, job_id) if n.key == note.key), None)
        if stored is not None and stored.status == "pending":
            _attempt(forge, outbox, stored, None, utcnow())


def deliver_due(forge: Forge, now: datetime | None = None) -> int:
    """Try every pending notification whose time has come; returns how many were delivered now."""
    now = now or utcnow()
    outbox, sent = Outbox(forge.storage.account), 0
    for note in outbox.pending():
        if note.next_at > now:
            continue
        try:
            job = forge.storage.jobs.get(note.tenant, note.job_id)
        except JobNotFound:
            job = None
        sent += _attempt(forge, outbox, note, job, now)
    return sent


def _notifications(forge: Forge, summary: dict[str, Any], request: NotifyRequest) -> list[Notification]:
    base = {"tenant": request.tenant, "job_id": request.job_id, "job_status": request.status.value}
    notes = []
    if forge.settings.notify_url:
        kind = f"forge.job.{request.status.value.lower()}"
        notes.append(Notification(**base, key=f"{request.job_id}.{kind}.{WEBHOOK}", channel=WEBHOOK, type=kind,
                                  payload=summary))
    if forge.settings.notify_eventgrid_endpoint:
        for kind in event_types(request.status.value, request.promotion):
            notes.append(Notification(**base, key=f"{request.job_id}.{kind}.{EVENTGRID}", channel=EVENTGRID,
                                      type=kind, payload=summary))
    return notes


def _attempt(forge: Forge, outbox: Outbox, note: Notification, job: DistillationJob | None, now: datetime) -> int:
    """One delivery of `note`, saved under its ETag; 1 when it was delivered now."""
    about_job = note.job_status != ANY_STATUS  # a canary decision or an alert is delivered whatever its job
    if about_job and (job is None or (job.status.finished and job.status.value != note.job_status)):
        note.status = "superseded"  # its job is gone or ended otherwise (e.g. failed by the reconciler)
    elif about_job and not job.status.finished:  # type: ignore[union-attr]
        return 0  # written before a status that never landed (yet): the retried notify finishes it
    else:
        note.attempts += 1
        try:
            _send(forge, note)
            note.status, note.sent_at, note.last_error = "sent", now, None
        except Exception as exc:  # refused, unreachable, no credential: the outcome stands, the delivery is retried
            note.status, note.next_at = next_attempt(note, now)
            note.last_error = _describe(exc)
    try:
        outbox.save(note)
    except ConcurrentUpdate:
        return 0  # another deliverer is on it
    if note.status == "dead":
        record(forge, note.job_id, "notify.failed", f"the {note.channel} notification {note.type} was not accepted "
               f"within a day ({note.attempts} attempts, last: {note.last_error}); it is no longer retried",
               level="warning")
    elif note.status == "pending" and note.attempts == 1:
        record(forge, note.job_id, "notify.retrying", f"the {note.channel} did not accept {note.type} "
               f"({note.last_error}); retrying with backoff", level="warning")
    return int(note.status == "sent")


class _Refused(Exception):
    pass


def _send(forge: Forge, note: Notification) -> None:
    settings = forge.settings
    if note.channel == WEBHOOK:
        url, body = settings.notify_url, note.payload
        headers = {"webhook-id": note.key, "webhook-timestamp": str(int(time.time()))}
    else:
        url, body = settings.notify_eventgrid_endpoint, [cloud_event(note)]
        headers = {"content-type": "application/cloudevents-batch+json; charset=utf-8", **_eventgrid_auth(forge)}
    if not url:
        raise _Refused("the channel is no longer configured")
    response = httpx.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    if not 200 <= response.status_code < 300:
        raise _Refused(f"HTTP {response.status_code}")


def _eventgrid_auth(forge: Forge) -> dict[str, str]:
    key = forge.settings.notify_eventgrid_key
    if key is not None:
        return {"aeg-sas-key": key.get_secret_value()}
    return {"authorization": f"Bearer {_credential().get_token(EVENTGRID_SCOPE).token}"}


@functools.lru_cache(maxsize=1)
def _credential() -> Any:
    from azure.identity import DefaultAzureCredential  # the app's managed identity (EventGrid Data Sender)

    return DefaultAzureCredential()


def _describe(exc: Exception) -> str:
    # The type only for transport errors: their messages can carry URLs with credentials.
    return str(exc) if isinstance(exc, _Refused) else type(exc).__name__
