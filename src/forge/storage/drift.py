"""Drift checks (table `driftchecks`: PartitionKey `{tenant}|{domain}`, RowKey the window's start in epoch seconds,
zero-padded so rows sort in time), training-set profiles (table `driftprofiles`: PartitionKey `{tenant}|{domain}`, RowKey the model version)
and the judged pairs of quality watching (table `driftpairs`: PartitionKey `{tenant}|{model}`, RowKey trace id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Literal

from pydantic import Field

from forge.domain.drift import InputProfile
from forge.domain.errors import AlreadyExists
from forge.domain.models import Record, utcnow
from forge.storage.account import StorageAccount
from forge.storage.canaries import JudgedPair
from forge.storage.tables import RecordTable, quote

CHECKS, PROFILES, PAIRS = "driftchecks", "driftprofiles", "driftpairs"
_ensured: set[str] = set()


class DriftCheck(Record):
    tenant: str
    domain: str
    window: float  # its start, seconds since the epoch (a float: Table storage's integers are 32-bit)
    at: datetime
    model: str | None = None  # the production student checked (None: the teacher serves; nothing to check)
    status: Literal["claimed", "told"] = "claimed"  # told: its alert's events, notification and run are done
    measures: dict[str, Any] = Field(default_factory=dict)
    alerts: list[str] = Field(default_factory=list)
    note: str | None = None  # why a measure is missing (no training set, too few calls)
    run_job: str | None = None  # the distillation run the alert queued


class StoredProfile(Record):
    tenant: str
    domain: str
    model: str
    dataset_id: str | None = None
    profile: InputProfile
    created_at: datetime = Field(default_factory=utcnow)


def window_key(window: float) -> str:
    return f"{int(window):015d}"


class DriftRepository:
    def __init__(self, account: StorageAccount):
        if account.tables.url not in _ensured:
            for table in (CHECKS, PROFILES, PAIRS):
                account.tables.create_table_if_not_exists(table)
            _ensured.add(account.tables.url)
        tables = account.tables
        self.checks = RecordTable(tables.get_table_client(CHECKS), DriftCheck,
                                  lambda c: (f"{c.tenant}|{c.domain}", window_key(c.window)))
        self.profiles = RecordTable(tables.get_table_client(PROFILES), StoredProfile,
                                    lambda p: (f"{p.tenant}|{p.domain}", p.model))
        self.pairs = RecordTable(tables.get_table_client(PAIRS), JudgedPair,
                                 lambda p: (f"{p.tenant}|{p.candidate}", p.trace_id))

    def check(self, tenant: str, domain: str, window: float) -> DriftCheck | None:
        return self.checks.get(f"{tenant}|{domain}", window_key(window))

    def claim(self, check: DriftCheck) -> DriftCheck | None:
        """Store a window's check; None when the window was checked already (by a retry, a replay, another loop)."""
        try:
            return self.checks.create(check)
        except AlreadyExists:
            return None

    def save(self, check: DriftCheck) -> DriftCheck:
        return self.checks.replace(check)

    def history(self, tenant: str, domain: str, *, since_window: float = 0) -> Iterator[DriftCheck]:
        """The domain's checks, oldest first."""
        return self.checks.scan(f"PartitionKey eq {quote(f'{tenant}|{domain}')} and RowKey ge "
                                f"{quote(window_key(since_window))}")

    def profile(self, tenant: str, domain: str, model: str) -> StoredProfile | None:
        return self.profiles.get(f"{tenant}|{domain}", model)

    def keep_profile(self, stored: StoredProfile) -> StoredProfile:
        try:
            return self.profiles.create(stored)
        except AlreadyExists:
            return self.profiles.get(f"{stored.tenant}|{stored.domain}", stored.model) or stored

    def add_pair(self, pair: JudgedPair) -> None:
        """Once per trace: judged again after a retry, a pair keeps its first verdict."""
        try:
            self.pairs.create(pair)
        except AlreadyExists:
            pass

    def pairs_of(self, tenant: str, model: str, since: datetime) -> list[JudgedPair]:
        """The model's judged pairs of calls made since `since` (the dates are strings in the table: filtered here)."""
        return [p for p in self.pairs.scan(f"PartitionKey eq {quote(f'{tenant}|{model}')}") if p.created_at >= since]
