"""A model version put to work or removed: deploy it to a domain's route (its own, or another's through a copy of the
version in that domain), and delete it once it serves nothing."""

from __future__ import annotations

from typing import Literal

from forge.bootstrap import Forge
from forge.domain.errors import AlreadyExists, ForgeError
from forge.domain.models import ModelStage, ModelVersion, new_id
from forge.domain.registry import role
from forge.services.domains import domain_for
from forge.services.models import RegistryChange, archive_model, get_model, promote_model


class ModelInUse(ForgeError):
    status = 409
    title = "Model in use"


def deploy_model(forge: Forge, tenant: str, version_id: str, *, domain: str | None = None,
                 stage: Literal["production", "canary"] = "production",
                 percent: float | None = None) -> RegistryChange:
    """Serve the version on `domain`'s route (its own domain by default) in production, or as the canary at
    `percent` (the domain's canary share by default). Models belong to one domain, so deploying to another domain
    registers the same trained artifact there once (`deployedFrom` names the original) and routes that version."""
    model = get_model(forge.storage, tenant, version_id)
    target = domain or model.domain
    if target != model.domain:
        domain_for(forge, tenant, target)  # DomainNotFound before anything is written
        model = _copy_into(forge, model, target)
    to = ModelStage.PRODUCTION if stage == "production" else ModelStage.CANDIDATE
    return promote_model(forge, tenant, model.version_id, to=to, canary_percent=percent)


def delete_model(forge: Forge, tenant: str, version_id: str) -> ModelVersion:
    """Delete a version that serves no traffic; one in production or the canary is refused with what to do. A
    rollback target is archived first, so no route names a deleted version."""
    storage = forge.storage
    model = get_model(storage, tenant, version_id)
    route = storage.routes.get(tenant, model.domain)
    serving = role(route, version_id)
    if route.production_model == version_id or route.canary_model == version_id:
        action = ("roll it back (`forge models rollback`) or deploy another model to production"
                  if route.production_model == version_id else "archive it (`forge models archive`) or promote it")
        raise ModelInUse(f"Model {version_id} serves {model.domain} ({serving}); {action}, then delete it.")
    if route.previous_production_model == version_id:
        model = archive_model(storage, tenant, version_id).model  # the route stops naming it as a rollback target
    storage.models.delete(storage.models.get(tenant, model.domain, version_id))
    return model


def _copy_into(forge: Forge, source: ModelVersion, domain: str) -> ModelVersion:
    """The version of `source` registered in `domain` (made once: a second deploy finds it)."""
    for existing in forge.storage.models.list(source.tenant, domain, limit=1000).items:
        if existing.deployed_from == source.version_id:
            return existing
    copy = ModelVersion(version_id=new_id(), tenant=source.tenant, domain=domain, base_model=source.base_model,
                        provider_model_id=source.provider_model_id, adapter_uri=source.adapter_uri,
                        job_id=source.job_id, dataset_id=source.dataset_id, deployed_from=source.version_id,
                        name=source.name, description=source.description, tags=list(source.tags),
                        metrics={k: v for k, v in source.metrics.items() if k != "evaluation"})
    try:
        return forge.storage.models.create(copy)
    except AlreadyExists:  # ids are fresh; only a retried write of this very copy lands here
        return forge.storage.models.get(source.tenant, domain, copy.version_id)
