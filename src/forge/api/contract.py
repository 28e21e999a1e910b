"""The API's published contract, applied to every route of the app (whoever added it):

* the API version, in the OpenAPI info and in a `Forge-Api-Version` header on every response;
* the errors each operation can give, as `application/problem+json` with one `Problem` schema: 401, 403, 429 and
  503 where a key is needed, 404 where the path names an object, 413 and 422 where input is taken, 500 everywhere,
  plus whatever a route declares with `problems(...)`; the OpenAI-compatible routes (`x-forge-errors: openai`)
  in OpenAI's error shape instead;
* the key schemes (`X-API-Key` or `Authorization: Bearer`) on the operations that need one;
* paging parameters defined once and referred to by every list (`api/pagination.py`).

A route adds nothing for any of this; `problems(409)` in its decorator documents a status only it can give.
405 answers carry `Allow` (api/errors.py).
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import FastAPI
from pydantic import BaseModel
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forge import __version__
from forge.api.auth import current_key
from forge.api.errors import PROBLEM
from forge.api.pagination import CONTINUATION_DESCRIPTION, DEFAULT_LIMIT, LIMIT_DESCRIPTION, MAX_LIMIT
from forge.api.schemas import CURSOR_PATTERN
from forge.api.version import API_VERSION, VERSION_HEADER

KEY_SECURITY = [{"ApiKey": []}, {"Bearer": []}]
TITLES = {400: "Malformed request body", 401: "No valid API key", 403: "Not allowed", 404: "Not found",
          405: "Method not allowed", 409: "Conflict with the current state", 413: "Request body too large",
          415: "Unsupported content type", 422: "Invalid input", 429: "Too many requests",
          500: "Internal error", 502: "Upstream model failed", 503: "A dependency is unavailable"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An error (RFC 9457): `detail` says what went wrong and what to do.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The path that was requested."},
        "errors": {"type": "array", "description": "Each invalid field, for a 422.",
                   "items": {"type": "object", "required": ["field", "message"],
                             "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
        "rejected": {"type": "array", "items": {"type": "object"},
                     "description": "Each refused record of a batch, with its index and reason."},
    },
}
OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "title": "OpenAIError",
    "type": "object",
    "description": "An error in OpenAI's shape, so OpenAI's SDKs raise their usual exceptions.",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}
PAGING_PARAMETERS: dict[str, Any] = {
    "Limit": {"name": "limit", "in": "query", "required": False, "description": LIMIT_DESCRIPTION,
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
    "Continuation": {"name": "continuation", "in": "query", "required": False,
                     "description": CONTINUATION_DESCRIPTION, "schema": {"type": "string", "pattern": CURSOR_PATTERN}},
}
HEADERS: dict[str, Any] = {
    VERSION_HEADER: {"description": "The API version that answered (CHANGELOG.md).",
                     "schema": {"type": "string", "example": API_VERSION}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}},
    "WWW-Authenticate": {"description": "How to authenticate: a Forge API key as a Bearer token.",
                         "schema": {"type": "string"}},
}


_SCHEMAS: dict[str, dict[str, Any]] = {}


def schema_of(name: str, model: type[BaseModel], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """`model`'s JSON Schema published as `components.schemas[name]` (its parts beside it), for a route that reads
    a body as data rather than as the model; `optional` fields may be left out there. Returns the `$ref` to use in
    `openapi_extra` or `WithJsonSchema`."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _SCHEMAS.update(schema.pop("$defs", {}))
    schema["required"] = [f for f in schema.get("required", []) if f not in optional]
    _SCHEMAS[name] = schema
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}]}  # allOf: pydantic resolves a bare $ref itself


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route decorator: statuses only this route gives (the rest are added for every route)."""
    return {code: {"description": TITLES.get(code, "Error")} for code in codes}


def install(app: FastAPI) -> None:
    """Publish the contract for every route of `app` and stamp the version on every response."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
    app.add_middleware(VersionHeader)


