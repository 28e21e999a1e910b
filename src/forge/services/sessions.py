"""Dashboard log in, look up and log out. A session acts with its API key's tenant and scopes, read afresh on every
request, so a revoked key or a changed scope applies at once."""

from __future__ import annotations

from dataclasses import dataclass

from forge.domain.errors import Unauthorized
from forge.domain.models import ApiKey
from forge.domain.sessions import DashboardSession
from forge.storage.apikeys import ApiKeyRepository
from forge.storage.sessions import SessionRepository


@dataclass
class LoggedIn:
    session: DashboardSession
    key: ApiKey


def log_in(sessions: SessionRepository, keys: ApiKeyRepository, api_key: str) -> tuple[str, LoggedIn]:
    """A new session for a valid key: its token (for the cookie) and what it acts as; Unauthorized otherwise."""
    record = keys.authenticate(api_key.strip())
    if record is None:
        raise Unauthorized("This API key is unknown or revoked; create one with `forge keys create --tenant T`.")
    token, session = sessions.create(record.tenant, record.key_hash)
    return token, LoggedIn(session, record)


def resolve(sessions: SessionRepository, keys: ApiKeyRepository, token: str) -> LoggedIn | None:
    """The live session behind a cookie, or None: unknown, expired, or its key revoked (the session then ends)."""
    session = sessions.get(token)
    if session is None:
        return None
    key = keys.table.get(session.tenant, session.key_hash)
    if session.expired() or key is None or key.revoked:
        sessions.delete(session)
        return None
    return LoggedIn(session, key)


def log_out(sessions: SessionRepository, token: str) -> None:
    session = sessions.get(token)
    if session is not None:
        sessions.delete(session)
