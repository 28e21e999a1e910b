"""Per-trace facts for daily charts, reading only a few properties of each row (never the conversation).

It reads the rows through `TraceRepository.rows` (the shards merged in time order); RowKey starts `{iso-ts}`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from forge.storage.tables import JSON_SUFFIX
from forge.storage.traces import TraceRepository

FIELDS = ["RowKey", "score", "feedback", "model", "source", "prompt_tokens", "completion_tokens", "latency_ms"]
METADATA = "metadata" + JSON_SUFFIX  # a router trace's metadata (its route); absent when the body is kept in Blob


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
    route: str | None = None  # metadata.route of a router call, when asked for and kept in the row


def trace_facts(traces: TraceRepository, tenant: str, domain: str, since: datetime, *,
                with_route: bool = False) -> Iterator[TraceFacts]:
    """The facts of each of the domain's traces created at or after `since`, oldest day first; `with_route` also
    reads the small metadata property, for the route a router call took."""
    for e in traces.rows(tenant, domain, since=since, select=FIELDS + [METADATA] if with_route else FIELDS):
        yield TraceFacts(e["RowKey"][:10], e.get("score"), e.get("feedback"), e.get("model"), e.get("source"),
                         e.get("prompt_tokens"), e.get("completion_tokens"), e.get("latency_ms"),
                         _route(e.get(METADATA)) if with_route else None)


def _route(metadata: str | None) -> str | None:
    try:
        route = json.loads(metadata).get("route") if metadata else None
    except (ValueError, AttributeError):
        return None
    return route if isinstance(route, str) else None
