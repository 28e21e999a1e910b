"""API-key auth: `X-API-Key` or `Authorization: Bearer`; the tenant comes from the key, never from the request.

A client address that presents 10 bad keys within a minute (FailureLimit's defaults) is refused, 429 with
`Retry-After`, before its key is even looked up: on the REST API and on the router alike, and whatever key it sends.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from contextlib import contextmanager
from typing import Annotated, Any, Iterator

from azure.core.exceptions import AzureError
from fastapi import Depends, Request

from forge.api.limits import FailureLimit
from forge.api.sessions import session_key
from forge.bootstrap import Forge
from forge.domain.errors import Forbidden, ForgeError, StorageUnavailable, TooManyRequests, Unauthorized
from forge.domain.models import ApiKey

_state_lock = threading.Lock()


def get_forge(request: Request) -> Forge:
    return request.app.state.forge


ForgeDep = Annotated[Forge, Depends(get_forge)]


def get_orchestrations(request: Request) -> Any:
    return request.app.state.orchestrations


EngineDep = Annotated[Any, Depends(get_orchestrations)]


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


UNKNOWN_CLIENT = "unknown"


def client_address(request: Request) -> str:
    """Who failures are counted against: the peer's address, an IPv6 one as its /64 (one host's usual share).

    Only when the server gives no peer (Azure Functions' ASGI host) is `X-Forwarded-For` read, and then its last
    entry, the one Azure's front end appended; entries before it are the client's to forge."""
    if request.client is not None:
        host = request.client.host
    else:
        host = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
        if host.startswith("["):  # [v6]:port
            host = host[1:].partition("]")[0]
        elif host.count(":") == 1:  # v4:port
            host = host.partition(":")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or UNKNOWN_CLIENT
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def failure_limit(request: Request) -> FailureLimit:
    """The app's count of failed authentications, made on first use (tests set their own beforehand)."""
    state = request.app.state
    with _state_lock:
        if getattr(state, "auth_failures", None) is None:
            state.auth_failures = FailureLimit()
        return state.auth_failures


@contextmanager
def counting_failures(request: Request) -> Iterator[None]:
    """Refuse a client with too many recent failures (TooManyRequests); count a presented key refused inside (401)."""
    limit, client = failure_limit(request), client_address(request)
    if client == UNKNOWN_CLIENT:  # one shared bucket would let one guesser lock every caller out
        yield
        return
    wait = limit.retry_after(client)
    if wait is not None:
        raise TooManyRequests(f"Too many failed API-key attempts from this address; retry in {math.ceil(wait)} s "
                              "with a valid key (`forge keys list` shows yours).", wait)
    try:
        yield
    except ForgeError as exc:
        if exc.status == 401 and presented_key(request) is not None:
            limit.fail(client)
        raise


def current_key(request: Request, forge: ForgeDep) -> ApiKey:
    with counting_failures(request):
        key = presented_key(request)
        if key is None:
            from_session = session_key(request, forge)  # the dashboard's cookie; changes need its CSRF header
            if from_session is not None:
                return from_session
            raise Unauthorized("No API key. Send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'; "
                               "`forge keys create --tenant T` makes one.")
        try:
            record = forge.storage.keys.authenticate(key)
        except AzureError:  # fail closed, and say why: a 500 would hide that storage is the problem
            raise StorageUnavailable("Forge cannot check API keys: storage is unreachable. Retry shortly; "
                                     "`GET /health` shows when storage is back.") from None
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
