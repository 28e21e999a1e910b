"""Webhook authenticity and envelopes, without I/O: Standard Webhooks signatures (OpenAI) and Event Grid events.

OpenAI signs each delivery as Standard Webhooks prescribe: `webhook-signature: v1,<base64 HMAC-SHA256>` over
`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the endpoint's `whsec_<base64>` secret. A delivery more than
five minutes from now is refused, so a captured one cannot be replayed later; within the window its id is
remembered (services.webhooks). Event Grid authenticates with a shared key the subscription's URL or headers carry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Mapping

from forge.domain.errors import ForgeError, InvalidInput

TOLERANCE_S = 300
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"


class WebhookRejected(ForgeError):
    """Not signed or keyed as configured, or too old: nothing was read or changed."""

    status = 401
    title = "Webhook rejected"


class WebhookReplayed(ForgeError):
    """A delivery id seen before: it was handled then, so nothing changes now."""

    status = 409
    title = "Webhook already received"


class WebhookNotConfigured(ForgeError):
    status = 503
    title = "Webhook not configured"


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` value a sender holding `secret` puts on this delivery."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """The delivery's `webhook-id` when its signature and timestamp hold; WebhookRejected otherwise."""
    webhook_id, timestamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp",
                                                                  "webhook-signature"))
    if not (webhook_id and timestamp and signatures):
        raise WebhookRejected("A webhook needs webhook-id, webhook-timestamp and webhook-signature headers "
                              "(Standard Webhooks, as OpenAI sends them).")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRejected(f"webhook-timestamp '{timestamp}' is not Unix seconds.") from None
    if abs(now - sent_at) > TOLERANCE_S:
        raise WebhookRejected(f"webhook-timestamp is {int(now - sent_at)} s from now, outside ±{TOLERANCE_S} s: a "
                              "stale or replayed delivery (or this machine's clock is wrong).")
    expected = sign(secret, webhook_id, timestamp, body)
    # The header may carry several signatures (during a secret rotation): any one of ours will do.
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in signatures.split()):
        raise WebhookRejected("The webhook signature does not match: check that FORGE_OPENAI_WEBHOOK_SECRET is this "
                              "endpoint's whsec_… secret.")
    return webhook_id


def key_matches(expected: str, presented: str | None) -> bool:
    """A shared key compared in constant time."""
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


@dataclass(frozen=True)
class GridEvent:
    id: str
    type: str
    data: Any


def grid_events(payload: Any) -> list[GridEvent]:
    """Events of an Event Grid delivery in either schema: Event Grid (`eventType`) or CloudEvents (`type`)."""
    items = payload if isinstance(payload, list) else [payload]
    events = []
    for item in items:
        kind = item.get("eventType") or item.get("type") if isinstance(item, dict) else None
        if not (isinstance(kind, str) and isinstance(item.get("id"), str)):
            raise InvalidInput("An Event Grid delivery is a JSON array of events (or one CloudEvent), each with an "
                               "id and an eventType or type.")
        events.append(GridEvent(item["id"], kind, item.get("data")))
    return events


def _key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except binascii.Error:
            raise WebhookNotConfigured("FORGE_OPENAI_WEBHOOK_SECRET is not a valid whsec_<base64> secret; copy it "
                                       "again from the OpenAI dashboard.") from None
    return secret.encode()  # a bare secret is used as is, as OpenAI's SDK does
