"""Eval sets carved from a domain's golden traffic: which conversations to hold out (stratified, seeded), and the
frozen items they become. A conversation held out is never trained on. Pure."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from forge.domain import tasks
from forge.domain.content import content_text
from forge.domain.curation import digest64, group_key
from forge.domain.models import Record, Trace, utcnow
from forge.domain.tasks import EvalSetRules

ALL = "all"


class EvalItem(BaseModel):
    """One held-out conversation: the prompt turns, the tools offered, and the teacher's answer as the reference."""

    id: str  # the trace it came from
    group: str  # its conversation (domain.curation.group_key): training never sees this conversation
    stratum: str = ALL
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    reference: str
    reference_tool_calls: list[dict[str, Any]] | None = None
    added_in: int = 1  # the set version that added it


class EvalSet(Record):
    """One version of a domain's eval set; its items are in Blob, every earlier version's items included."""

    tenant: str
    domain: str
    version: int
    size: int
    strata: dict[str, int] = Field(default_factory=dict)
    added: int = 0
    until: datetime | None = None  # traffic up to here has been considered; the next carve reads after it
    job_id: str | None = None
    sha256: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


def conversation(trace: Trace) -> str:
    """The conversation a trace belongs to, as curation groups examples (so holding it out is by conversation)."""
    return group_key(trace.messages, trace.conversation_id)


def stratum_of(rules: EvalSetRules, task: tasks.TaskRules, trace: Trace) -> str:
    """The stratum a trace falls in: the task's label or first function, a metadata value, or one for all."""
    by = rules.stratify_by
    answer = content_text(trace.response.get("content"))
    if by in ("auto", "task"):
        found = tasks.stratum(task, answer, trace.response.get("tool_calls"))
        if found is not None or by == "task":
            return found or ALL
        by = "metadata.category"
    if by.startswith("metadata."):
        value: Any = trace.metadata
        for part in by.split(".")[1:]:
            value = value.get(part) if isinstance(value, dict) else None
        return str(value)[:64] if isinstance(value, (str, int, float, bool)) else ALL
    return ALL


def wanted(rules: EvalSetRules, current: int, candidates: int) -> int:
    """How many conversations join the set now: up to its size, at most `max_share` of the new ones."""
    return max(0, min(rules.size - current, math.floor(rules.max_share * candidates)))


def choose(strata: dict[str, str], count: int, seed: int) -> list[str]:
    """`count` conversations from {conversation: stratum}, each stratum in proportion to its share (largest
    remainder, every stratum at least one when there is room), in a seeded order: the same input, the same pick."""
    if count <= 0 or not strata:
        return []
    by_stratum: dict[str, list[str]] = {}
    for group, name in strata.items():
        by_stratum.setdefault(name, []).append(group)
    for groups in by_stratum.values():
        groups.sort(key=lambda g: digest64(f"{seed}\x1f{g}"))
    total, count = len(strata), min(count, len(strata))
    exact = {name: count * len(groups) / total for name, groups in by_stratum.items()}
    shares = {name: math.floor(x) for name, x in exact.items()}
    if count >= len(by_stratum):
        shares = {name: max(1, n) for name, n in shares.items()}
    for name in sorted(exact, key=lambda n: (shares[n] - exact[n], n)):  # largest remainders first
        if sum(shares.values()) >= count:
            break
        shares[name] += 1
    while sum(shares.values()) > count:  # the minimum of one took too many: trim the largest
        largest = max(shares, key=lambda n: (shares[n], n))
        shares[largest] -= 1
    return [g for name in sorted(by_stratum) for g in by_stratum[name][: shares[name]]]


def item_of(trace: Trace, group: str, stratum: str, version: int) -> EvalItem:
    """The frozen item a held-out trace becomes: training-only keys such as `weight` dropped."""
    messages = [{k: v for k, v in m.items() if k != "weight"} for m in trace.messages]
    return EvalItem(id=trace.id, group=group, stratum=stratum, messages=messages, tools=trace.tools,
                    reference=content_text(trace.response.get("content")),
                    reference_tool_calls=trace.response.get("tool_calls") or None, added_in=version)
