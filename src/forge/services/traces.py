"""Traces in and out: streaming import, batch ingest, listing, feedback and scores."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import IO, Any, Callable, Iterable, Iterator

from forge.domain.errors import DomainNotFound, InvalidInput
from forge.domain.models import Trace, is_golden, utcnow
from forge.domain.traces import InvalidTrace, parse_line, parse_record
from forge.storage import Storage
from forge.storage.imports import ImportRecord, ImportRecords
from forge.storage.tables import Page

MAX_BATCH = 1000


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    detail: str


@dataclass
class ImportSummary:
    lines: int = 0
    imported: int = 0  # new traces this run wrote
    rejected: Counter = field(default_factory=Counter)
    already: int = 0  # traces an earlier import of the same file had committed
    resumed_after: int = 0  # with --resume: lines skipped because an earlier import committed them

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


CHECKPOINT_LINES = 5000  # lines between import checkpoints: what a crash makes a rerun redo, at most


def import_jsonl(
    storage: Storage,
    stream: IO[bytes],
    *,
    tenant: str,
    domain: str,
    known_domains: Iterable[str],
    source: str = "import",
    on_reject: Callable[[Reject], None] = lambda reject: None,
    resume: bool = False,
    checkpoint_lines: int = CHECKPOINT_LINES,
) -> ImportSummary:
    """Import a JSONL stream line by line; a bad line is reported through `on_reject` and skipped, never fatal.

    Idempotent and resumable: each trace id is derived from (tenant, the line's own `id`, or the file's sha256 and
    line number), and a checkpoint per file records how far the import got. The same file imported again adds
    nothing (`already` says how many it had); `resume` skips what an interrupted import committed."""
    known = set(known_domains)
    _check_domain(domain, known)
    digest, stream = _fingerprint(stream)
    checkpoints = ImportRecords(storage.account)
    record = checkpoints.get(tenant, digest) or ImportRecord(tenant=tenant, file_sha256=digest, domain=domain)
    summary = ImportSummary()
    if record.finished:
        summary.lines, summary.already, summary.rejected = record.lines, record.imported, Counter(record.rejected)
        return summary
    committed = record.lines
    skip = committed if resume else 0
    if resume:
        summary.already, summary.rejected, summary.resumed_after = record.imported, Counter(record.rejected), skip
    now = record.started_at

    def traces(lines: Iterator[tuple[int, bytes]]) -> Iterator[Trace]:
        for number, line in lines:
            summary.lines = number
            if number <= skip or not line.strip():
                continue
            try:
                trace = parse_line(line, tenant=tenant, domain=domain, source=source, now=now,
                                   origin=f"{digest}:{number}")
                if trace.domain not in known:
                    raise InvalidTrace("unknown_domain", f"domain '{trace.domain}' is not configured")
            except InvalidTrace as bad:
                summary.rejected[bad.reason] += 1
                on_reject(Reject(number, bad.reason, bad.detail))
                continue
            if number <= committed:
                summary.already += 1  # written before, and written again identically (same id)
            yield trace

    numbered = enumerate(stream, start=1)
    while True:
        read, before = summary.lines, summary.already
        written = storage.traces.add(traces(islice(numbered, checkpoint_lines)))  # returns once all are stored
        if summary.lines == read:
            break
        summary.imported += written - (summary.already - before)
        if summary.lines > committed:  # past the last checkpoint: this chunk is committed now
            record = checkpoints.save(record, lines=summary.lines, imported=summary.already + summary.imported,
                                      rejected=dict(summary.rejected))
    checkpoints.save(record, lines=summary.lines, imported=summary.already + summary.imported,
                     rejected=dict(summary.rejected), finished=True)
    return summary


def _fingerprint(stream: IO[bytes]) -> tuple[str, IO[bytes]]:
    """The stream's sha256 and a stream to read it from the start (stdin is spooled to a temporary file)."""
    digest = hashlib.sha256()
    if stream.seekable():
        start = stream.tell()
        while block := stream.read(1 << 20):
            digest.update(block)
        stream.seek(start)
        return digest.hexdigest(), stream
    spool = tempfile.TemporaryFile()
    while block := stream.read(1 << 20):
        digest.update(block)
        spool.write(block)
    spool.seek(0)
    return digest.hexdigest(), spool


