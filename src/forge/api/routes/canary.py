"""A domain's canary: its state, decisions and judged pairs, and a person's say (pin, pause, resume, skip)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.contract import problems
from forge.api.ids import DomainName, ModelId
from forge.services import canary

router = APIRouter(prefix="/api/v1/canary", tags=["canary"])


class ControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["pin", "pause", "resume", "skip"]


@router.get("/{domain}")
def show_canary(domain: DomainName, key: Reader, forge: ForgeDep,
                candidate: ModelId | None = Query(None, description="An earlier candidate's report (rolled back or "
                                                                    "promoted); unset: the current one's.")
                ) -> dict[str, Any]:
    """The canary's stage, its control, the candidate's recent decisions with their numbers, and per stage the
    shadow report: judged pairs, the win rate with its bounds, similarity, each arm's p95 latency and cost."""
    return canary.report(forge, key.tenant, domain, candidate)


@router.post("/{domain}/control", responses=problems(409))
def control_canary(domain: DomainName, body: ControlIn, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """pin: hold the stage (roll-backs still happen); pause: decide nothing; resume; skip: advance now."""
    state = canary.control(forge, key.tenant, domain, body.action, by=f"key {key.name}")
    return state.model_dump(mode="json", exclude={"etag"})
