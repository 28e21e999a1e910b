"""The capture queue (router calls on their way to the trace table), its poisoned messages and its counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from forge.domain.capture import BLOB_PREFIX, MAX_MESSAGE_CHARS, pointer, to_text
from forge.domain.errors import ConcurrentUpdate
from forge.domain.models import utcnow
from forge.storage.account import StorageAccount
from forge.storage.tables import quote
from forge.storage.traces import CONTAINER

QUEUE = "forge-traces"  # function_app.py's queue trigger names it too
POISON_TABLE = "capturepoison"
COUNTS_TABLE = "capturecounts"
COUNTERS = ("captured", "written", "poisoned")
_ensured: set[str] = set()


@dataclass
class Incoming:
    """A message as a drainer got it: its id, its bytes after base64, and how often it was handed out."""

    id: str
    payload: bytes
    dequeue_count: int
    receipt: Any = None  # what deleting it needs (the SDK's message), locally


class CaptureQueue:
    def __init__(self, account: StorageAccount, *, fast: bool = False):
        # `fast`: the router's client gives up quickly (one retry, short timeouts); the call's wait is bounded anyway.
        if fast:
            self.client = QueueClient(account.queues.url, QUEUE, credential=account.queues.credential,
                                      retry_total=1, initial_backoff=0.2, connection_timeout=2, read_timeout=5)
        else:
            self.client = account.queues.get_queue_client(QUEUE)
        self.blobs = account.blobs.get_container_client(CONTAINER)
        if account.queues.url not in _ensured:
            self.create()
            _ensured.add(account.queues.url)

    def create(self) -> None:
        """Create the queue if it is missing (idempotent)."""
        try:
            self.client.create_queue()
        except ResourceExistsError:
            pass

    def send(self, payload: bytes, name: str) -> None:
        """Put one call on the queue (never expiring); a call too large for a message goes to a blob first."""
        text = to_text(payload)
        if len(text) > MAX_MESSAGE_CHARS:
            blob = f"{BLOB_PREFIX}{name}"
            self.blobs.upload_blob(blob, payload, overwrite=True)
            text = to_text(pointer(blob))
        self.client.send_message(text, time_to_live=-1)

    def receive(self, count: int, visibility_s: int) -> list[Incoming]:
        from forge.domain.capture import InvalidCapture, from_text

        got = []
        for message in self.client.receive_messages(max_messages=count, visibility_timeout=visibility_s):
            try:
                payload = from_text(message.content)
            except InvalidCapture:
                payload = b""  # decoded again (and poisoned) by the drainer
            got.append(Incoming(message.id, payload, message.dequeue_count or 1, message))
            if len(got) >= count:
                break
        return got

    def delete(self, message: Incoming) -> None:
        try:
            self.client.delete_message(message.receipt)
        except ResourceNotFoundError:
            pass  # another drainer took it after its visibility ran out: the trace write is idempotent

    def read_blob(self, blob: str) -> bytes:
        return self.blobs.download_blob(blob).readall()

    def delete_blob(self, blob: str) -> None:
        try:
            self.blobs.delete_blob(blob)
        except ResourceNotFoundError:
            pass

    def backlog(self) -> tuple[int, float | None]:
        """(messages waiting, approximately; seconds the oldest has waited, None when none waits)."""
        waiting = self.client.get_queue_properties().approximate_message_count or 0
        oldest = next(iter(self.client.peek_messages(max_messages=1)), None)
        lag = (utcnow() - oldest.inserted_on).total_seconds() if oldest is not None and oldest.inserted_on else None
        return waiting, lag


class PoisonedTraces:
    """Messages set aside with their reason (PartitionKey tenant, or '-' when unknown; RowKey message id)."""

    def __init__(self, account: StorageAccount):
        _ensure_table(account, POISON_TABLE)
        self.client = account.tables.get_table_client(POISON_TABLE)
        self.blobs = account.blobs.get_container_client(CONTAINER)

    def add(self, tenant: str | None, message_id: str, reason: str, payload: bytes, attempts: int) -> None:
        # The message itself is kept (a blob beside the traces) so it can be read, fixed and replayed.
        blob = f"poisoned/{message_id}"
        self.blobs.upload_blob(blob, payload, overwrite=True)
        self.client.upsert_entity({"PartitionKey": tenant or "-", "RowKey": message_id, "reason": reason[:1000],
                                   "attempts": attempts, "blob": blob, "at": utcnow().isoformat()})

    def recent(self, tenant: str, limit: int = 5) -> list[dict[str, Any]]:
        rows = list(self.client.query_entities(f"PartitionKey eq {quote(tenant)}"))
        rows.sort(key=lambda row: row.get("at", ""), reverse=True)
        return [{"messageId": r["RowKey"], "reason": r.get("reason"), "attempts": r.get("attempts"),
                 "at": r.get("at")} for r in rows[:limit]]


class CaptureCounts:
    """Per tenant and day: calls captured, traces written, messages poisoned (ETag-guarded increments)."""

    def __init__(self, account: StorageAccount):
        _ensure_table(account, COUNTS_TABLE)
        self.client = account.tables.get_table_client(COUNTS_TABLE)

    def add(self, tenant: str, day: datetime, attempts: int = 10, **deltas: int) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import UpdateMode

        key = (tenant, f"{day:%Y%m%d}")
        for _ in range(attempts):
            try:
                found = self.client.get_entity(*key)
            except ResourceNotFoundError:
                entity = {"PartitionKey": key[0], "RowKey": key[1], **{c: deltas.get(c, 0) for c in COUNTERS}}
                try:
                    self.client.create_entity(entity)
                    return
                except ResourceExistsError:
                    continue
            entity = {"PartitionKey": key[0], "RowKey": key[1],
                      **{c: int(found.get(c, 0)) + deltas.get(c, 0) for c in COUNTERS}}
            try:
                self.client.update_entity(entity, mode=UpdateMode.REPLACE, etag=found.metadata["etag"],
                                          match_condition=MatchConditions.IfNotModified)
                return
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        raise ConcurrentUpdate(f"capture counts of {tenant} kept changing; retry.")

    def totals(self, tenant: str, since: datetime | None = None) -> dict[str, int]:
        query = f"PartitionKey eq {quote(tenant)}" + (f" and RowKey ge {quote(f'{since:%Y%m%d}')}" if since else "")
        totals = dict.fromkeys(COUNTERS, 0)
        for row in self.client.query_entities(query):
            for counter in COUNTERS:
                totals[counter] += int(row.get(counter, 0))
        return totals


def message_name() -> str:
    return uuid.uuid4().hex


def _ensure_table(account: StorageAccount, name: str) -> None:
    marker = f"{account.tables.url}|{name}"
    if marker not in _ensured:
        account.tables.create_table_if_not_exists(name)
        _ensured.add(marker)

