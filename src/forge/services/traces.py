"""Traces in and out: streaming import, batch ingest, listing, feedback and scores."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Callable, Iterable, Iterator

from forge.domain.errors import DomainNotFound, InvalidInput
from forge.domain.models import Trace, is_golden, utcnow
from forge.domain.traces import InvalidTrace, parse_line, parse_record
from forge.storage import Storage

MAX_BATCH = 1000


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    detail: str


@dataclass
class ImportSummary:
    lines: int = 0
    imported: int = 0
    rejected: Counter = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def import_jsonl(
    storage: Storage,
    stream: IO[bytes],
    *,
    tenant: str,
    domain: str,
    known_domains: Iterable[str],
    source: str = "import",
    on_reject: Callable[[Reject], None] = lambda reject: None,
) -> ImportSummary:
    """Import a JSONL stream line by line; a bad line is reported through `on_reject` and skipped, never fatal."""
    known = set(known_domains)
    _check_domain(domain, known)
    summary = ImportSummary()

    def traces() -> Iterator[Trace]:
        for number, line in enumerate(stream, start=1):
            summary.lines = number
            if not line.strip():
                continue
            try:
                trace = parse_line(line, tenant=tenant, domain=domain, source=source, now=utcnow())
                if trace.domain not in known:
                    raise InvalidTrace("unknown_domain", f"domain '{trace.domain}' is not configured")
            except InvalidTrace as bad:
                summary.rejected[bad.reason] += 1
                on_reject(Reject(number, bad.reason, bad.detail))
                continue
            yield trace

    summary.imported = storage.traces.add(traces())
    return summary


def ingest(
    storage: Storage, records: list[Any], *, tenant: str, domain: str, known_domains: Iterable[str], source: str = "api"
) -> tuple[list[str], list[Reject]]:
    """Store a batch of decoded records; returns the new trace ids and the rejects (by index, from 0)."""
    known = set(known_domains)
    _check_domain(domain, known)
    if len(records) > MAX_BATCH:
        raise InvalidInput(f"A batch holds at most {MAX_BATCH} traces (got {len(records)}); split it.")
    traces, rejects = [], []
    for index, record in enumerate(records):
        try:
            trace = parse_record(record, tenant=tenant, domain=domain, source=source, now=utcnow())
            if trace.domain not in known:
                raise InvalidTrace("unknown_domain", f"domain '{trace.domain}' is not configured")
            traces.append(trace)
        except InvalidTrace as bad:
            rejects.append(Reject(index, bad.reason, bad.detail))
    storage.traces.add(traces)
    return [t.id for t in traces], rejects


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
