"""What the routed traffic cost against what the teacher would have charged, per domain and day, and the quality
the saving was bought at."""

from __future__ import annotations

from fastapi import APIRouter, Query

from forge.api.auth import ForgeDep, Reader
from forge.api.contract import problems
from forge.api.ids import DomainName
from forge.domain.economics import EconomicsReport
from forge.services import economics as service

router = APIRouter(prefix="/api/v1/economics", tags=["economics"])


@router.get("", response_model=EconomicsReport, responses=problems(404))
def read_economics(key: Reader, forge: ForgeDep,
                   domain: DomainName | None = Query(None, description="Only this domain; unset: every domain."),
                   days: int = Query(14, ge=1, le=service.MAX_DAYS, description="Days (UTC) up to today.")
                   ) -> EconomicsReport:
    """Per domain and day: requests on the student and on the teacher (fallbacks included), tokens, what all of it
    would have cost on the teacher, what it cost (the student's token prices, or its share of the LoRA server's
    hourly cost), the saving, the approval rate of the student's rated answers and its judged win rate against the
    teacher; totals per domain and for the tenant. An unknown domain is a 404."""
    return service.report(forge, key.tenant, domain=domain, days=days)
