from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import FileResponse

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.contract import problems
from forge.api.ids import DomainName, ModelId
from forge.api.pagination import PagingDep
from forge.api.schemas import DeployIn, Labels, ModelDetail, ModelStats, ModelView, Page, PromoteIn, RegistryChangeView
from forge.domain.errors import InvalidInput
from forge.domain.models import ModelStage
from forge.services import deployments, exports, labels, summaries
from forge.services import models as service

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", response_model=Page[ModelView])
def list_models(key: Reader, forge: ForgeDep, paging: PagingDep,
                domain: DomainName | None = Query(None, description="Only this domain's versions.")) -> dict[str, Any]:
    """The tenant's model versions, by domain, oldest first."""
    page = service.list_models(forge.storage, key.tenant, domain=domain, limit=paging.limit,
                               continuation=paging.continuation)
    return {"items": [m.public() for m in page.items], "continuation": page.continuation}


@router.get("/stats", response_model=ModelStats)
def model_stats(key: Reader, forge: ForgeDep,
                days: float = Query(30, gt=0, le=366, description="Usage window in days.")) -> dict[str, Any]:
    """Counts by stage and domain, what serves, training tokens and cost, and the traffic the versions served over
    the window (tokens, cost, saving against the teacher)."""
    return summaries.model_stats(forge, key.tenant, days=days)


@router.get("/{version_id}", response_model=ModelDetail)
def get_model(version_id: ModelId, key: Reader, forge: ForgeDep,
              days: float = Query(30, gt=0, le=366, description="Usage window in days.")) -> dict[str, Any]:
    """The version, its role in the route, lineage, and usage from the router's traces."""
    return service.describe_model(forge.storage, forge.settings, key.tenant, version_id, days=days)


@router.put("/{version_id}", response_model=ModelView, responses=problems(409))
def update_model(version_id: ModelId, body: Labels, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Name, describe or tag the version; only the fields sent change (null clears a name or description)."""
    return labels.label_model(forge, key.tenant, version_id, body).public()


@router.delete("/{version_id}", response_model=ModelView, responses=problems(409))
def delete_model(version_id: ModelId, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Delete a version that serves nothing; one in production or the canary is a 409 saying what to do first."""
    return deployments.delete_model(forge, key.tenant, version_id).public()


@router.post("/{version_id}/deploy", response_model=RegistryChangeView, responses=problems(409))
def deploy(version_id: ModelId, body: DeployIn, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Serve the version on a domain's route (its own by default) in production, or as the canary at `percent`."""
    if body.percent is not None and body.stage != "canary":
        raise InvalidInput("percent is the canary's share; send stage 'canary' with it, or leave it out.")
    return deployments.deploy_model(forge, key.tenant, version_id, domain=body.domain, stage=body.stage,
                                    percent=body.percent).public()


@router.post("/{version_id}/promote", response_model=RegistryChangeView, responses=problems(409))
def promote(version_id: ModelId, key: Writer, forge: ForgeDep, body: PromoteIn | None = None) -> dict[str, Any]:
    """Staging → candidate (the canary) → production; the old production model stays for rollback."""
    body = body or PromoteIn()
    to = ModelStage(body.stage) if body.stage else None
    return service.promote_model(forge, key.tenant, version_id, to=to, canary_percent=body.canary_percent).public()


@router.post("/{version_id}/rollback", response_model=RegistryChangeView, responses=problems(409))
def rollback(version_id: ModelId, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Retire this production model; the previous production model (or the teacher) serves again."""
    return service.rollback_model(forge.storage, key.tenant, version_id, lora=forge.lora_server(),
                                  drain_s=forge.settings.lora_drain_s).public()


@router.post("/{version_id}/archive", response_model=RegistryChangeView, responses=problems(409))
def archive(version_id: ModelId, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Retire a version that is not in production: it stops being the canary or a rollback target."""
    return service.archive_model(forge.storage, key.tenant, version_id, lora=forge.lora_server(),
                                 drain_s=forge.settings.lora_drain_s).public()


class ExportIn(BaseModel):
    # A quantization is for gguf and ollama only.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"anyOf": [
        {"not": {"required": ["quant"]}}, {"properties": {"quant": {"type": "null"}}},
        {"properties": {"format": {"enum": ["gguf", "ollama"]}}}]})

    format: Literal["peft", "merged", "gguf", "ollama"]
    quant: Literal["f16", "q8_0", "q4_k_m", "f32"] | None = Field(None, description="gguf and ollama; default f16.")


@router.post("/{version_id}/export", status_code=201, responses=problems(409))
def export(version_id: ModelId, body: ExportIn, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Export a LoRA student on the server (once per format); download its files from `…/exports/{export}/{file}`."""
    done = exports.export_model(forge, key.tenant, version_id, body.format, quant=body.quant)
    shown = done.for_tenant()
    for file in shown["files"]:
        file["url"] = f"/api/v1/models/{done.model}/exports/{done.label}/{file['name']}"
    return shown


@router.get("/{version_id}/exports/{label}/{name:path}")
def download(version_id: ModelId, key: Reader, forge: ForgeDep,
             label: str = Path(pattern=r"^(peft|merged|(gguf|ollama)-(f16|q8_0|q4_k_m|f32))$"),
             name: str = Path(max_length=300)) -> FileResponse:
    """One file of an export, by its name in the export's file list."""
    path = exports.export_file(forge, key.tenant, version_id, label, name)
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")
