"""Import checkpoints (PartitionKey tenant, RowKey the file's sha256): how far an import of that file got."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from forge.domain.models import Record, utcnow
from forge.storage.account import StorageAccount
from forge.storage.tables import RecordTable

TABLE = "imports"
_ensured: set[str] = set()


class ImportRecord(Record):
    tenant: str
    file_sha256: str
    domain: str
    started_at: datetime = Field(default_factory=utcnow)  # the time of lines that carry none: the same on a rerun
    lines: int = 0  # every line up to here is committed (written, or rejected and counted)
    imported: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    finished: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


class ImportRecords:
    def __init__(self, account: StorageAccount):
        if account.tables.url not in _ensured:
            account.tables.create_table_if_not_exists(TABLE)
            _ensured.add(account.tables.url)
        self.table = RecordTable(account.tables.get_table_client(TABLE), ImportRecord,
                                 lambda r: (r.tenant, r.file_sha256))

    def get(self, tenant: str, file_sha256: str) -> ImportRecord | None:
        return self.table.get(tenant, file_sha256)

    def save(self, record: ImportRecord, **changes: Any) -> ImportRecord:
        """Write the checkpoint (last writer wins: one import of a file at a time is the expected use)."""
        updated = record.model_copy(update={**changes, "updated_at": utcnow()})
        self.table.client.upsert_entity(_entity(updated))
        return updated


def _entity(record: ImportRecord) -> dict[str, Any]:
    from forge.storage.tables import to_entity

    return to_entity(record, record.tenant, record.file_sha256)
