"""Dashboard sessions: a browser logged in with an API key holds a random token; the key itself never leaves the
login request. Pure: the rules, not the table."""

from __future__ import annotations

from datetime import datetime, timedelta

from forge.domain.models import Record, utcnow
from forge.domain.names import valid_name

PREFIX = "fs"
LIFETIME = timedelta(hours=12)  # a session ends 12 h after login, whatever it did since


class DashboardSession(Record):
    """One logged-in browser: whose key it acts with (by the key's hash) and the CSRF token its changes carry."""

    tenant: str
    token_hash: str
    key_hash: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires_at


def tenant_of(token: str) -> str | None:
    """Tokens look like `fs.{tenant}.{secret}`, so finding one is a point read; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not valid_name(parts[1]) or len(parts[2]) < 32:
        return None
    return parts[1]
