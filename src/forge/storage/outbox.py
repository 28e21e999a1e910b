"""The notification outbox (PartitionKey tenant, RowKey notification key): written once, then updated under ETags."""

from __future__ import annotations

from typing import Iterator

from forge.domain.errors import AlreadyExists
from forge.domain.outbox import Notification
from forge.storage.account import StorageAccount
from forge.storage.tables import RecordTable, prefix_filter, quote

TABLE = "outbox"
_ensured: set[str] = set()  # table service URLs whose table exists: created once per process, on first use


class Outbox:
    def __init__(self, account: StorageAccount):
        if account.tables.url not in _ensured:
            account.tables.create_table_if_not_exists(TABLE)
            _ensured.add(account.tables.url)
        self.table = RecordTable(account.tables.get_table_client(TABLE), Notification, lambda n: (n.tenant, n.key))

    def add(self, note: Notification) -> None:
        """Insert unless a notification with this key exists (a retried notify adds nothing)."""
        try:
            self.table.create(note)
        except AlreadyExists:
            pass

    def save(self, note: Notification) -> Notification:
        """ConcurrentUpdate when another deliverer changed it since it was read."""
        return self.table.replace(note)

    def for_job(self, tenant: str, job_id: str) -> list[Notification]:
        query = f"PartitionKey eq {quote(tenant)} and " + prefix_filter("RowKey", f"{job_id}.")
        return list(self.table.scan(query))

    def pending(self) -> Iterator[Notification]:
        """Every pending notification, of every tenant (the outbox stays small: sent ones are few per job)."""
        return self.table.scan("status eq 'pending'")
