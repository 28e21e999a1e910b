"""Traces in Table storage, partitioned by tenant, domain and day; bodies over 32 KiB go to Blob."""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, Iterable, Iterator

from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError, ServiceResponseError
from azure.data.tables import UpdateMode

from forge.domain.errors import TraceNotFound
from forge.domain.models import Trace
from forge.domain.traces import InvalidTrace, split_trace_id
from forge.storage.account import StorageAccount
from forge.storage.tables import Page, RecordTable, from_entity, prefix_filter, quote, to_entity

BODY_FIELDS = ("messages", "response", "tools", "metadata")
INLINE_BODY_LIMIT = 32 * 1024  # bytes of JSON kept in the entity; Table string properties cap at 64 KiB
BATCH_ROWS = 100  # Table transactions take at most 100 operations ...
BATCH_BYTES = 3 * 1024 * 1024  # ... and 4 MiB; stay clear of both
BUFFER_ROWS = 5000  # rows held across partitions before everything is flushed: bounds import memory
CONTAINER = "traces"
FLUSH_WORKERS = 4  # transactions in flight against Azure; Azurite gets one at a time (see `add`)
SEND_ATTEMPTS = 8
MAX_BACKOFF_S = 8.0


def row_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def trace_keys(tenant: str, trace_id: str) -> tuple[str, str]:
    """PartitionKey `{tenant}|{domain}|{yyyymmdd}`, RowKey `{iso-ts}|{id}`, both derived from the id alone."""
    domain, moment = split_trace_id(trace_id)
    return f"{tenant}|{domain}|{moment:%Y%m%d}", f"{row_time(moment)}|{trace_id}"


class TraceRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(account.tables.get_table_client("traces"), Trace, lambda t: trace_keys(t.tenant, t.id))
        self.blobs = account.blobs.get_container_client(CONTAINER)
        # Azurite is one Node process whose writes slow as a partition grows (it scans the partition for each
        # row): concurrent transactions only queue there, and a queued one can wait past its socket's timeouts.
        self.flush_workers = 1 if account.emulated else FLUSH_WORKERS

    def add(self, traces: Iterable[Trace]) -> int:
        """Store traces in per-partition transactions; returns how many were written. Memory stays bounded."""
        pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        sizes: dict[str, int] = defaultdict(int)
        buffered = 0
        with _Flusher(self.table.client, self.flush_workers) as flusher:
            for trace in traces:
                entity, size = self._entity(trace)
                pk = entity["PartitionKey"]
                if len(pending[pk]) >= BATCH_ROWS or sizes[pk] + size > BATCH_BYTES:
                    rows = pending.pop(pk)
                    sizes.pop(pk)
                    buffered -= len(rows)
                    flusher.submit(rows)
                pending[pk].append(entity)
                sizes[pk] += size
                buffered += 1
                if buffered >= BUFFER_ROWS:
                    for rows in pending.values():
                        flusher.submit(rows)
                    pending.clear()
                    sizes.clear()
                    buffered = 0
            for rows in pending.values():
                flusher.submit(rows)
        return flusher.written

    def get(self, tenant: str, trace_id: str) -> Trace:
        pk, rk = self._keys(tenant, trace_id)
        try:
            entity = self.table.client.get_entity(pk, rk)
        except ResourceNotFoundError:
            raise TraceNotFound(f"No trace '{trace_id}' for this tenant; list traces to find its id.") from None
        return self._trace(entity)

    def list(
        self,
        tenant: str,
        *,
        domain: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page[Trace]:
        return self.table.page(self._query(tenant, domain, since, until), limit, continuation, decode=self._trace)

    def scan(
        self, tenant: str, *, domain: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Trace]:
        for entity in self.table.client.query_entities(self._query(tenant, domain, since, until)):
            yield self._trace(entity)

    def verdicts(
        self, tenant: str, *, domain: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[float | None, str | None]]:
        """(score, feedback) of each trace, reading only those two properties."""
        query = self._query(tenant, domain, since, until)
        for entity in self.table.client.query_entities(query, select=["score", "feedback"]):
            yield entity.get("score"), entity.get("feedback")

    def calls(self, tenant: str, *, domain: str, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Model, tokens, latency and source of each trace, reading only those properties (for usage)."""
        query = self._query(tenant, domain, since, None)
        select = ["model", "prompt_tokens", "completion_tokens", "latency_ms", "source"]
        for entity in self.table.client.query_entities(query, select=select):
            yield dict(entity)

    def stamps(
        self, tenant: str, *, domain: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[str, float | None, str | None]]:
        """(trace id, score, feedback) of each trace, oldest first, reading only those properties (for caps)."""
        query = self._query(tenant, domain, since, until)
        for entity in self.table.client.query_entities(query, select=["RowKey", "score", "feedback"]):
            yield entity["RowKey"].partition("|")[2], entity.get("score"), entity.get("feedback")

    def set_feedback(self, tenant: str, trace_id: str, feedback: str) -> Trace:
        return self._merge(tenant, trace_id, {"feedback": feedback})

    def set_score(self, tenant: str, trace_id: str, score: float) -> Trace:
        return self._merge(tenant, trace_id, {"score": float(score)})

    def _merge(self, tenant: str, trace_id: str, fields: dict[str, Any]) -> Trace:
        pk, rk = self._keys(tenant, trace_id)
        try:
            self.table.client.update_entity({"PartitionKey": pk, "RowKey": rk, **fields}, mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            raise TraceNotFound(f"No trace '{trace_id}' for this tenant; list traces to find its id.") from None
        return self.get(tenant, trace_id)

    @staticmethod
    def _keys(tenant: str, trace_id: str) -> tuple[str, str]:
        try:
            return trace_keys(tenant, trace_id)
        except InvalidTrace as exc:
            raise TraceNotFound(f"No trace '{trace_id}': {exc.detail}.") from None

    @staticmethod
    def _query(tenant: str, domain: str | None, since: datetime | None, until: datetime | None) -> str:
        query = prefix_filter("PartitionKey", f"{tenant}|{domain}|" if domain else f"{tenant}|")
        if since:
            query += f" and RowKey ge {quote(row_time(since))}"
        if until:
            query += f" and RowKey lt {quote(row_time(until))}"
        return query

    def _entity(self, trace: Trace) -> tuple[dict[str, Any], int]:
        pk, rk = trace_keys(trace.tenant, trace.id)
        body = json.dumps({f: getattr(trace, f) for f in BODY_FIELDS}, ensure_ascii=False, default=str).encode()
        if len(body) <= INLINE_BODY_LIMIT:
            entity = to_entity(trace, pk, rk)
            return entity, len(body) + 1024
        # Large bodies live in Blob; uploading first means a stored row never points at a missing blob.
        path = f"{trace.tenant}/{trace.domain}/{trace.id}.json"
        self.blobs.upload_blob(path, body, overwrite=True)
        entity = to_entity(trace, pk, rk, skip=BODY_FIELDS)
        entity["body_blob"] = path
        return entity, 1024

    def _trace(self, entity: Any) -> Trace:
        entity = dict(entity)
        path = entity.pop("body_blob", None)
        if path:
            body = json.loads(self.blobs.download_blob(path).readall())
            for field in BODY_FIELDS:
                if body.get(field) is not None:
                    entity[field + "__json"] = json.dumps(body[field])
        return from_entity(Trace, entity)


class _Flusher:
    """Submits transactions on a few threads, with a bounded number in flight so memory stays flat."""

    def __init__(self, client: Any, workers: int = FLUSH_WORKERS):
        self.client = client
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forge-traces")
        self.inflight: deque[Future[int]] = deque()
        self.limit = workers * 2
        self.written = 0

    def submit(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if len(self.inflight) >= self.limit:
            self.written += self.inflight.popleft().result()
        self.inflight.append(self.pool.submit(self._send, rows))

    def _send(self, rows: list[dict[str, Any]]) -> int:
        # upsert: retrying a batch after a transient failure rewrites the same rows instead of failing.
        for attempt in range(SEND_ATTEMPTS):
            try:
                self.client.submit_transaction([("upsert", row) for row in rows])
                return len(rows)
            except (ServiceRequestError, ServiceResponseError):
                # A dropped connection (a server closing an idle keep-alive socket, a busy emulator) is worth
                # another try on a fresh one after the SDK's own retries; anything else is the caller's to see.
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                time.sleep(min(MAX_BACKOFF_S, 0.5 * 2**attempt))
        return 0

    def __enter__(self) -> "_Flusher":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            while self.inflight:
                future = self.inflight.popleft()
                if exc[0] is None:
                    self.written += future.result()
                else:
                    future.cancel()
        finally:
            self.pool.shutdown(wait=True)
