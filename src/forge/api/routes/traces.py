from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.errors import problem
from forge.api.ids import DomainName, TraceId
from forge.services import capture
from forge.services import domains
from forge.services import traces as service

router = APIRouter(prefix="/api/v1/traces", tags=["traces"])


class TraceBatch(BaseModel):
    traces: list[Any] = Field(description="Records in the import format: OpenAI chat `{messages: [...]}` "
                                          "or `{prompt, response}`, with optional score, feedback, model, metadata.")
    domain: DomainName | None = Field(
        None, description="Domain for records that name none; the configured one by default.")


class FeedbackIn(BaseModel):
    feedback: Literal["approved", "rejected"] | None = None
    score: float | None = Field(None, ge=0, le=100)


@router.post("", status_code=201)
def ingest_traces(batch: TraceBatch, key: Writer, forge: ForgeDep) -> Any:
    domain = batch.domain or forge.settings.domain
    ids, rejects = service.ingest(forge.storage, batch.traces, tenant=key.tenant, domain=domain,
                                  known_domains=domains.known(forge, key.tenant, domain))
    rejected = [{"index": r.line, "reason": r.reason, "detail": r.detail} for r in rejects]
    if rejects and not ids:
        return problem(422, "No valid traces", "Every record was rejected; see 'rejected' for why.", rejected=rejected)
    return JSONResponse({"imported": len(ids), "ids": ids, "rejected": rejected}, status_code=201)


@router.get("")
def list_traces(
    key: Reader,
    forge: ForgeDep,
    domain: DomainName | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    continuation: str | None = None,
) -> dict[str, Any]:
    page = forge.storage.traces.list(key.tenant, domain=domain, since=since, until=until, limit=limit,
                                     continuation=continuation)
    return {"items": [t.public() for t in page.items], "continuation": page.continuation}


@router.get("/capture", summary="What the router's trace capture has done for this tenant, and its lag")
def capture_status(key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Calls captured, traces written and messages poisoned (today, 30 days), the most recent poisoned ones with
    their reason, and how long the oldest captured call has waited to be written (deployment-wide)."""
    shown = capture.status(forge, key.tenant)
    shown["queue"] = {"lagSeconds": shown["queue"]["lagSeconds"]}  # the depth would tell of other tenants' traffic
    return shown


@router.patch("/{trace_id}/feedback")
def set_feedback(trace_id: TraceId, body: FeedbackIn, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    trace = service.judge(forge.storage, key.tenant, trace_id, feedback=body.feedback, score=body.score)
    return trace.public()
