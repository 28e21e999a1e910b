"""Notifications as an outbox: one record per finished job and channel, delivered at least once.

The record is written before the job's final status, so a crash in between cannot lose it; it is marked sent only
after the receiver answered 2xx, and retried with backoff until `MAX_AGE`. Its key is the delivery's stable id:
the `webhook-id` header and the CloudEvent `id`, so a receiver that sees it twice can tell.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from forge.domain.models import Record, utcnow

WEBHOOK, EVENTGRID = "webhook", "eventgrid"
FIRST_RETRY_S = 30.0
MAX_RETRY_S = 3600.0
MAX_AGE = timedelta(hours=24)
PROMOTED = ("production", "canary")  # promotion outcomes that put a model in front of traffic


class Notification(Record):
    tenant: str
    key: str  # `{job id}.{event type}.{channel}`
    job_id: str
    channel: Literal["webhook", "eventgrid"]
    type: str  # forge.job.completed, forge.job.failed, forge.model.promoted, …
    job_status: str  # the final status this tells of: delivered only while the job still has it
    payload: dict[str, Any] = Field(default_factory=dict)
    status: Literal["pending", "sent", "dead", "superseded"] = "pending"
    attempts: int = 0
    next_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    last_error: str | None = None


def event_types(status: str, promotion: str | None) -> list[str]:
    """The CloudEvent types a job finishing with `status` publishes."""
    types = [f"forge.job.{status.lower()}"]
    if status == "COMPLETED" and promotion in PROMOTED:
        types.append("forge.model.promoted")
    return types


def cloud_event(note: Notification) -> dict[str, Any]:
    """CloudEvents 1.0 (structured JSON), as Event Grid topics of the CloudEvents schema accept them."""
    return {"specversion": "1.0", "id": note.key, "type": note.type, "source": f"/forge/tenants/{note.tenant}",
            "subject": f"jobs/{note.job_id}", "time": note.created_at.isoformat(),
            "datacontenttype": "application/json", "data": note.payload}


def next_attempt(note: Notification, now: datetime) -> tuple[str, datetime]:
    """After a failed attempt: ("pending", when to try again) or ("dead", now) once it is older than MAX_AGE."""
    if now - note.created_at >= MAX_AGE:
        return "dead", now
    wait = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, note.attempts - 1))
    return "pending", now + timedelta(seconds=wait)
