from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.ids import DomainName, ModelId
from forge.domain.models import ModelStage
from forge.services import models as service

router = APIRouter(prefix="/api/v1/models", tags=["models"])


class PromoteIn(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    stage: Literal["candidate", "production"] | None = Field(
        None, description="Where to: 'candidate' (the canary) or 'production'; unset: the next stage.")
    canary_percent: float | None = Field(None, gt=0, le=100, description="Canary share; unset: the domain's.")


@router.get("")
def list_models(
    key: Reader, forge: ForgeDep, domain: DomainName | None = None, limit: int = Query(50, ge=1, le=1000),
    continuation: str | None = None,
) -> dict[str, Any]:
    page = service.list_models(forge.storage, key.tenant, domain=domain, limit=limit, continuation=continuation)
    return {"items": [m.public() for m in page.items], "continuation": page.continuation}


@router.get("/{version_id}")
def get_model(version_id: ModelId, key: Reader, forge: ForgeDep,
              days: float = Query(30, gt=0, le=366, description="Usage window in days.")) -> dict[str, Any]:
    """The version, its role in the route, lineage, and usage from the router's traces."""
    return service.describe_model(forge.storage, forge.settings, key.tenant, version_id, days=days)


@router.post("/{version_id}/promote")
def promote(version_id: ModelId, key: Writer, forge: ForgeDep, body: PromoteIn | None = None) -> dict[str, Any]:
    body = body or PromoteIn()
    to = ModelStage(body.stage) if body.stage else None
    return service.promote_model(forge, key.tenant, version_id, to=to, canary_percent=body.canary_percent).public()


@router.post("/{version_id}/rollback")
def rollback(version_id: ModelId, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Retire this production model; the previous production model (or the teacher) serves again."""
    return service.rollback_model(forge.storage, key.tenant, version_id).public()


@router.post("/{version_id}/archive")
def archive(version_id: ModelId, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    return service.archive_model(forge.storage, key.tenant, version_id).public()
