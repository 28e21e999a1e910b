"""API-key auth: `X-API-Key` or `Authorization: Bearer`; the tenant comes from the key, never from the request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from forge.bootstrap import Forge
from forge.domain.errors import Forbidden, Unauthorized
from forge.domain.models import ApiKey


def get_forge(request: Request) -> Forge:
    return request.app.state.forge


ForgeDep = Annotated[Forge, Depends(get_forge)]


def get_orchestrations(request: Request) -> Any:
    return request.app.state.orchestrations


EngineDep = Annotated[Any, Depends(get_orchestrations)]


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def current_key(request: Request, forge: ForgeDep) -> ApiKey:
    key = _presented_key(request)
    if key is None:
        raise Unauthorized("No API key. Send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'; "
                           "`forge keys create --tenant T` makes one.")
    record = forge.storage.keys.authenticate(key)
    if record is None:
        raise Unauthorized("This API key is unknown or revoked; create a new one with `forge keys create`.")
    return record


def require(scope: str):
    """A dependency giving the caller's key, provided it holds `scope`."""

    def check(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
        if scope not in key.scopes:
            raise Forbidden(f"This key lacks the '{scope}' scope; create a key with it (`forge keys create --scope {scope}`).")
        return key

    return check


Reader = Annotated[ApiKey, Depends(require("read"))]
Writer = Annotated[ApiKey, Depends(require("write"))]
