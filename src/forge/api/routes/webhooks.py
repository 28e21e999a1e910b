"""Completion webhooks. Authenticated by the sender's signature (OpenAI) or a shared key (Event Grid), not API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from forge.api.auth import EngineDep, ForgeDep
from forge.api.contract import problems
from forge.services import webhooks as service

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
CODE = Query(None, description="The Event Grid key (FORGE_EVENTGRID_WEBHOOK_KEY), or send X-Forge-Webhook-Key.")

_SIGNED = [{"name": name, "in": "header", "required": True, "description": description, "schema": {"type": "string"}}
           for name, description in (("webhook-id", "The delivery's id (a retry repeats it)."),
                                     ("webhook-timestamp", "Unix seconds when it was sent; ±5 minutes are accepted."),
                                     ("webhook-signature", "`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` "
                                                           "with the endpoint's whsec_ secret; several may be sent."))]
_FALSY = {"enum": [False, 0, "", [], {}, None]}
# One event in either Event Grid schema: `eventType` (Event Grid) or, when that is absent or empty, `type`.
_GRID_EVENT = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "data": {}},
               "anyOf": [{"required": ["eventType"], "properties": {"eventType": {"type": "string", "minLength": 1}}},
                         {"required": ["type"], "properties": {"eventType": _FALSY, "type": {"type": "string"}}}]}
_KEYED = [{"EventGridKey": []}, {"EventGridHeader": []}]
OPENAI_DOC = {"parameters": _SIGNED, "requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "An OpenAI event; `fine_tuning.job.*` events wake their job, others are ignored.",
    "properties": {"id": {"description": "The event's id."},
                   "type": {"description": "fine_tuning.job.succeeded, …; anything else is ignored."},
                   "data": {"description": "For a fine-tuning event, `{id}`: the fine-tuning job."}}}}}}}
GRID_DOC = {"security": _KEYED, "requestBody": {"required": True, "content": {"application/json": {"schema": {
    "description": "Event Grid events (or one CloudEvent); Azure ML `RunStatusChanged` wakes its job.",
    "anyOf": [{"type": "array", "items": _GRID_EVENT}, _GRID_EVENT]}}}}}


@router.post("/openai", openapi_extra=OPENAI_DOC, responses=problems(401, 409, 503))
async def openai_webhook(request: Request, forge: ForgeDep, engine: EngineDep) -> dict[str, Any]:
    """OpenAI `fine_tuning.job.*` events, signed per Standard Webhooks with FORGE_OPENAI_WEBHOOK_SECRET; a delivery
    seen before is a 409 that changes nothing."""
    return await service.openai_delivery(forge, engine, request.headers, await request.body())


@router.post("/eventgrid", openapi_extra=GRID_DOC, responses=problems(401, 503))
async def eventgrid_webhook(request: Request, forge: ForgeDep, engine: EngineDep, code: str | None = CODE) -> Any:
    """Azure ML `RunStatusChanged` events, and Event Grid's subscription-validation handshake."""
    key = code or request.headers.get(service.KEY_HEADER)
    return await service.eventgrid_delivery(forge, engine, key, await request.body())


@router.options("/eventgrid", openapi_extra={"security": _KEYED}, response_class=Response, responses={
    200: {"description": "This origin may deliver, at any rate.",
          "headers": {"WebHook-Allowed-Origin": {"schema": {"type": "string"}},
                      "WebHook-Allowed-Rate": {"schema": {"type": "string"}}}}, **problems(401, 503)})
def eventgrid_handshake(request: Request, forge: ForgeDep, code: str | None = CODE) -> Response:
    """The CloudEvents schema's abuse-protection handshake."""
    key = code or request.headers.get(service.KEY_HEADER)
    return Response(headers=service.cloudevents_handshake(forge, key, request.headers.get("webhook-request-origin")))
