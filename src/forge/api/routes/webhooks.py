"""Completion webhooks. Authenticated by the sender's signature (OpenAI) or a shared key (Event Grid), not API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from forge.api.auth import EngineDep, ForgeDep
from forge.services import webhooks as service

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
CODE = Query(None, description="The Event Grid key (FORGE_EVENTGRID_WEBHOOK_KEY), or send X-Forge-Webhook-Key.")


@router.post("/openai")
async def openai_webhook(request: Request, forge: ForgeDep, engine: EngineDep) -> dict[str, Any]:
    """OpenAI `fine_tuning.job.*` events, signed per Standard Webhooks with FORGE_OPENAI_WEBHOOK_SECRET."""
    return await service.openai_delivery(forge, engine, request.headers, await request.body())


@router.post("/eventgrid")
async def eventgrid_webhook(request: Request, forge: ForgeDep, engine: EngineDep, code: str | None = CODE) -> Any:
    """Azure ML `RunStatusChanged` events, and Event Grid's subscription-validation handshake."""
    key = code or request.headers.get(service.KEY_HEADER)
    return await service.eventgrid_delivery(forge, engine, key, await request.body())


@router.options("/eventgrid")
def eventgrid_handshake(request: Request, forge: ForgeDep, code: str | None = CODE) -> Response:
    """The CloudEvents schema's abuse-protection handshake."""
    key = code or request.headers.get(service.KEY_HEADER)
    return Response(headers=service.cloudevents_handshake(forge, key, request.headers.get("webhook-request-origin")))