class VersionHeader:
    """Adds `Forge-Api-Version` to every response, streams included (plain ASGI: the body passes untouched)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"forge-api-version", API_VERSION.encode())]
            await send(message)

        await self.app(scope, receive, stamped)


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document: FastAPI's, with the errors, keys, paging and version every operation shares."""
    routes = [r for r in iter_route_contexts(app.routes)
              if isinstance(r.original_route, APIRoute) and r.include_in_schema]
    cached = getattr(app.state, "contract", None)
    if cached is not None and cached[0] == len(routes):
        return cached[1]
    schema = get_openapi(title=app.title, version=API_VERSION, description=app.description, routes=app.routes)
    schema["info"]["x-forge-version"] = __version__
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(Problem=PROBLEM_SCHEMA, OpenAIError=OPENAI_ERROR_SCHEMA, **_SCHEMAS)
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    components["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                   "description": "A Forge API key (`forge keys create --tenant T`)."},
        "Bearer": {"type": "http", "scheme": "bearer", "description": "The same key as a Bearer token."},
        "EventGridKey": {"type": "apiKey", "in": "query", "name": "code",
                         "description": "The Event Grid webhook's key (FORGE_EVENTGRID_WEBHOOK_KEY)."},
        "EventGridHeader": {"type": "apiKey", "in": "header", "name": "X-Forge-Webhook-Key",
                            "description": "The same key as a header."},
    }
    components["parameters"] = PAGING_PARAMETERS
    components["headers"] = HEADERS
    for route in routes:
        for method in sorted(route.methods):
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete(operation, route)
    app.state.contract = (len(routes), schema)
    return schema


def _complete(operation: dict[str, Any], route: RouteContext) -> None:
    keyed = _needs(route.dependant, current_key)
    openai = operation.get("x-forge-errors") == "openai"
    codes = {500}
    if keyed:
        operation["security"] = KEY_SECURITY
        codes |= {401, 403, 429, 503}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        codes.add(404)
    if parameters or "requestBody" in operation:
        codes.add(422)
    if "requestBody" in operation:
        codes.add(413)
        if "application/json" in operation["requestBody"].get("content", {}):
            codes.add(400)  # a body that is not JSON at all
    responses = operation.setdefault("responses", {})
    codes |= {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    for code in sorted(codes):
        responses[str(code)] = _error(code, openai, responses.get(str(code), {}).get("description"))
    for code, response in responses.items():
        response.setdefault("headers", {})[VERSION_HEADER] = {"$ref": f"#/components/headers/{VERSION_HEADER}"}
    operation["responses"] = dict(sorted(responses.items()))
    operation["parameters"] = [_paging_ref(p) for p in parameters] if parameters else parameters
    if not operation["parameters"]:
        del operation["parameters"]


def _error(code: int, openai: bool, description: str | None) -> dict[str, Any]:
    schema, media = ("OpenAIError", "application/json") if openai else ("Problem", PROBLEM)
    response: dict[str, Any] = {
        "description": description if description and description != "Validation Error" else TITLES.get(code, "Error"),
        "content": {media: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if code in (429, 503):
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    if code == 401:
        response["headers"] = {"WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}}
    return response


def _paging_ref(parameter: dict[str, Any]) -> dict[str, Any]:
    """A list's `limit` or `continuation`, when it is the shared one, as a reference to its one definition."""
    for name, shared in PAGING_PARAMETERS.items():
        if parameter.get("name") == shared["name"] and parameter.get("in") == "query" and \
                _same(parameter.get("schema", {}), shared["schema"]):
            return {"$ref": f"#/components/parameters/{name}"}
    return parameter


def _same(found: dict[str, Any], shared: dict[str, Any]) -> bool:
    if "anyOf" in found:  # FastAPI writes an optional string as anyOf [string, null]
        found = next((s for s in found["anyOf"] if s.get("type") != "null"), {})
    return all(found.get(k) == v for k, v in shared.items())


def _needs(dependant: Any, call: Callable[..., Any]) -> bool:
    """Whether a route's dependencies (at any depth) include `call`."""
    return any(d.call is call or _needs(d, call) for d in dependant.dependencies)
