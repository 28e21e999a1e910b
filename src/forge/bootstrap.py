"""Wire Forge once: settings, storage (Azurite started when none is configured) and domains."""

from __future__ import annotations

from dataclasses import dataclass

from forge.config import Settings, load_settings
from forge.domain.domains import DomainConfig
from forge.domains import load_domains
from forge.storage import Storage, StorageAccount
from forge.storage.azurite import AzuriteInstance, ManagedAzurite
from forge.telemetry import configure_telemetry


@dataclass
class Forge:
    settings: Settings
    storage: Storage
    domains: dict[str, DomainConfig]
    azurite: AzuriteInstance | None = None


def connect(settings: Settings) -> tuple[StorageAccount, AzuriteInstance | None]:
    """The configured storage account; with none configured, the Azurite Forge runs under FORGE_HOME."""
    if settings.storage_connection is not None:
        return StorageAccount.from_connection_string(settings.storage_connection.get_secret_value()), None
    if settings.storage_table_url and settings.storage_blob_url:
        return StorageAccount.from_urls(settings.storage_table_url, settings.storage_blob_url), None
    instance = ManagedAzurite(settings.home, settings.node_modules).ensure()
    return StorageAccount.from_connection_string(instance.connection_string), instance


def bootstrap(settings: Settings | None = None, *, storage: Storage | None = None) -> Forge:
    """Real adapters by default; tests pass an emulator-backed `storage`."""
    settings = settings or load_settings()
    configure_telemetry(settings)
    azurite = None
    if storage is None:
        account, azurite = connect(settings)
        storage = Storage.open(account)
    return Forge(settings, storage, load_domains(settings.home), azurite)
