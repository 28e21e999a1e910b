"""A domain's drift: its checks over time (fallback share, judged quality, how the inputs moved) and their alerts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from forge.api.auth import ForgeDep, Reader
from forge.api.ids import DomainName
from forge.domain.models import utcnow
from forge.services import drift

router = APIRouter(prefix="/api/v1/drift", tags=["canary"])


@router.get("/{domain}")
def show_drift(domain: DomainName, key: Reader, forge: ForgeDep,
               days: float = Query(7, gt=0, le=90, description="How far back the checks go.")) -> dict[str, Any]:
    """The domain's `[drift]` policy and its checks, oldest first: the production student's calls and fallback
    share, its judged win rate against the teacher, the inputs' length, language and phrase shifts, and alerts."""
    return drift.history(forge, key.tenant, domain, days=days, now=utcnow())
