"""Azure Tables and Blobs repositories (Azurite locally), bundled as one Storage object."""

from __future__ import annotations

from dataclasses import dataclass

from forge.storage.account import StorageAccount
from forge.storage.apikeys import ApiKeyRepository
from forge.storage.datasets import DatasetRepository
from forge.storage.domains import DomainRepository
from forge.storage.evaluations import EvaluationStore
from forge.storage.events import JobEventRepository
from forge.storage.jobs import JobRepository
from forge.storage.models import ModelRepository, RouteRepository
from forge.storage.traces import DEFAULT_SHARDS, TraceRepository


@dataclass
class Storage:
    account: StorageAccount
    traces: TraceRepository
    jobs: JobRepository
    events: JobEventRepository
    datasets: DatasetRepository
    models: ModelRepository
    routes: RouteRepository
    keys: ApiKeyRepository
    domains: DomainRepository
    evaluations: EvaluationStore

    @classmethod
    def open(cls, account: StorageAccount, *, trace_shards: int = DEFAULT_SHARDS) -> "Storage":
        """Repositories over `account`, creating its tables and containers if they are missing."""
        account.ensure()
        return cls(
            account,
            TraceRepository(account, trace_shards),
            JobRepository(account),
            JobEventRepository(account),
            DatasetRepository(account),
            ModelRepository(account),
            RouteRepository(account),
            ApiKeyRepository(account),
            DomainRepository(account),
            EvaluationStore(account),
        )


__all__ = ["Storage", "StorageAccount"]
