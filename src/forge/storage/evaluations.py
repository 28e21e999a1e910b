"""What evaluation keeps: eval set versions (table `evalsets`, PartitionKey tenant, RowKey `{domain}~{version:09d}`)
and, in the Blob container `evaluations`, their items (`sets/{tenant}/{domain}/v{version}.jsonl`), tenants'
benchmark files by content hash (`benchmarks/{tenant}/{domain}/{sha256}.jsonl`) and each job's per-example results
(`results/{tenant}/{job}.json`). A record is written after its blob, so it never points at a missing one."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

from azure.core.exceptions import ResourceNotFoundError

from forge.domain import ids
from forge.domain.evalsets import EvalItem, EvalSet
from forge.domain.models import Trace
from forge.storage.account import StorageAccount
from forge.storage.tables import RecordTable, prefix_filter, quote
from forge.storage.traces import TraceRepository

CONTAINER = "evaluations"


def _row(domain: str, version: int) -> str:
    return f"{ids.DOMAIN.check(domain)}~{version:09d}"


class EvaluationStore:
    def __init__(self, account: StorageAccount):
        self.sets = RecordTable(account.tables.get_table_client("evalsets"), EvalSet,
                                lambda s: (s.tenant, _row(s.domain, s.version)))
        self.blobs = account.blobs.get_container_client(CONTAINER)

    # --- eval sets ------------------------------------------------------------------------------------------------

    def latest(self, tenant: str, domain: str) -> EvalSet | None:
        return max(self.versions(tenant, domain), key=lambda s: s.version, default=None)

    def versions(self, tenant: str, domain: str) -> Iterator[EvalSet]:
        low, high = _row(domain, 0), _row(domain, 10**9 - 1)
        return self.sets.scan(f"PartitionKey eq {quote(tenant)} and RowKey ge {quote(low)} and RowKey le {quote(high)}")

    def get(self, tenant: str, domain: str, version: int) -> EvalSet | None:
        return self.sets.get(tenant, _row(domain, version))

    def add(self, record: EvalSet, items: list[EvalItem]) -> EvalSet:
        """Write the items, then the record; AlreadyExists when another carve took this version first."""
        body = "".join(item.model_dump_json() + "\n" for item in items).encode()
        self.blobs.upload_blob(self._set_path(record.tenant, record.domain, record.version), body, overwrite=True)
        return self.sets.create(record.model_copy(update={"sha256": hashlib.sha256(body).hexdigest()}))

    def items(self, tenant: str, domain: str, version: int) -> list[EvalItem]:
        try:
            data = self.blobs.download_blob(self._set_path(tenant, domain, version)).readall()
        except ResourceNotFoundError:
            return []
        return [EvalItem.model_validate_json(line) for line in data.splitlines() if line.strip()]

    # --- tenants' benchmark files -----------------------------------------------------------------------------------

    def put_benchmark(self, tenant: str, domain: str, text: str) -> str:
        """Store a (validated) benchmark file under its content hash; returns the hash."""
        data = text.encode()
        sha = hashlib.sha256(data).hexdigest()
        self.blobs.upload_blob(self._benchmark_path(tenant, domain, sha), data, overwrite=True)
        return sha

    def benchmark(self, tenant: str, domain: str, sha256: str) -> str:
        return self.blobs.download_blob(self._benchmark_path(tenant, domain, sha256)).readall().decode()

    # --- per-example results of a job's evaluation -------------------------------------------------------------------

    def put_results(self, tenant: str, job_id: str, results: dict[str, Any]) -> None:
        body = json.dumps(results, ensure_ascii=False, separators=(",", ":")).encode()
        self.blobs.upload_blob(self._results_path(tenant, job_id), body, overwrite=True)

    def results(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.blobs.download_blob(self._results_path(tenant, job_id)).readall())
        except ResourceNotFoundError:
            return None

    @staticmethod
    def _set_path(tenant: str, domain: str, version: int) -> str:
        return f"sets/{ids.TENANT.check(tenant)}/{ids.DOMAIN.check(domain)}/v{version:09d}.jsonl"

    @staticmethod
    def _benchmark_path(tenant: str, domain: str, sha256: str) -> str:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("a benchmark is named by its sha256")
        return f"benchmarks/{ids.TENANT.check(tenant)}/{ids.DOMAIN.check(domain)}/{sha256}.jsonl"

    @staticmethod
    def _results_path(tenant: str, job_id: str) -> str:
        return f"results/{ids.TENANT.check(tenant)}/{ids.JOB.check(job_id)}.json"


def labelled(traces: TraceRepository, tenant: str, domain: str, limit: int) -> list[Trace]:
    """Up to `limit` of the domain's traces a person approved or rejected, newest first, about half of each."""
    query = (prefix_filter("PartitionKey", f"{tenant}|{domain}|")
             + " and (feedback eq 'approved' or feedback eq 'rejected')")
    found: dict[str, list[Trace]] = {"approved": [], "rejected": []}
    for entity in traces.table.client.query_entities(query):
        trace = traces._trace(entity)
        found[trace.feedback or "rejected"].append(trace)
    for kind in found:
        found[kind].sort(key=lambda t: t.created_at, reverse=True)
    half = limit // 2
    approved, rejected = found["approved"], found["rejected"]
    take_approved = min(len(approved), max(half, limit - len(rejected)))
    return approved[:take_approved] + rejected[: limit - take_approved]
