"""One bound on calls in flight per model endpoint, whatever number of clients (a candidate, the production model,
the judge) call it: an endpoint's quota and its throttling are per endpoint, not per model."""

from __future__ import annotations

import asyncio
from typing import Iterable

from forge.providers.inference import ChatClient
from forge.providers.openai_compat import OpenAICompatClient


def share_endpoint_limits(clients: Iterable[ChatClient | None], concurrency: int) -> int:
    """Clients calling the same endpoint share one limit of `concurrency` calls in flight (created within the
    running event loop). Returns how many endpoints the clients call."""
    groups: dict[str, list[OpenAICompatClient]] = {}
    for client in clients:
        if isinstance(client, OpenAICompatClient):
            groups.setdefault(client.base_url, []).append(client)
    for group in groups.values():
        shared = asyncio.Semaphore(concurrency)
        for client in group:
            client.share_limit(shared)
    return len(groups)
