"""The model registry's use cases: list, show (lineage, role, usage), promote, rollback, archive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from forge.bootstrap import Forge
from forge.config import Settings
from forge.domain import registry
from forge.domain.errors import ConcurrentUpdate, DatasetNotFound, DomainNotFound, JobNotFound, ModelNotFound
from forge.domain.job_settings import shown_model
from forge.domain.models import ModelStage, ModelVersion, Route, utcnow
from forge.domain.usage import Call, ModelUsage, Prices, summarize
from forge.services.domains import domain_for
from forge.providers.lora_server import LoRAServer
from forge.services import adapters
from forge.storage import Storage
from forge.storage.tables import Page

ATTEMPTS = 5  # re-reads after a concurrent route or model update before giving up with ConcurrentUpdate
MAX_LINEAGE = 20


@dataclass
class RegistryChange:
    """A model after an action, its domain's route, and the model put back in production by a rollback."""

    model: ModelVersion
    route: Route
    restored: ModelVersion | None = None
    notes: list[str] = field(default_factory=list)  # what the LoRA server did: loads, scheduled unloads

    def public(self) -> dict[str, Any]:
        return {"model": self.model.public(), "route": self.route.public(),
                "role": registry.role(self.route, self.model.version_id),
                "restored": self.restored.public() if self.restored else None, "notes": self.notes}


def list_models(
    storage: Storage, tenant: str, *, domain: str | None = None, limit: int = 50, continuation: str | None = None
) -> Page[ModelVersion]:
    return storage.models.list(tenant, domain, limit=limit, continuation=continuation)


def get_model(storage: Storage, tenant: str, version_id: str) -> ModelVersion:
    """The version, or ModelNotFound — also when it belongs to another tenant."""
    return storage.models.find(tenant, version_id)


def promote_model(
    forge: Forge, tenant: str, version_id: str, *, to: ModelStage | None = None, canary_percent: float | None = None
) -> RegistryChange:
    """Staging/archived → candidate (the canary, at the domain's share unless given) → production."""
    model = get_model(forge.storage, tenant, version_id)
    try:
        rules = domain_for(forge, tenant, model.domain).routing
    except DomainNotFound:
        raise DomainNotFound(f"Model {version_id} belongs to domain '{model.domain}', which no longer exists; create "
                             f"it again (`forge domain create {model.domain} …`) to route it.") from None
    percent = canary_percent if canary_percent is not None else rules.canary_percent

    def act(route: Route, current: ModelVersion) -> registry.Transition:
        transition = registry.promote(route, current, to, percent)
        if transition.changed:
            transition.route.sticky_by = rules.sticky_by
        return transition

    return _apply(forge.storage, tenant, model, act, lora=forge.lora_server(), drain_s=forge.settings.lora_drain_s)


def rollback_model(storage: Storage, tenant: str, version_id: str, *, lora: LoRAServer | None = None,
                   drain_s: float = 0.0) -> RegistryChange:
    """Retire the production model; the previous production model (or the teacher, if none) serves again.

    On a LoRA server the previous model's adapter is loaded first, the retired one unloaded after `drain_s`."""
    return _apply(storage, tenant, get_model(storage, tenant, version_id), registry.rollback, lora=lora,
                  drain_s=drain_s)


def rollback_domain(storage: Storage, tenant: str, domain: str, *, lora: LoRAServer | None = None,
                    drain_s: float = 0.0) -> RegistryChange:
    """Roll back whatever is in production for `domain`."""
    route = storage.routes.get(tenant, domain)
    if not route.production_model:
        raise registry.InvalidTransition(f"No student is in production for {domain} (the teacher serves it); "
                                         "there is nothing to roll back.")
    return rollback_model(storage, tenant, route.production_model, lora=lora, drain_s=drain_s)


def archive_model(storage: Storage, tenant: str, version_id: str, *, lora: LoRAServer | None = None,
                  drain_s: float = 0.0) -> RegistryChange:
    """Retire a model that is not in production: it stops being the canary or a rollback target."""
    return _apply(storage, tenant, get_model(storage, tenant, version_id), registry.archive, lora=lora,
                  drain_s=drain_s)


def describe_model(storage: Storage, settings: Settings, tenant: str, version_id: str, *, days: float = 30) -> dict:
    """The version with its role in the route, its lineage (job, dataset and its parents, base model) and usage."""
    model = get_model(storage, tenant, version_id)
    route = storage.routes.get(tenant, model.domain)
    now = utcnow()
    observed = max(min(days, (now - model.created_at).total_seconds() / 86400), 1 / 24)
    usage = domain_usage(storage, settings, tenant, model.domain, since=now - timedelta(days=days),
                         observed_days=observed).get(version_id)
    return {
        **model.public(),
        "role": registry.role(route, version_id),
        "lineage": _lineage(storage, model),
        "usage": (usage or _no_usage(version_id)).model_dump(mode="json", by_alias=True),
        "usageWindowDays": days,
    }


