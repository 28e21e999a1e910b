from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.errors import problem
from forge.api.contract import problems
from forge.api.ids import DomainName, TraceId
from forge.api.pagination import PagingDep
from forge.api.schemas import FeedbackIn, Page, Timestamp, TraceBatch, TracesImported, TraceView
from forge.services import capture
from forge.services import domains
from forge.services import traces as service

router = APIRouter(prefix="/api/v1/traces", tags=["traces"])


@router.post("", status_code=201, response_model=TracesImported, responses=problems(404, 409))
def ingest_traces(batch: TraceBatch, key: Writer, forge: ForgeDep) -> Any:
    domain = batch.domain or forge.settings.domain
    ids, rejects = service.ingest(forge.storage, batch.traces, tenant=key.tenant, domain=domain,
                                  known_domains=domains.known(forge, key.tenant, domain))
    rejected = [{"index": r.line, "reason": r.reason, "detail": r.detail} for r in rejects]
    if rejects and not ids:
        return problem(422, "No valid traces", "Every record was rejected; see 'rejected' for why.", rejected=rejected)
    return JSONResponse({"imported": len(ids), "ids": ids, "rejected": rejected}, status_code=201)


@router.get("", response_model=Page[TraceView])
def list_traces(
    key: Reader,
    forge: ForgeDep,
    paging: PagingDep,
    domain: DomainName | None = Query(None, description="Only this domain's traces."),
    since: Timestamp | None = Query(None, description="Only traces from this time (RFC 3339, with its offset)."),
    until: Timestamp | None = Query(None, description="Only traces before this time (RFC 3339, with its offset)."),
) -> dict[str, Any]:
    """The tenant's traces, oldest first within each domain."""
    page = service.list_traces(forge.storage, key.tenant, domain=domain, since=since, until=until,
                               limit=paging.limit, continuation=paging.continuation)
    return {"items": [t.public() for t in page.items], "continuation": page.continuation}


@router.get("/capture", summary="What the router's trace capture has done for this tenant, and its lag")
def capture_status(key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Calls captured, traces written and messages poisoned (today, 30 days), the most recent poisoned ones with
    their reason, and how long the oldest captured call has waited to be written (deployment-wide)."""
    shown = capture.status(forge, key.tenant)
    shown["queue"] = {"lagSeconds": shown["queue"]["lagSeconds"]}  # the depth would tell of other tenants' traffic
    return shown


@router.patch("/{trace_id}/feedback", response_model=TraceView)
def set_feedback(trace_id: TraceId, body: FeedbackIn, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    trace = service.judge(forge.storage, key.tenant, trace_id, feedback=body.feedback, score=body.score)
    return trace.public()
