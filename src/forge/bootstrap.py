"""Wire Forge once: settings, storage (Azurite started when none is configured), domains and the code sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection

from forge.config import Settings, load_settings
from forge.domain.domains import DomainConfig
from forge.domain_templates import load_domains
from forge.evaluation.sandbox import CodeRunner
from forge.providers.clients import lora_server_for
from forge.providers.lora_server import LoRAServer
from forge.providers.registry import Factory
from forge.storage import Storage, StorageAccount
from forge.storage.azurite import AzuriteInstance, ManagedAzurite
from forge.telemetry import configure_telemetry


@dataclass
class Forge:
    settings: Settings
    storage: Storage
    domains: dict[str, DomainConfig]
    azurite: AzuriteInstance | None = None
    code_runner: CodeRunner = None  # type: ignore[assignment]  # unset: chosen from the settings, once
    training_providers: dict[str, Factory] = field(default_factory=dict)  # beside the built-in ones (tests' fakes)
    lora: LoRAServer | None = None  # unset: chosen from the settings on first use, see `lora_server()`
    _lora_chosen: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.code_runner is None:
            self.code_runner = code_runner(self.settings, self.tenants)

    def lora_server(self) -> LoRAServer | None:
        """The LoRA server students are served from (FORGE_LORA_SERVER); None: transformers in-process."""
        if self.lora is None and not self._lora_chosen:
            self.lora, self._lora_chosen = lora_server_for(self.settings), True
        return self.lora

    def tenants(self) -> set[str]:
        """Tenants this Forge serves: those holding API keys, and the configured default."""
        return {self.settings.tenant, *self.storage.keys.tenants()}


def code_runner(settings: Settings, tenants: Callable[[], Collection[str]]) -> CodeRunner:
    """Where model-written benchmark code runs: Azure sessions when a pool is set, else the local jail."""
    if settings.sandbox_pool_endpoint:
        from forge.evaluation.sessions import ContainerAppsSessionsRunner

        return ContainerAppsSessionsRunner(settings.sandbox_pool_endpoint)
    if settings.sandbox_unjailed:
        from forge.evaluation.unjailed import UnjailedRunner

        return UnjailedRunner(tenants)
    from forge.evaluation.jail import BubblewrapRunner

    return BubblewrapRunner()


def connect(settings: Settings) -> tuple[StorageAccount, AzuriteInstance | None]:
    """The configured storage account; with none configured, the Azurite Forge runs under FORGE_HOME."""
    if settings.storage_connection is not None:
        return StorageAccount.from_connection_string(settings.storage_connection.get_secret_value()), None
    if settings.storage_table_url and settings.storage_blob_url:
        return StorageAccount.from_urls(settings.storage_table_url, settings.storage_blob_url,
                                        queue_url=settings.storage_queue_url), None
    instance = ManagedAzurite(settings.home, settings.node_modules).ensure()
    return StorageAccount.from_connection_string(instance.connection_string), instance


def bootstrap(settings: Settings | None = None, *, storage: Storage | None = None,
              runner: CodeRunner | None = None, training_providers: dict[str, Factory] | None = None,
              lora_server: LoRAServer | None = None) -> Forge:
    """Real adapters by default; tests pass an emulator-backed `storage`, another code `runner`, fake
    `training_providers` (by name, beside the built-in ones), or a `lora_server`."""
    settings = settings or load_settings()
    configure_telemetry(settings)
    azurite = None
    if storage is None:
        account, azurite = connect(settings)
        storage = Storage.open(account, trace_shards=settings.trace_shards)
    return Forge(settings, storage, load_domains(settings.home), azurite, runner,  # type: ignore[arg-type]
                 dict(training_providers or {}), lora_server)