def ingest(
    storage: Storage, records: list[Any], *, tenant: str, domain: str, known_domains: Iterable[str], source: str = "api"
) -> tuple[list[str], list[Reject]]:
    """Store a batch of decoded records; returns the new trace ids and the rejects (by index, from 0)."""
    known = set(known_domains)
    _check_domain(domain, known)
    if len(records) > MAX_BATCH:
        raise InvalidInput(f"A batch holds at most {MAX_BATCH} traces (got {len(records)}); split it.")
    traces, rejects = [], []
    # A retried POST of the same batch gets the same ids (a record's own `id` wins over its place in the batch).
    batch = hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()
    now = utcnow()
    for index, record in enumerate(records):
        try:
            trace = parse_record(record, tenant=tenant, domain=domain, source=source, now=now,
                                 origin=f"{batch}:{index}")
            if trace.domain not in known:
                raise InvalidTrace("unknown_domain", f"domain '{trace.domain}' is not configured")
            traces.append(trace)
        except InvalidTrace as bad:
            rejects.append(Reject(index, bad.reason, bad.detail))
    storage.traces.add(traces)
    return [t.id for t in traces], rejects


def list_traces(storage: Storage, tenant: str, *, domain: str | None = None, since: datetime | None = None,
                until: datetime | None = None, limit: int = 100, continuation: str | None = None) -> Page[Trace]:
    """A page of the tenant's traces, oldest first within each domain."""
    return storage.traces.list(tenant, domain=domain, since=since, until=until, limit=limit,
                               continuation=continuation)


def router_calls(storage: Storage, tenant: str, domain: str, since: datetime, until: datetime,
                 page: int = 1000) -> Iterator[Trace]:
    """The domain's calls through the router from `since` (to the microsecond: keys keep milliseconds) up to
    `until`, oldest first, read a page at a time."""
    token = None
    while True:
        found = storage.traces.list(tenant, domain=domain, since=since, until=until, limit=page, continuation=token)
        yield from (t for t in found.items if t.source == "router" and t.created_at >= since)
        token = found.continuation
        if not token:
            return


def judge(storage: Storage, tenant: str, trace_id: str, *, feedback: str | None = None, score: float | None = None) -> Trace:
    """Record a person's verdict and/or a score on a trace."""
    if feedback is None and score is None:
        raise InvalidInput("Give feedback ('approved' or 'rejected') or a score from 0 to 100.")
    if feedback is not None and feedback not in ("approved", "rejected"):
        raise InvalidInput(f"feedback must be 'approved' or 'rejected' (got {feedback!r}).")
    if score is not None and not 0 <= score <= 100:
        raise InvalidInput(f"score must be from 0 to 100 (got {score}).")
    trace = storage.traces.get(tenant, trace_id)
    if feedback is not None:
        trace = storage.traces.set_feedback(tenant, trace_id, feedback)
    if score is not None:
        trace = storage.traces.set_score(tenant, trace_id, score)
    return trace


def _check_domain(domain: str, known: set[str]) -> None:
    if domain not in known:
        raise DomainNotFound(f"No domain '{domain}'. Known domains: {', '.join(sorted(known))}.")


@dataclass
class TraceCounts:
    total: int = 0
    golden: int = 0


def count_golden(
    storage: Storage,
    tenant: str,
    domain: str,
    min_score: float,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> TraceCounts:
    """How many traces a domain has (in a time window), and how many of them are golden."""
    counts = TraceCounts()
    for score, feedback in storage.traces.verdicts(tenant, domain=domain, since=since, until=until):
        counts.total += 1
        counts.golden += is_golden(score, feedback, min_score)
    return counts


def migrate_trace_keys(storage: Storage, *, tenant: str | None = None,
                       progress: Callable[[int], None] | None = None) -> int:
    """Move stored traces to their keys for the configured shard count; safe to run again, or after a crash."""
    return storage.traces.migrate(lambda t: tenant is None or t == tenant, progress)
