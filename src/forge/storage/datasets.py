"""Datasets: metadata in Table (PartitionKey tenant), JSONL files in Blob under `datasets/{tenant}/{dataset}/`."""

from __future__ import annotations

import hashlib
import json
from typing import IO, Any, Iterable, Iterator

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError

from forge.domain import ids
from forge.domain.errors import AlreadyExists, ConcurrentUpdate, DatasetNotFound
from forge.domain.models import Dataset
from forge.storage.account import StorageAccount
from forge.storage.tables import Page, RecordTable, quote, to_entity

CONTAINER = "datasets"
FILES = ("train", "valid", "rejects")
CLAIM = "~version~"  # rows `~version~{domain}~{n}` beside the records: each version number is taken once
RECORDS = f"RowKey lt {quote('~')}"  # the dataset records, not the claims (dataset ids never start with '~')
RETRIES = 20


class JsonlWriter:
    """Encodes records as JSONL bytes on the fly, counting lines and hashing what it yields."""

    def __init__(self, records: Iterable[dict[str, Any]]):
        self.records = records
        self.lines = 0
        self.sha256 = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for record in self.records:
            chunk = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            self.lines += 1
            self.sha256.update(chunk)
            yield chunk


def folder(tenant: str, dataset_id: str) -> str:
    """`{tenant}/{dataset}`, or InvalidInput: ids from outside never become blob paths unchecked."""
    return f"{ids.TENANT.check(tenant)}/{ids.DATASET.check(dataset_id)}"


class DatasetRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(account.tables.get_table_client("datasets"), Dataset, lambda d: (d.tenant, d.dataset_id))
        self.blobs = account.blobs.get_container_client(CONTAINER)

    def create(self, dataset: Dataset) -> Dataset:
        return self.table.create(dataset)

    def create_next_version(self, dataset: Dataset) -> Dataset:
        """Insert as its domain's next version, the latest so far as its parent. The record and a claim on the
        number commit in one transaction, so two builds finishing at once never share a version; AlreadyExists
        when the dataset id is taken."""
        for _ in range(RETRIES):
            previous = max(self.scan(dataset.tenant, domain=dataset.domain), key=lambda d: d.version, default=None)
            numbered = dataset.model_copy(update={"version": previous.version + 1 if previous else 1,
                                                  "parent_id": previous.dataset_id if previous else None})
            claim = {"PartitionKey": dataset.tenant, "RowKey": f"{CLAIM}{dataset.domain}~{numbered.version:09d}"}
            try:
                meta = self.table.client.submit_transaction([
                    ("create", to_entity(numbered, dataset.tenant, dataset.dataset_id)), ("create", claim)])
            except TableTransactionError:
                if self.find(dataset.tenant, dataset.dataset_id) is not None:
                    raise AlreadyExists(f"Dataset {dataset.tenant}/{dataset.dataset_id} already exists.") from None
                continue  # another build took this number: read the latest again
            return numbered.model_copy(update={"etag": meta[0].get("etag")})
        raise ConcurrentUpdate(f"Could not number dataset {dataset.dataset_id}: too many builds at once; retry.")

    def save(self, dataset: Dataset) -> Dataset:
        return self.table.replace(dataset)

    def get(self, tenant: str, dataset_id: str) -> Dataset:
        dataset = self.table.get(tenant, dataset_id)
        if dataset is None:
            raise DatasetNotFound(f"No dataset '{dataset_id}' for this tenant; list datasets to find its id.")
        return dataset

    def list(self, tenant: str, *, limit: int = 50, continuation: str | None = None) -> Page[Dataset]:
        return self.table.page(f"PartitionKey eq {quote(tenant)} and {RECORDS}", limit, continuation)

    def find(self, tenant: str, dataset_id: str) -> Dataset | None:
        return self.table.get(tenant, dataset_id)

    def scan(self, tenant: str, *, domain: str | None = None) -> Iterator[Dataset]:
        """Every dataset record of a tenant (of one domain), deleted ones included."""
        query = f"PartitionKey eq {quote(tenant)} and {RECORDS}" + (f" and domain eq {quote(domain)}" if domain else "")
        return self.table.scan(query)

    def upload(self, tenant: str, dataset_id: str, filename: str, data: IO[bytes]) -> str:
        """Stream a finished file (`train.jsonl`, `stats.json` …) to the dataset's folder; returns its blob path."""
        path = f"{folder(tenant, dataset_id)}/{filename}"
        self.blobs.upload_blob(path, data, overwrite=True)
        return f"{CONTAINER}/{path}"

    def read_bytes(self, tenant: str, dataset_id: str, filename: str) -> bytes:
        """A small dataset file (such as `stats.json`) whole."""
        try:
            return self.blobs.download_blob(f"{folder(tenant, dataset_id)}/{filename}").readall()
        except ResourceNotFoundError:
            raise DatasetNotFound(f"Dataset '{dataset_id}' has no {filename}.") from None

    def write_file(self, tenant: str, dataset_id: str, name: str, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """Stream records to `{tenant}/{dataset}/{name}.jsonl`; returns its blob path, line count and sha256."""
        if name not in FILES:
            raise ValueError(f"dataset file must be one of {FILES}")
        path = f"{folder(tenant, dataset_id)}/{name}.jsonl"
        writer = JsonlWriter(records)
        self.blobs.upload_blob(path, iter(writer), overwrite=True)
        return {"path": f"{CONTAINER}/{path}", "lines": writer.lines, "sha256": writer.sha256.hexdigest()}

    def open_file(self, tenant: str, dataset_id: str, name: str) -> Iterator[bytes]:
        """The raw bytes of one dataset file, chunk by chunk (for uploads to a provider, or a local copy)."""
        path = f"{folder(tenant, dataset_id)}/{name}.jsonl"
        try:
            return self.blobs.download_blob(path).chunks()
        except ResourceNotFoundError:
            raise DatasetNotFound(f"Dataset '{dataset_id}' has no {name}.jsonl.") from None

    def read_file(self, tenant: str, dataset_id: str, name: str) -> Iterator[dict[str, Any]]:
        """The records of one dataset file, read chunk by chunk (never the whole file in memory)."""
        rest = b""
        for chunk in self.open_file(tenant, dataset_id, name):
            rest += chunk
            *lines, rest = rest.split(b"\n")
            for line in lines:
                if line:
                    yield json.loads(line)
        if rest.strip():
            yield json.loads(rest)
