"""Canary state (table `canaries`: PartitionKey tenant, RowKey domain) and judged pairs (table `canarypairs`:
PartitionKey `{tenant}|{candidate}`, RowKey trace id). Written under ETags: a decision for a window lands once."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Literal

from pydantic import Field

from forge.domain.errors import AlreadyExists
from forge.domain.models import Record, utcnow
from forge.storage.account import StorageAccount
from forge.storage.tables import RecordTable, quote

STATES, PAIRS = "canaries", "canarypairs"
KEEP_DECISIONS = 50  # the newest decisions kept on the state (every one is also a job event)
_ensured: set[str] = set()


class CanaryState(Record):
    tenant: str
    domain: str
    candidate: str | None = None  # the version the canary is about; None: nothing to decide
    production: str | None = None  # what it is compared with (None: the teacher)
    events_job: str = ""  # the job id its events are recorded under: the candidate's run, or `canary-{version}`
    status: Literal["idle", "active", "promoted", "rolled_back", "ended"] = "idle"
    stage: int = 0
    stage_started_at: datetime = Field(default_factory=utcnow)
    control: Literal["auto", "pinned", "paused"] = "auto"
    last_window: float = -1  # a float: window numbers pass Table storage's 32-bit integers
    decisions: list[dict[str, Any]] = Field(default_factory=list)  # newest last, each with its `window`
    updated_at: datetime = Field(default_factory=utcnow)

    def decided(self, window: int) -> dict[str, Any] | None:
        return next((d for d in self.decisions if d.get("window") == window), None)


class JudgedPair(Record):
    tenant: str
    domain: str
    candidate: str
    trace_id: str
    stage: int
    # shadow: the candidate replayed a production answer; canary: the reverse; drift: production's answer, the teacher
    arm: Literal["shadow", "canary", "drift"]
    outcome: Literal["win", "tie", "loss"] | None = None  # None: the judge gave no verdict
    similarity: float | None = None  # chrF of the candidate's answer to production's, 0–100
    candidate_ok: bool = True  # False: the replayed candidate failed (shadow)
    latency_ms: float | None = None  # the replayed side's
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    candidate_text: str = Field("", max_length=8000)
    other_text: str = Field("", max_length=8000)
    created_at: datetime = Field(default_factory=utcnow)


class CanaryRepository:
    def __init__(self, account: StorageAccount):
        if account.tables.url not in _ensured:
            account.tables.create_table_if_not_exists(STATES)
            account.tables.create_table_if_not_exists(PAIRS)
            _ensured.add(account.tables.url)
        self.states = RecordTable(account.tables.get_table_client(STATES), CanaryState, lambda s: (s.tenant, s.domain))
        self.pairs = RecordTable(account.tables.get_table_client(PAIRS), JudgedPair,
                                 lambda p: (f"{p.tenant}|{p.candidate}", p.trace_id))

    def get(self, tenant: str, domain: str) -> CanaryState:
        return self.states.get(tenant, domain) or CanaryState(tenant=tenant, domain=domain)

    def save(self, state: CanaryState) -> CanaryState:
        """ConcurrentUpdate when someone wrote it since it was read (the caller reads again and re-decides)."""
        state.decisions = state.decisions[-KEEP_DECISIONS:]
        state.updated_at = utcnow()
        return self.states.replace(state)

    def add_pair(self, pair: JudgedPair) -> None:
        """Once per trace: a pair judged again after a retry or restart keeps its first verdict."""
        try:
            self.pairs.create(pair)
        except AlreadyExists:
            pass

    def pairs_of(self, tenant: str, candidate: str, stage: int | None = None) -> Iterator[JudgedPair]:
        query = f"PartitionKey eq {quote(f'{tenant}|{candidate}')}"
        if stage is not None:
            query += f" and stage eq {int(stage)}"
        return self.pairs.scan(query)
