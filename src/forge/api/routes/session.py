"""Dashboard login: an API key in, a session cookie out (the key is not kept); who the session is; log out."""

from __future__ import annotations

import math
from typing import Any

from azure.core.exceptions import AzureError
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import JSONResponse

from forge.api import sessions
from forge.api.auth import ForgeDep, client_address, failure_limit
from forge.api.contract import problems
from forge.domain.errors import Forbidden, StorageUnavailable, TooManyRequests, Unauthorized
from forge.services import sessions as service

router = APIRouter(prefix="/api/v1/session", tags=["dashboard"])


class LoginIn(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_key: str = Field(min_length=1, max_length=512, description="An API key (`forge keys create`).")


def _shown(found: service.LoggedIn) -> dict[str, Any]:
    return {"authenticated": True, "tenant": found.key.tenant, "scopes": found.key.scopes, "keyName": found.key.name,
            "csrfToken": found.session.csrf_token, "expiresAt": found.session.expires_at.isoformat()}


@router.post("", responses=problems(401, 403, 429, 503))
def log_in(body: LoginIn, request: Request, forge: ForgeDep) -> JSONResponse:
    """Start a dashboard session with an API key; bad keys count towards the address's failure limit."""
    if request.headers.get("sec-fetch-site") == "cross-site":  # a page of another site posting a key: never ours
        raise Forbidden("Log in from Forge's own page; a login from another site is refused.")
    limit, client = failure_limit(request), client_address(request)
    wait = limit.retry_after(client)
    if wait is not None:
        raise TooManyRequests(f"Too many failed API-key attempts from this address; retry in {math.ceil(wait)} s.",
                              wait)
    try:
        token, found = service.log_in(sessions.repository(request, forge), forge.storage.keys, body.api_key)
    except Unauthorized:
        limit.fail(client)
        raise
    except AzureError:
        raise StorageUnavailable("Forge cannot check API keys: storage is unreachable. Retry shortly.") from None
    response = JSONResponse(_shown(found))
    sessions.set_cookie(request, response, token)
    return response


@router.get("")
def who_am_i(request: Request, forge: ForgeDep) -> JSONResponse:
    """The session's tenant, scopes and CSRF token (for the dashboard's script), or `authenticated: false` (a 200,
    so a logged-out page load logs no failed request); an ended session's cookie is cleared."""
    try:
        found = sessions.current_session(request, forge)
    except Unauthorized:
        found = None
    if found is None:
        response = JSONResponse({"authenticated": False})
        if sessions.COOKIE in request.cookies:
            sessions.clear_cookie(request, response)
        return response
    return JSONResponse(_shown(found))


@router.delete("", responses=problems(401, 403, 503))
def log_out(request: Request, forge: ForgeDep) -> JSONResponse:
    """End the session (the CSRF header is required, as for every change) and clear the cookie."""
    if sessions.session_key(request, forge) is None:  # 401 for an ended session, 403 without its CSRF token
        raise Unauthorized("Not logged in to the dashboard; there is no session to end.")
    service.log_out(sessions.repository(request, forge), request.cookies[sessions.COOKIE])
    response = JSONResponse({"loggedOut": True})
    sessions.clear_cookie(request, response)
    return response