def domain_usage(
    storage: Storage, settings: Settings, tenant: str, domain: str, *, since: datetime, observed_days: float
) -> dict[str, ModelUsage]:
    """Usage per model (version id, or the teacher's name) from the calls the router recorded since `since`."""
    calls = (
        Call(row["model"], row.get("prompt_tokens"), row.get("completion_tokens"), row.get("latency_ms"))
        for row in storage.traces.calls(tenant, domain=domain, since=since)
        if row.get("source") == "router" and row.get("model")
    )
    return summarize(
        calls,
        teacher=settings.teacher_model,
        teacher_prices=Prices(settings.teacher_price_input, settings.teacher_price_output),
        student_prices=Prices(settings.student_price_input, settings.student_price_output),
        observed_days=observed_days,
    )


def _apply(
    storage: Storage, tenant: str, model: ModelVersion,
    action: Callable[[Route, ModelVersion], registry.Transition], *, lora: LoRAServer | None = None,
    drain_s: float = 0.0,
) -> RegistryChange:
    """Write the route first (it is what serves), then each touched model's stage; retried on concurrent updates.

    A student the new route names is loaded on the LoRA server before the route is written (a refused load leaves
    the route as it was); one it stops naming is unloaded after the drain."""
    notes: list[str] = []
    before = None
    for attempt in range(ATTEMPTS):
        route = storage.routes.get(tenant, model.domain)
        transition = action(route, model)
        if not transition.changed:
            return RegistryChange(model, route)
        if transition.route is route:
            break  # only stages change
        arriving = adapters.serving(transition.route) - adapters.serving(route)
        notes = adapters.load(lora, [model if v == model.version_id else storage.models.get(tenant, model.domain, v)
                                     for v in sorted(arriving)])
        try:
            before, route = route, storage.routes.save(transition.route)
            break
        except ConcurrentUpdate:
            if attempt == ATTEMPTS - 1:
                raise
            model = storage.models.get(tenant, model.domain, model.version_id)
    staged = {vid: _set_stage(storage, tenant, model.domain, vid, stage) for vid, stage in transition.stages.items()}
    restored = next((m for vid, m in staged.items() if vid != model.version_id
                     and m is not None and m.stage == ModelStage.PRODUCTION and route.production_model == vid), None)
    if before is not None:
        leaving = adapters.serving(before) - adapters.serving(route)
        notes += adapters.retire(lora, storage, route, sorted(leaving), drain_s)
    return RegistryChange(staged.get(model.version_id) or model, route, restored, notes)


def _set_stage(storage: Storage, tenant: str, domain: str, version_id: str, stage: ModelStage) -> ModelVersion | None:
    for attempt in range(ATTEMPTS):
        try:
            current = storage.models.get(tenant, domain, version_id)
        except ModelNotFound:
            return None  # a route may name a version removed from the table; the route no longer does
        if current.stage == stage:
            return current
        current.stage = stage
        try:
            return storage.models.save(current)
        except ConcurrentUpdate:
            if attempt == ATTEMPTS - 1:
                raise
    return None


def _lineage(storage: Storage, model: ModelVersion) -> dict[str, Any]:
    job = dataset = None
    ancestors: list[str] = []
    if model.job_id:
        try:
            found = storage.jobs.get(model.tenant, model.job_id)
            job = {"jobId": found.job_id, "status": found.status.value, "createdAt": found.created_at.isoformat()}
        except JobNotFound:
            job = {"jobId": model.job_id, "status": "missing"}
    if model.dataset_id:
        try:
            found_ds = storage.datasets.get(model.tenant, model.dataset_id)
            dataset = {"datasetId": found_ds.dataset_id, "version": found_ds.version, "sha256": found_ds.sha256,
                       "counts": found_ds.counts, "parentId": found_ds.parent_id}
            parent = found_ds.parent_id
            while parent and len(ancestors) < MAX_LINEAGE and parent not in ancestors:
                ancestors.append(parent)
                try:
                    parent = storage.datasets.get(model.tenant, parent).parent_id
                except DatasetNotFound:
                    break
        except DatasetNotFound:
            dataset = {"datasetId": model.dataset_id, "status": "missing"}
    return {"baseModel": shown_model(model.base_model), "providerModelId": model.provider_model_id,
            "adapterUri": shown_model(model.adapter_uri), "job": job, "dataset": dataset, "datasetAncestors": ancestors}


def _no_usage(model: str) -> ModelUsage:
    return ModelUsage(model=model, requests=0, prompt_tokens=0, completion_tokens=0, latency_p50_ms=None,
                      latency_p95_ms=None, cost_usd=0, teacher_cost_usd=0, saving_usd=0, saving_percent=None,
                      projected_monthly_saving_usd=None)
