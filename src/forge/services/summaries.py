"""A tenant's datasets and models at a glance: read the records (and, for models, the router's calls over a window)
and sum them (`domain/summaries.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterator

from forge.bootstrap import Forge
from forge.domain.summaries import datasets_summary, models_summary
from forge.domain.models import ModelVersion, utcnow
from forge.services.models import domain_usage


def dataset_stats(forge: Forge, tenant: str) -> dict[str, Any]:
    storage = forge.storage
    return datasets_summary(storage.datasets.scan(tenant), storage.jobs.scan(tenant), _all_models(forge, tenant))


def model_stats(forge: Forge, tenant: str, *, days: float = 30) -> dict[str, Any]:
    storage = forge.storage
    models = list(_all_models(forge, tenant))
    jobs = {j.job_id: j for j in storage.jobs.scan(tenant)}
    since = utcnow() - timedelta(days=days)
    usage = [u for domain in sorted({m.domain for m in models})
             for u in domain_usage(storage, forge.settings, tenant, domain, since=since,
                                   observed_days=days).values()]
    routes = [storage.routes.get(tenant, domain) for domain in sorted({m.domain for m in models})]
    return models_summary(models, routes, jobs, usage, days)


def _all_models(forge: Forge, tenant: str) -> Iterator[ModelVersion]:
    token = None
    while True:
        page = forge.storage.models.list(tenant, limit=1000, continuation=token)
        yield from page.items
        token = page.continuation
        if not token:
            return
