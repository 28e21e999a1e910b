"""Forge's Python SDK: every operation of the REST API, typed with the models the API itself declares
(`forge.api.schemas`), paged lists as iterators, 429 and 503 retried as `Retry-After` says, errors carrying the
server's problem details (`forge.client.errors`).

    from forge.client import ForgeClient

    with ForgeClient("https://forge.example.com", key="fk.acme.…") as forge:
        dataset = forge.datasets.upload("train.jsonl")
        job = forge.jobs.create(dataset.dataset_id, base_model="gpt-4.1-mini-2025-04-14")
        done = forge.jobs.wait(job.job_id)
        forge.models.deploy(done.resulting_model_id, domain="support", stage="canary", percent=10)

`AsyncForgeClient` has the same resources; each method returns an awaitable, each `iter…` an async iterator.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from forge.api.version import API_VERSION, VERSION_HEADER
from forge.api.schemas import JobView
from forge.client.core import AsyncTransport, Call, Retry, SyncTransport, operation
from forge.client.errors import (Conflict, ForgeAPIError, Forbidden, InvalidRequest, NotFound, RateLimited,
                                 Unauthorized, Unavailable)
from forge.client.registry import Canary, Domains, Drift, Insights, Models, Router, Traces
from forge.client.runs import Datasets, Jobs

FINISHED = ("COMPLETED", "SKIPPED", "FAILED", "CANCELLED")
__all__ = ["AsyncForgeClient", "Conflict", "ForgeAPIError", "ForgeClient", "Forbidden", "InvalidRequest",
           "NotFound", "RateLimited", "Retry", "Unauthorized", "Unavailable"]


def _headers(key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"forge-client ({API_VERSION})", "Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    return headers


class _Resources:
    def _attach(self, transport: Any) -> None:
        self.jobs = Jobs(transport)
        self.datasets = Datasets(transport)
        self.models = Models(transport)
        self.traces = Traces(transport)
        self.domains = Domains(transport)
        self.canary = Canary(transport)
        self.drift = Drift(transport)
        self.insights = Insights(transport)
        self.router = Router(transport)


class ForgeClient(_Resources):
    """A Forge at `url`, as the tenant of `key`. Use it as a context manager, or `close()` it."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float = 60.0, retry: Retry = Retry(),
                 http: httpx.Client | None = None):
        self.http = http or httpx.Client(base_url=url.rstrip("/"), headers=_headers(key), timeout=timeout)
        self.transport = SyncTransport(self.http, retry)
        self._attach(self.transport)

    @operation("GET", "/health")
    def health(self) -> dict[str, Any]:
        """Liveness and storage; needs no key."""
        return self.transport.send(Call("GET", "/health"))

    def api_version(self) -> str | None:
        """The API version the server answers with (`Forge-Api-Version`)."""
        return self.http.get("/health").headers.get(VERSION_HEADER)

    def wait(self, job_id: str, *, timeout_s: float = 3600.0, interval_s: float = 2.0) -> JobView:
        """Poll the job until it ends (COMPLETED, SKIPPED, FAILED, CANCELLED); TimeoutError past `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.jobs.get(job_id)
            if job.status.value in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status.value} after {timeout_s:g} s")
            time.sleep(interval_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ForgeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncForgeClient(_Resources):
    """`ForgeClient` for asyncio: the same resources, every call awaited."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float = 60.0, retry: Retry = Retry(),
                 http: httpx.AsyncClient | None = None):
        self.http = http or httpx.AsyncClient(base_url=url.rstrip("/"), headers=_headers(key), timeout=timeout)
        self.transport = AsyncTransport(self.http, retry)
        self._attach(self.transport)

    async def health(self) -> dict[str, Any]:
        return await self.transport.send(Call("GET", "/health"))

    async def wait(self, job_id: str, *, timeout_s: float = 3600.0, interval_s: float = 2.0) -> JobView:
        deadline = time.monotonic() + timeout_s
        while True:
            job = await self.jobs.get(job_id)
            if job.status.value in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status.value} after {timeout_s:g} s")
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> "AsyncForgeClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

