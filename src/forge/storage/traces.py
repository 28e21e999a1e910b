"""Traces in Table storage, partitioned by tenant, domain, shard and day; bodies over 32 KiB go to Blob.

PartitionKey `{tenant}|{domain}|s{shard:02d}|{yyyymmdd}`, RowKey `{iso-ts}|{id}`; the shard is a hash of the trace
id (`FORGE_TRACE_SHARDS`, default 16), so no partition grows past a day's share of one shard, and every key is
derived from the id alone. The shard comes before the day so that each shard of a domain is one stream in time
order (a PartitionKey prefix): reads merge those streams by RowKey, never buffering a day. Rows written before
sharding (`{tenant}|{domain}|{yyyymmdd}`) are read as one more stream until `forge storage migrate` moves them.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError, ServiceResponseError
from azure.data.tables import UpdateMode

from forge.domain.errors import TraceNotFound
from forge.domain.models import Trace
from forge.domain.traces import InvalidTrace, split_trace_id
from forge.storage.account import StorageAccount
from forge.storage.tables import (Page, RecordTable, check_limit, decode_cursor, encode_cursor, from_entity,
                                  prefix_filter, quote, to_entity)

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


DEFAULT_SHARDS = 16
MAX_SHARDS = 100  # two digits in the key
LEGACY_STREAM = "2"  # unsharded rows: their day (2xxx) follows the domain; shards start with 's'


def shard_of(trace_id: str, shards: int) -> int:
    """A stable shard for a trace id (the same in every process and release)."""
    return int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=4).digest(), "big") % shards


def trace_keys(tenant: str, trace_id: str, shards: int = DEFAULT_SHARDS) -> tuple[str, str]:
    """PartitionKey `{tenant}|{domain}|s{shard:02d}|{yyyymmdd}`, RowKey `{iso-ts}|{id}`, both from the id alone."""
    domain, moment = split_trace_id(trace_id)
    return (f"{tenant}|{domain}|s{shard_of(trace_id, shards):02d}|{moment:%Y%m%d}",
            f"{row_time(moment)}|{trace_id}")


def legacy_keys(tenant: str, trace_id: str) -> tuple[str, str]:
    """The keys a trace had before sharding: PartitionKey `{tenant}|{domain}|{yyyymmdd}`."""
    domain, moment = split_trace_id(trace_id)
    return f"{tenant}|{domain}|{moment:%Y%m%d}", f"{row_time(moment)}|{trace_id}"


class TraceRepository:
    def __init__(self, account: StorageAccount, shards: int = DEFAULT_SHARDS):
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"trace shards must be 1 to {MAX_SHARDS}, not {shards}")
        self.shards = shards
        self.table = RecordTable(account.tables.get_table_client("traces"), Trace,
                                 lambda t: trace_keys(t.tenant, t.id, shards))
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
        return self._trace(self._entity_of(tenant, trace_id))

    def _entity_of(self, tenant: str, trace_id: str) -> Any:
        """The stored row of a trace: at its sharded keys, or (before `forge storage migrate`) at its old ones."""
        pk, rk = self._keys(tenant, trace_id)
        for keys in ((pk, rk), legacy_keys(tenant, trace_id)):
            try:
                return self.table.client.get_entity(*keys)
            except ResourceNotFoundError:
                continue
        raise TraceNotFound(f"No trace '{trace_id}' for this tenant; list traces to find its id.")

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
        """Oldest first (by domain when none is given); the token is opaque: where the page ended."""
        check_limit(limit)
        start, after = decode_cursor(continuation) or (None, None)  # the domain and the RowKey a page ended at
        items: list[Trace] = []
        for name in [domain] if domain else self._domains(tenant, start):
            last = after if domain or name == start else None  # where this domain's rows resume
            for entity in self._rows(tenant, name, since, until, after=last, page=limit + 1):
                if len(items) == limit:  # one more row exists: the next page starts after the last one shown
                    return Page(items, encode_cursor(name, last or ""))
                items.append(self._trace(entity))
                last = entity["RowKey"]
        return Page(items, None)

    def scan(
        self, tenant: str, *, domain: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Trace]:
        """Every trace, oldest first within each domain."""
        for name in [domain] if domain else self._domains(tenant):
            for entity in self._rows(tenant, name, since, until):
                yield self._trace(entity)

    def scan_shard(self, tenant: str, domain: str, shard: int | None, *, since: datetime | None = None,
                   until: datetime | None = None) -> Iterator[Trace]:
        """One shard's traces, oldest first (`None`: the rows `forge storage migrate` has not moved yet). Curation
        maps shards in parallel and merges them by id, which is the order `scan` gives."""
        prefix = f"{tenant}|{domain}|{LEGACY_STREAM}" if shard is None else f"{tenant}|{domain}|s{shard:02d}|"
        for entity in self._stream(prefix, since, until, None, None, None):
            yield self._trace(entity)

    def verdicts(
        self, tenant: str, *, domain: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[float | None, str | None]]:
        """(score, feedback) of each trace, reading only those two properties."""
        for name in [domain] if domain else self._domains(tenant):
            for entity in self._rows(tenant, name, since, until, select=["RowKey", "score", "feedback"]):
                yield entity.get("score"), entity.get("feedback")

    def calls(self, tenant: str, *, domain: str, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Model, tokens, latency and source of each trace, reading only those properties (for usage)."""
        select = ["RowKey", "model", "prompt_tokens", "completion_tokens", "latency_ms", "source"]
        for entity in self._rows(tenant, domain, since, None, select=select):
            yield {k: v for k, v in dict(entity).items() if k != "RowKey"}

    def stamps(
        self, tenant: str, *, domain: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[str, float | None, str | None]]:
        """(trace id, score, feedback) of each trace, oldest first, reading only those properties (for caps)."""
        for entity in self._rows(tenant, domain, since, until, select=["RowKey", "score", "feedback"]):
            yield entity["RowKey"].partition("|")[2], entity.get("score"), entity.get("feedback")

    def set_feedback(self, tenant: str, trace_id: str, feedback: str) -> Trace:
        return self._merge(tenant, trace_id, {"feedback": feedback})

    def set_score(self, tenant: str, trace_id: str, score: float) -> Trace:
        return self._merge(tenant, trace_id, {"score": float(score)})

    def _merge(self, tenant: str, trace_id: str, fields: dict[str, Any]) -> Trace:
        entity = self._entity_of(tenant, trace_id)
        try:
            self.table.client.update_entity({"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"],
                                             **fields}, mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            raise TraceNotFound(f"No trace '{trace_id}' for this tenant; list traces to find its id.") from None
        return self.get(tenant, trace_id)

    def _keys(self, tenant: str, trace_id: str) -> tuple[str, str]:
        try:
            return trace_keys(tenant, trace_id, self.shards)
        except InvalidTrace as exc:
            raise TraceNotFound(f"No trace '{trace_id}': {exc.detail}.") from None

    def rows(self, tenant: str, domain: str, *, since: datetime | None = None, until: datetime | None = None,
             select: list[str] | None = None) -> Iterator[Any]:
        """The domain's raw rows (only `select`ed properties, RowKey always), oldest first."""
        return self._rows(tenant, domain, since, until, select=sorted({"RowKey", *select}) if select else None)

    def _rows(self, tenant: str, domain: str, since: datetime | None, until: datetime | None, *,
              after: str | None = None, select: list[str] | None = None, page: int | None = None) -> Iterator[Any]:
        """The domain's rows in time order: one query per shard (and one for unmigrated rows), merged by RowKey."""
        streams = [self._stream(f"{tenant}|{domain}|s{shard:02d}|", since, until, after, select, page)
                   for shard in range(self.shards)]
        streams.append(self._stream(f"{tenant}|{domain}|{LEGACY_STREAM}", since, until, after, select, page))
        previous = None
        for entity in heapq.merge(*streams, key=_row_key):
            if entity["RowKey"] != previous:  # a row caught mid-migration is in two streams: shown once
                yield entity
            previous = entity["RowKey"]

    def _stream(self, prefix: str, since: datetime | None, until: datetime | None, after: str | None,
                select: list[str] | None, page: int | None) -> Iterator[Any]:
        query = prefix_filter("PartitionKey", prefix)
        if since:
            query += f" and RowKey ge {quote(row_time(since))}"
            if not prefix.endswith(LEGACY_STREAM):  # days before `since` are skipped by key, not scanned
                query += f" and PartitionKey ge {quote(prefix + f'{since:%Y%m%d}')}"
        if until:
            query += f" and RowKey lt {quote(row_time(until))}"
        if after:
            query += f" and RowKey gt {quote(after)}"
        return iter(self.table.client.query_entities(query, select=select, results_per_page=page or 1000))

    def _domains(self, tenant: str, start: str | None = None) -> Iterator[str]:
        """The tenant's domains that hold traces, in order, one small query each (from `start`, if given)."""
        bound = f"{tenant}|{start}|" if start else f"{tenant}|"
        while True:
            found = next(iter(self.table.client.query_entities(
                f"PartitionKey ge {quote(bound)} and PartitionKey lt {quote(tenant + '|~')}",
                select=["PartitionKey"], results_per_page=1)), None)
            if found is None:
                return
            name = found["PartitionKey"].split("|")[1]
            yield name
            bound = f"{tenant}|{name}|~"

    def migrate(self, tenant_filter: Callable[[str], bool] = lambda _: True,
                progress: Callable[[int], None] | None = None) -> int:
        """Move every row not at its keys for this shard count (unsharded rows, or another count) to them: write
        the new row, then delete the old, so a crash at any point loses nothing and running it again finishes the
        job. Returns how many rows moved."""
        moved = 0
        for entity in self.table.client.query_entities("PartitionKey ge ' '"):
            pk, rk = entity["PartitionKey"], entity["RowKey"]
            tenant, trace_id = pk.partition("|")[0], rk.partition("|")[2]
            if not tenant_filter(tenant):
                continue
            try:
                wanted = trace_keys(tenant, trace_id, self.shards)
            except InvalidTrace:
                continue  # not one of ours: left where it is
            if wanted == (pk, rk):
                continue
            row = {k: v for k, v in dict(entity).items() if k not in ("PartitionKey", "RowKey")}
            self.table.client.upsert_entity({"PartitionKey": wanted[0], "RowKey": wanted[1], **row})
            self.table.client.delete_entity(pk, rk)
            moved += 1
            if progress and moved % 1000 == 0:
                progress(moved)
        return moved

    def _entity(self, trace: Trace) -> tuple[dict[str, Any], int]:
        pk, rk = trace_keys(trace.tenant, trace.id, self.shards)
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


def _row_key(entity: Any) -> str:
    return entity["RowKey"]


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
