"""A group of operations (jobs, datasets, models …) over either transport: each method describes its call once; on
`ForgeClient` it returns the answer, on `AsyncForgeClient` an awaitable of it (`iter_*` give an async iterator)."""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import quote

from forge.client.core import Call


class Resource:
    def __init__(self, transport: Any):
        self._transport = transport

    def _send(self, call: Call[Any]) -> Any:
        return self._transport.send(call)

    def _pages(self, call: Call[Any], item: Callable[[Any], Any]) -> Any:
        return self._transport.pages(call, item)


def seg(value: str) -> str:
    """An id as one path segment (an id with a `/` cannot reach another route)."""
    return quote(str(value), safe="")
