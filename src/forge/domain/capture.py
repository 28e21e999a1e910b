"""A router call on its way to the trace table: the captured record, its queue message, and the trace it becomes.

The router puts one message per call on the capture queue before the call ends; a drainer (the queue-triggered
function in Azure, `forge worker` locally) turns it into a trace. The trace id is the call's request id
(`{domain}.{ULID}`, minted when the call began), so a message delivered twice writes the same row once.

A message is `base64(zlib(JSON))`: what the Functions queue trigger decodes by default (base64), small enough for
the 64 KiB queue limit for most calls; a larger one names a blob that holds the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from forge.domain import ids
from forge.domain.models import Trace

MAX_MESSAGE_CHARS = 60_000  # Azure's limit is 64 KiB per message; base64 text, so one byte a character
BLOB_PREFIX = "captured/"


class InvalidCapture(ValueError):
    """A message that can never become a trace; `reason` says why (kept with the poisoned message)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CapturedCall(BaseModel):
    """What the router records of one answered call (written by Forge, still checked: a queue can hold anything)."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    tenant: str
    domain: str
    created_at: datetime
    model: str
    request: dict[str, Any]
    response: dict[str, Any]
    usage: dict[str, Any] | None = None
    latency_ms: float
    metadata: dict[str, Any] = {}
    user: str | None = None
    conversation_id: str | None = None

    def trace(self) -> Trace:
        usage = self.usage or {}
        return Trace(
            id=self.trace_id, tenant=self.tenant, domain=self.domain, created_at=self.created_at, model=self.model,
            messages=self.request.get("messages") or [], response=self.response, tools=self.request.get("tools"),
            prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
            latency_ms=round(self.latency_ms, 3), source="router", user=self.user,
            conversation_id=self.conversation_id, metadata=self.metadata)


def encode(call: dict[str, Any]) -> bytes:
    """The message bytes (before base64) of a captured call."""
    return zlib.compress(orjson.dumps(call), 1)  # level 1: most of the saving at a fraction of the CPU


def to_text(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def from_text(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCapture("the message is not base64") from None


def pointer(blob: str) -> bytes:
    """A message that names the blob holding a call too large for the queue."""
    return encode({"blob": blob})


def decode(payload: bytes) -> dict[str, Any]:
    """The JSON object a message (after base64) holds; InvalidCapture when it is not one of ours."""
    try:
        value = orjson.loads(zlib.decompress(payload))
    except (zlib.error, orjson.JSONDecodeError):
        raise InvalidCapture("the message is not compressed JSON") from None
    if not isinstance(value, dict):
        raise InvalidCapture("the message is not a JSON object")
    return value


def blob_of(value: dict[str, Any]) -> str | None:
    """The blob a pointer message names (only under `captured/`), or None for an inline call."""
    blob = value.get("blob")
    if blob is None:
        return None
    if not isinstance(blob, str) or not blob.startswith(BLOB_PREFIX) or ".." in blob or len(value) != 1:
        raise InvalidCapture("the message names a blob outside the capture folder")
    return blob


def parse(value: dict[str, Any]) -> CapturedCall:
    """The captured call, checked: ids in their formats, fields as Forge writes them."""
    try:
        call = CapturedCall.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidCapture(f"not a captured call: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if not ids.TRACE.valid(call.trace_id) or not ids.TENANT.valid(call.tenant) or not ids.DOMAIN.valid(call.domain):
        raise InvalidCapture("not a captured call: its trace id, tenant or domain is malformed")
    if not call.trace_id.startswith(call.domain + "."):
        raise InvalidCapture("not a captured call: its trace id names another domain")
    return call
