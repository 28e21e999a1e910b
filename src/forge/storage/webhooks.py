"""Webhook deliveries already handled (PartitionKey source, RowKey delivery id), so a replay changes nothing.

Claiming is one insert: of two concurrent deliveries of the same id, exactly one wins.
"""

from __future__ import annotations

import hashlib
import re

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from forge.domain.models import utcnow
from forge.storage.account import StorageAccount

TABLE = "webhookdeliveries"
_ROW_KEY_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_ensured: set[str] = set()  # table service URLs whose table exists: created once per process, on first use


class WebhookDeliveries:
    def __init__(self, account: StorageAccount):
        if account.tables.url not in _ensured:
            account.tables.create_table_if_not_exists(TABLE)
            _ensured.add(account.tables.url)
        self.client = account.tables.get_table_client(TABLE)

    def claim(self, source: str, delivery_id: str, job_id: str | None = None) -> bool:
        """True for the first delivery with this id from `source`; False for any later one."""
        entity = {"PartitionKey": source, "RowKey": _row_key(delivery_id), "received_at": utcnow().isoformat()}
        if job_id:
            entity["job_id"] = job_id
        try:
            self.client.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    def release(self, source: str, delivery_id: str) -> None:
        """Forget a claim whose handling failed, so the sender's retry is handled afresh."""
        try:
            self.client.delete_entity(source, _row_key(delivery_id))
        except ResourceNotFoundError:
            pass


def _row_key(delivery_id: str) -> str:
    # RowKeys refuse / \ # ? and control characters, and are capped at 1 KiB: such ids are stored by their hash.
    if _ROW_KEY_FORBIDDEN.search(delivery_id) or len(delivery_id) > 512:
        return "sha256-" + hashlib.sha256(delivery_id.encode()).hexdigest()
    return delivery_id
