"""The storage account: Table and Blob service clients from a connection string or from Entra ID + account URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from forge.domain.errors import StorageUnavailable

TABLES = ("traces", "jobs", "jobevents", "datasets", "models", "routes", "apikeys", "domains", "evalsets")
CONTAINERS = ("datasets", "models", "traces", "evaluations")
EMULATOR_ACCOUNT = "devstoreaccount1"  # Azurite's well-known account


@dataclass
class StorageAccount:
    tables: TableServiceClient
    blobs: BlobServiceClient
    queues: QueueServiceClient = None  # type: ignore[assignment]  # the capture queue (storage/capture.py)

    @classmethod
    def from_connection_string(cls, connection: str) -> "StorageAccount":
        return cls(
            TableServiceClient.from_connection_string(connection),
            BlobServiceClient.from_connection_string(connection),
            QueueServiceClient.from_connection_string(connection),
        )

    @classmethod
    def from_urls(cls, table_url: str, blob_url: str, credential: Any = None,
                  queue_url: str | None = None) -> "StorageAccount":
        """Identity-based access (managed identity in Azure, `az login` on a laptop); the queue endpoint is the
        blob one's sibling unless given."""
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        queue_url = queue_url or blob_url.replace(".blob.", ".queue.", 1)
        return cls(TableServiceClient(table_url, credential=credential), BlobServiceClient(blob_url, credential=credential),
                   QueueServiceClient(queue_url, credential=credential))

    @property
    def emulated(self) -> bool:
        """Azurite (or another emulator): one account name, one single-threaded process behind it."""
        return self.tables.account_name == EMULATOR_ACCOUNT

    def ensure(self) -> None:
        """Create Forge's tables and containers if they are missing (idempotent)."""
        try:
            for name in TABLES:
                self.tables.create_table_if_not_exists(name)
            for name in CONTAINERS:
                try:
                    self.blobs.create_container(name)
                except ResourceExistsError:
                    pass
        except AzureError as exc:
            raise StorageUnavailable(
                f"Cannot reach storage at {self.tables.url} ({type(exc).__name__}). Check FORGE_STORAGE_CONNECTION, "
                "or unset it to let Forge run Azurite itself."
            ) from None
