"""The OpenAI-compatible endpoints, `POST /v1/chat/completions` (plain and SSE) and `GET /v1/models`, in the same
FastAPI app as the API. Errors here use OpenAI's shape, not problem+json, so the `openai` SDK raises its own."""

from __future__ import annotations

import json
import math
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import APIRouter, FastAPI, Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from forge.api.auth import counting_failures, presented_key
from forge.bootstrap import Forge
from forge.domain.errors import TooManyRequests
from forge.domain.models import ApiKey
from forge.api.contract import problems
from forge.serving.errors import ROLES, RouterError, parse_body
from forge.services import domains
from forge.serving.router import Router

router = APIRouter(prefix="/v1", tags=["router"])


def install(app: FastAPI, forge: Forge, chat_router: Router | None = None) -> Router:
    """Mount the endpoints on `app` with a Router (built from `forge` unless given), closed when the app stops."""
    gateway = chat_router or Router(forge.storage, forge.settings, lambda tenant: domains.names(forge, tenant),
                                    lora=forge.lora_server())
    app.state.chat_router = gateway
    app.include_router(router)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with outer(app_) as state:
            try:
                yield state
            finally:
                await app_.state.chat_router.aclose()  # flushes queued traces, closes upstream connections

    app.router.lifespan_context = lifespan
    return gateway


# What `serving/errors.parse_body` checks before a call is routed; the rest of the body goes to the model as sent.
CHAT_BODY = {"type": "object", "required": ["model", "messages"], "properties": {
    "model": {"type": "string", "minLength": 1, "description": "forge:{domain} (GET /v1/models lists them)."},
    "messages": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["role"], "properties": {"role": {"enum": sorted(ROLES)}}}},
    "stream": {"type": "boolean", "description": "Answer as server-sent events."}},
    "description": "An OpenAI chat-completions request; other OpenAI parameters are passed to the model."}
OPENAI_ERRORS = {"x-forge-errors": "openai", "security": [{"ApiKey": []}, {"Bearer": []}]}
CHAT_DOC = {**OPENAI_ERRORS, "requestBody": {"required": True, "content": {"application/json": {"schema": CHAT_BODY}}}}
ANSWER = {200: {"description": "The answer (a chat.completion, or chat.completion.chunk events when streaming).",
                "content": {"application/json": {"schema": {"type": "object"}},
                            "text/event-stream": {"schema": {"type": "string"}}}}}


@router.post("/chat/completions", summary="OpenAI chat completions, routed to production, canary or the teacher",
             openapi_extra=CHAT_DOC, responses={**ANSWER, **problems(400, 401, 403, 404, 413, 429, 502, 503)})
async def chat_completions(request: Request) -> Response:
    gateway: Router = request.app.state.chat_router
    try:
        key = await _authenticate(request, gateway)
        body = parse_body(await request.body())
        if body.get("stream"):
            stream = await gateway.stream(key.tenant, body, request.headers)
            return StreamingResponse(stream.chunks, media_type="text/event-stream",
                                     headers={**stream.headers, "cache-control": "no-cache"})
        answer = await gateway.complete(key.tenant, body, request.headers)
        # The trace goes to the capture queue once the answer is sent, within this request's lifetime: the caller
        # does not wait for it, and the server (uvicorn, the Functions worker) finishes it before shutting down.
        return Response(json.dumps(answer.body, ensure_ascii=False), media_type="application/json",
                        headers=answer.headers, background=BackgroundTask(_captured, answer.capture))
    except RouterError as exc:
        return exc.response()
    except TooManyRequests as exc:
        return _too_many(exc)


@router.get("/models", summary="The model aliases this router serves the caller: forge:{domain} for its domains",
            openapi_extra=OPENAI_ERRORS, responses=problems(401, 403, 429, 503))
async def list_models(request: Request) -> Response:
    gateway: Router = request.app.state.chat_router
    try:
        key = await _authenticate(request, gateway, scope="read")
        aliases = await gateway.aliases(key.tenant)
    except RouterError as exc:
        return exc.response()
    except TooManyRequests as exc:
        return _too_many(exc)
    created = int(time.time())
    data = [{"id": alias, "object": "model", "created": created, "owned_by": "forge"} for alias in aliases]
    return Response(json.dumps({"object": "list", "data": data}), media_type="application/json")


async def _authenticate(request: Request, gateway: Router, scope: str = "write") -> ApiKey:
    """The caller's key; bad keys count against the client's address as on the REST API (api.auth)."""
    with counting_failures(request):
        return await gateway.authenticate(presented_key(request), scope=scope)


async def _captured(capture: Any) -> None:
    await capture


def _too_many(exc: TooManyRequests) -> Response:
    response = RouterError(429, str(exc), code="rate_limit_exceeded").response()
    response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response
