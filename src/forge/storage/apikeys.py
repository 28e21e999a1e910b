"""API keys (PartitionKey tenant, RowKey sha256 of the key). Only the hash is stored; the key is shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from forge.domain import ids
from forge.domain.errors import InvalidInput, NotFound
from forge.domain.models import ApiKey
from forge.domain.names import NAME_RULE, valid_name
from forge.storage.account import StorageAccount
from forge.storage.tables import Page, RecordTable, quote

PREFIX = "fk"
SCOPES = ("read", "write")


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 cannot be brute-forced; no slow KDF is needed.
    return hashlib.sha256(key.encode()).hexdigest()


def tenant_of(key: str) -> str | None:
    """Keys look like `fk.{tenant}.{secret}`: the tenant makes lookup one point read instead of a scan."""
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not valid_name(parts[1]) or len(parts[2]) < 32:
        return None
    return parts[1]


class ApiKeyRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(account.tables.get_table_client("apikeys"), ApiKey, lambda k: (k.tenant, k.key_hash))

    def create(self, tenant: str, name: str, scopes: list[str] | None = None) -> tuple[str, ApiKey]:
        """A new key for `tenant`: returns the key itself (show it once) and the stored record (hash only)."""
        if not valid_name(tenant):
            raise InvalidInput(f"Tenant '{tenant}' is not valid: {NAME_RULE}.")
        scopes = list(scopes or SCOPES)
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise InvalidInput(f"Unknown scopes {unknown}; use any of {list(SCOPES)}.")
        key = f"{PREFIX}.{tenant}.{secrets.token_urlsafe(32)}"
        record = self.table.create(ApiKey(tenant=tenant, key_hash=hash_key(key), name=name, scopes=scopes))
        return key, record

    def authenticate(self, key: str) -> ApiKey | None:
        """The live record for a presented key, or None (unknown, malformed or revoked)."""
        tenant = tenant_of(key)
        if tenant is None:
            return None
        digest = hash_key(key)
        record = self.table.get(tenant, digest)
        if record is None or record.revoked or not hmac.compare_digest(record.key_hash, digest):
            return None
        return record

    def tenants(self) -> set[str]:
        """Every tenant that holds a key (reads only the partition keys)."""
        return {e["PartitionKey"] for e in self.table.client.query_entities("RowKey ne ''", select=["PartitionKey"])}

    def list(self, tenant: str, *, limit: int = 100, continuation: str | None = None) -> Page[ApiKey]:
        return self.table.page(f"PartitionKey eq {quote(tenant)}", limit, continuation)

    def revoke(self, tenant: str, key_hash_prefix: str) -> ApiKey:
        """Revoke the tenant's key whose hash starts with the given prefix (as `forge keys list` shows it)."""
        ids.KEY.check(key_hash_prefix)  # hex only: the prefix becomes a range over RowKeys
        query = f"PartitionKey eq {quote(tenant)} and RowKey ge {quote(key_hash_prefix)} and RowKey lt {quote(key_hash_prefix + '~')}"
        matches = list(self.table.scan(query))
        if len(matches) != 1:
            raise NotFound(f"{len(matches)} keys of tenant '{tenant}' start with '{key_hash_prefix}'; give a longer id.")
        record = matches[0]
        record.revoked = True
        return self.table.replace(record)
