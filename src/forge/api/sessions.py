"""The dashboard's session cookie at the API's edge: which key a browser acts with, and CSRF on every change.

A request with a session cookie and no API key acts as the session's key. Any method but GET, HEAD and OPTIONS
must also carry the session's CSRF token in `X-CSRF-Token` (the synchronizer pattern: the dashboard's script reads
the token from `GET /api/v1/session` and adds the header; another site can neither read it nor, with
SameSite=Strict, send the cookie)."""

from __future__ import annotations

import hmac
import threading

from azure.core.exceptions import AzureError
from fastapi import Request, Response

from forge.bootstrap import Forge
from forge.domain.errors import Forbidden, StorageUnavailable, Unauthorized
from forge.domain.models import ApiKey
from forge.domain.sessions import LIFETIME
from forge.services import sessions as service
from forge.storage.sessions import SessionRepository

COOKIE = "forge_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_lock = threading.Lock()


def repository(request: Request, forge: Forge) -> SessionRepository:
    """The app's session table, opened (and created if missing) on first use."""
    state = request.app.state
    with _lock:
        if getattr(state, "dashboard_sessions", None) is None:
            state.dashboard_sessions = SessionRepository(forge.storage.account)
        return state.dashboard_sessions


def current_session(request: Request, forge: Forge) -> service.LoggedIn | None:
    """The session the cookie names, None without a cookie; Unauthorized when it has ended."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        found = service.resolve(repository(request, forge), forge.storage.keys, token)
    except AzureError:  # fail closed, as API keys do
        raise StorageUnavailable("Forge cannot check your session: storage is unreachable. Retry shortly.") from None
    if found is None:
        raise Unauthorized("Your dashboard session has ended (logged out, expired, or its API key was revoked); "
                           "log in again.")
    return found


def session_key(request: Request, forge: Forge) -> ApiKey | None:
    """The key a cookie-authenticated request acts with; a change without the session's CSRF token is refused."""
    found = current_session(request, forge)
    if found is None:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), found.session.csrf_token.encode()):
            raise Forbidden(f"This change came without the session's CSRF token ({CSRF_HEADER}); reload the "
                            "dashboard and retry.")
    return found.key


def set_cookie(request: Request, response: Response, token: str) -> None:
    # HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it; Secure whenever served by HTTPS
    # (directly or behind a front end that says so: marking it Secure can only narrow where it goes).
    response.set_cookie(COOKIE, token, max_age=int(LIFETIME.total_seconds()), path="/", httponly=True,
                        samesite="strict", secure=is_https(request))


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request))


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"
