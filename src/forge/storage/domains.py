"""Tenants' domains (table `domains`, PartitionKey tenant): RowKey `{name}` is the current version, RowKey
`{name}~{version:09d}` keeps every version. A change writes both rows in one transaction under the current row's
ETag, so a version is never half-written and two concurrent edits never share a number."""

from __future__ import annotations

from typing import Iterator

from azure.core import MatchConditions
from azure.data.tables import TableTransactionError, UpdateMode

from forge.domain import ids
from forge.domain.errors import AlreadyExists, ConcurrentUpdate
from forge.domain.tenant_domains import DomainRecord
from forge.storage.account import StorageAccount
from forge.storage.tables import RecordTable, quote, to_entity

HEAD, VERSION = "head", "version"


def _row(name: str, version: int | None = None) -> str:
    return ids.DOMAIN.check(name) if version is None else f"{ids.DOMAIN.check(name)}~{version:09d}"


class DomainRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(account.tables.get_table_client("domains"), DomainRecord,
                                 lambda d: (d.tenant, _row(d.name)))

    def get(self, tenant: str, name: str) -> DomainRecord | None:
        """The current version (a deleted domain's too: `deleted` says so), or None when there never was one."""
        return self.table.get(tenant, _row(name))

    def version(self, tenant: str, name: str, version: int) -> DomainRecord | None:
        return self.table.get(tenant, _row(name, version))

    def history(self, tenant: str, name: str) -> Iterator[DomainRecord]:
        """Every version, oldest first."""
        low, high = _row(name, 0), _row(name, 10**9 - 1)
        query = f"PartitionKey eq {quote(tenant)} and RowKey ge {quote(low)} and RowKey le {quote(high)}"
        return self.table.scan(query)

    def list(self, tenant: str) -> list[DomainRecord]:
        """The current version of each of the tenant's domains, deleted ones included, by name."""
        return sorted(self.table.scan(f"PartitionKey eq {quote(tenant)} and kind eq {quote(HEAD)}"),
                      key=lambda d: d.name)

    def tenants(self) -> set[str]:
        """Tenants holding at least one domain record."""
        rows = self.table.client.query_entities(f"kind eq {quote(HEAD)}", select=["PartitionKey"])
        return {row["PartitionKey"] for row in rows}

    def write(self, record: DomainRecord, *, previous: DomainRecord | None) -> DomainRecord:
        """Store `record` as the next version: the head replaced under `previous`'s ETag (created when there is
        none) and the version row added, together. ConcurrentUpdate when someone changed the domain meanwhile."""
        head = {**to_entity(record, record.tenant, _row(record.name)), "kind": HEAD}
        kept = {**to_entity(record, record.tenant, _row(record.name, record.version)), "kind": VERSION}
        if previous is None:
            operation: tuple = ("create", head)
        else:
            operation = ("update", head, {"mode": UpdateMode.REPLACE, "etag": previous.etag,
                                          "match_condition": MatchConditions.IfNotModified})
        try:
            meta = self.table.client.submit_transaction([operation, ("create", kept)])
        except TableTransactionError:
            if previous is None and self.get(record.tenant, record.name) is not None:
                raise AlreadyExists(f"Domain {record.name} already exists.") from None
            raise ConcurrentUpdate(f"Domain {record.name} was changed by someone else meanwhile; read it again and "
                                   "retry.") from None
        return record.model_copy(update={"etag": meta[0].get("etag")})

