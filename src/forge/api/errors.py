"""Every error leaves as `application/problem+json` (RFC 9457), with a detail that says what to do."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from forge.api.limits import BodyTooLarge
from forge.domain.errors import ForgeError, TooManyRequests

PROBLEM = "application/problem+json"
log = logging.getLogger("forge.api")


def problem(status: int, title: str, detail: str, instance: str | None = None, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    if instance:
        body["instance"] = instance
    headers = {"WWW-Authenticate": 'Bearer realm="forge"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ForgeError)
    async def _forge(request: Request, exc: ForgeError) -> JSONResponse:
        response = problem(exc.status, exc.title, str(exc), request.url.path)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e["loc"] and e["loc"][0] == "path" for e in exc.errors()):
            allowed = allowed_methods(request)  # `PUT /datasets/stats` met `PUT /datasets/{id}`: the path has no PUT
            if request.method not in allowed:
                return not_allowed(request, allowed)
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) + ". Fix these fields and retry."
        return problem(422, "Invalid request", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI wraps errors raised while reading the body
            return await _too_large(request, exc.__cause__)
        if exc.status_code == 405:
            return not_allowed(request, allowed_methods(request))
        response = problem(exc.status_code, _title(exc.status_code), str(exc.detail), request.url.path)
        for name, value in (exc.headers or {}).items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return problem(413, "Payload too large", f"The request body is over {exc.limit} bytes; send smaller batches.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the type only: exception text from SDKs can carry URLs with SAS tokens or keys.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return problem(500, "Internal error", "Forge hit an unexpected error; retry, and see the server log if it persists.")


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def not_allowed(request: Request, allowed: list[str]) -> JSONResponse:
    """405 with `Allow` (RFC 9110): the methods this path takes."""
    response = problem(405, "Method not allowed", f"{request.method} is not allowed on {request.url.path}; use "
                       f"{', '.join(allowed) or 'another path'}.", request.url.path)
    response.headers["Allow"] = ", ".join(allowed)
    return response


def _serving(route: object, scope: dict, method: str) -> bool:
    from starlette.routing import Match

    return route.matches({**scope, "method": method})[0] == Match.FULL  # type: ignore[attr-defined]


def allowed_methods(request: Request) -> list[str]:
    """The methods this path takes: those of the routes that match it with the fewest parameters (`/datasets/stats`
    before `/datasets/{id}`, which also matches it), not only the first route's, as Starlette's 405 has it."""
    from fastapi.routing import iter_route_contexts

    matching: dict[int, set[str]] = {}
    for route in iter_route_contexts(request.app.routes):
        for method in METHODS:
            if _serving(route, request.scope, method):
                matching.setdefault((route.path_format or "").count("{"), set()).add(method)
    fewest = matching[min(matching)] if matching else set()
    return [m for m in METHODS if m in fewest]


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
