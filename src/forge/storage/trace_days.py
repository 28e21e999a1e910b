"""Per-trace facts for daily charts, reading only a few properties of each row (never the conversation).

It reads the rows through `TraceRepository.rows` (the shards merged in time order); RowKey starts `{iso-ts}`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from forge.storage.traces import TraceRepository

FIELDS = ["RowKey", "score", "feedback", "model", "source", "prompt_tokens", "completion_tokens", "latency_ms"]


@dataclass(frozen=True)
class TraceFacts:
    day: str  # YYYY-MM-DD (UTC)
    score: float | None
    feedback: str | None
    model: str | None
    source: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None


def trace_facts(traces: TraceRepository, tenant: str, domain: str, since: datetime) -> Iterator[TraceFacts]:
    """The facts of each of the domain's traces created at or after `since`, oldest day first."""
    for e in traces.rows(tenant, domain, since=since, select=FIELDS):
        yield TraceFacts(e["RowKey"][:10], e.get("score"), e.get("feedback"), e.get("model"), e.get("source"),
                         e.get("prompt_tokens"), e.get("completion_tokens"), e.get("latency_ms"))
