"""How the SDK talks to Forge: a call is described once (`Call`), then sent by the synchronous or the asynchronous
transport, retried on 429 and 503 as the server's `Retry-After` says, and its answer parsed into the API's own
models. Every method of the SDK is tied to the operation it calls (`operation`), so a test can hold the SDK to the
server's OpenAPI document."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Generic, Iterator, TypeVar

import httpx
from pydantic import BaseModel

from forge.client.errors import ForgeAPIError
from forge.domain import retry_after as retry_after_header

T = TypeVar("T")
RETRIED = (429, 503)
OPERATIONS: dict[str, str] = {}  # "METHOD /path" → the SDK method that calls it


def operation(method: str, path: str) -> Callable[[T], T]:
    """Record that the decorated SDK method calls `method path` (see tests/unit/test_client_covers_api.py)."""

    def mark(function: T) -> T:
        OPERATIONS[f"{method} {path}"] = getattr(function, "__qualname__", str(function))
        return function

    return mark


@dataclass
class Call(Generic[T]):
    """One HTTP call and how to read its answer."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    parse: Callable[[httpx.Response], T] = lambda response: response.json()

    def request_kwargs(self) -> dict[str, Any]:
        params = {k: _param(v) for k, v in self.params.items() if v is not None}
        kwargs: dict[str, Any] = {"params": params, "headers": self.headers}
        if self.content is not None:
            kwargs["content"] = self.content
        elif self.json is not None:
            kwargs["json"] = self.json
        return kwargs


def model(kind: type[T]) -> Callable[[httpx.Response], T]:
    """Parse the answer into `kind` (a pydantic model of forge.api.schemas)."""
    return lambda response: kind.model_validate(response.json())  # type: ignore[attr-defined]


def body(value: BaseModel) -> dict[str, Any]:
    """A request model as the server reads it: camelCase, what was set (defaults stay the server's)."""
    return value.model_dump(mode="json", by_alias=True, exclude_unset=True)


@dataclass(frozen=True)
class Retry:
    """Retries of a 429 or 503: `attempts` more tries, waiting what `Retry-After` says (else backoff), at most
    `max_wait_s` each."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 60.0

    def wait(self, attempt: int, response: httpx.Response) -> float:
        told = retry_after(response)
        guessed = self.backoff_s * (2 ** attempt) * (0.5 + random.random() / 2)
        return min(self.max_wait_s, told if told is not None else guessed)


def retry_after(response: httpx.Response) -> float | None:
    """The wait the server names (`Retry-After`, seconds or an HTTP date); None when it names none it can read."""
    return retry_after_header.seconds(response.headers)


def check(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    try:
        content: Any = response.json()
    except ValueError:
        content = response.text
    raise ForgeAPIError.from_response(response.status_code, content, retry_after(response))


class SyncTransport:
    def __init__(self, client: httpx.Client, retry: Retry, sleep: Callable[[float], None] = time.sleep):
        self.http, self.retry, self.sleep = client, retry, sleep

    def send(self, call: Call[T]) -> T:
        for attempt in range(self.retry.attempts + 1):
            response = self.http.request(call.method, call.path, **call.request_kwargs())
            if response.status_code not in RETRIED or attempt == self.retry.attempts:
                return call.parse(check(response))
            self.sleep(self.retry.wait(attempt, response))
        raise AssertionError("unreachable")

    def pages(self, call: Call[Any], item: Callable[[Any], T]) -> Iterator[T]:
        token = None
        while True:
            page = self.send(_page(call, token))
            yield from (item(i) for i in page["items"])
            token = page.get("continuation")
            if not token:
                return


class AsyncTransport:
    def __init__(self, client: httpx.AsyncClient, retry: Retry):
        self.http, self.retry = client, retry

    async def send(self, call: Call[T]) -> T:
        for attempt in range(self.retry.attempts + 1):
            response = await self.http.request(call.method, call.path, **call.request_kwargs())
            if response.status_code not in RETRIED or attempt == self.retry.attempts:
                return call.parse(check(response))
            await asyncio.sleep(self.retry.wait(attempt, response))
        raise AssertionError("unreachable")

    async def pages(self, call: Call[Any], item: Callable[[Any], T]) -> AsyncIterator[T]:
        token = None
        while True:
            page = await self.send(_page(call, token))
            for i in page["items"]:
                yield item(i)
            token = page.get("continuation")
            if not token:
                return


def _page(call: Call[Any], token: str | None) -> Call[Any]:
    return Call(call.method, call.path, {**call.params, "continuation": token}, headers=call.headers)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
