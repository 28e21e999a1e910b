"""Dashboard sessions (PartitionKey tenant, RowKey sha256 of the token): only hashes of the token are stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError

from forge.domain.models import utcnow
from forge.domain.sessions import LIFETIME, PREFIX, DashboardSession, tenant_of
from forge.storage.account import StorageAccount
from forge.storage.tables import RecordTable

TABLE = "dashboardsessions"


def hash_token(token: str) -> str:
    # 256 random bits per token: a plain SHA-256 cannot be reversed or guessed.
    return hashlib.sha256(token.encode()).hexdigest()


class SessionRepository:
    def __init__(self, account: StorageAccount):
        client = account.tables.get_table_client(TABLE)
        account.tables.create_table_if_not_exists(TABLE)  # not in account.TABLES: made when a dashboard first runs
        self.table = RecordTable(client, DashboardSession, lambda s: (s.tenant, s.token_hash))

    def create(self, tenant: str, key_hash: str, *, now: datetime | None = None) -> tuple[str, DashboardSession]:
        """A new session acting with the key `key_hash`: the token (for the cookie, shown once) and the record."""
        now = now or utcnow()
        token = f"{PREFIX}.{tenant}.{secrets.token_urlsafe(32)}"
        record = DashboardSession(tenant=tenant, token_hash=hash_token(token), key_hash=key_hash,
                                  csrf_token=secrets.token_urlsafe(32), created_at=now, expires_at=now + LIFETIME)
        return token, self.table.create(record)

    def get(self, token: str) -> DashboardSession | None:
        tenant = tenant_of(token)
        return None if tenant is None else self.table.get(tenant, hash_token(token))

    def delete(self, session: DashboardSession) -> None:
        try:
            self.table.client.delete_entity(session.tenant, session.token_hash)
        except ResourceNotFoundError:
            pass
