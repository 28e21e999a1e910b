"""The FastAPI app behind the Functions HTTP streams feature (`azurefunctions-extensions-http-fastapi`).

With the extension imported and PYTHON_ENABLE_INIT_INDEXING=1, the Python worker serves HTTP itself (uvicorn) and
hands each invocation the FastAPI `Request` it received; whatever `Response` the function returns is then sent by
that server as an ASGI app. `AppResponse` is that response: Forge's whole FastAPI app answering the same request,
so bodies stream both ways (SSE chunks reach the caller as the upstream sends them) instead of being buffered the
way `func.AsgiMiddleware` buffers them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

# The ASGI HTTP scope keys; the worker's own routing adds others (its router, route, endpoint) that must not leak in.
SCOPE_KEYS = ("type", "asgi", "http_version", "server", "client", "scheme", "method", "root_path", "path",
              "raw_path", "query_string", "headers", "extensions")


class AppResponse(Response):
    """`app` answering `request`: run when the worker's server sends the response, so it streams."""

    def __init__(self, app: ASGIApp, request: Request,
                 around: Callable[[], AbstractContextManager[Any]] = nullcontext):
        super().__init__()
        self.app, self.request, self.around = app, request, around

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        clean = {key: self.request.scope[key] for key in SCOPE_KEYS if key in self.request.scope}
        with self.around():  # e.g. this invocation's durable client, for the routes that start runs
            await self.app(clean, self.request.receive, send)
