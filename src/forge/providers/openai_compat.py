"""A ChatClient for any OpenAI-compatible endpoint: OpenAI, Azure OpenAI (v1 API), vLLM, Ollama, the router.

One `httpx.AsyncClient` per instance, reused for every call (the router sits on this path, so nothing is set up
per request). Concurrency is bounded by a semaphore; 429 and 5xx are retried honouring `Retry-After`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from forge.domain import retry_after
from forge.providers.inference import InferenceError

AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TokenProvider = Callable[[], Awaitable[str]]


def is_azure(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "").endswith(AZURE_HOSTS)


def chat_base_url(base_url: str) -> str:
    """The URL `/chat/completions` hangs off; an Azure OpenAI resource endpoint gets its v1 API path."""
    url = base_url.rstrip("/")
    if is_azure(url) and "/openai" not in urlsplit(url).path:
        url += "/openai/v1"
    return url


class OpenAICompatClient:
    """Chat completions over HTTP, plain and streaming (SSE)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        name: str | None = None,
        api_key: SecretStr | str | None = None,
        token_provider: TokenProvider | None = None,
        timeout_s: float = 60.0,
        concurrency: int = 8,
        max_retries: int = 3,
        max_retry_wait_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.model = model  # sent as the body's `model`: the deployment name on Azure OpenAI
        self.name = name or model
        self.base_url = chat_base_url(base_url)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s
        self._limit = asyncio.Semaphore(concurrency)
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        headers = {"Content-Type": "application/json"}
        if key and is_azure(base_url):
            headers["api-key"] = key
        elif key:
            headers["Authorization"] = f"Bearer {key}"
        elif token_provider is None and is_azure(base_url):
            token_provider = _entra_token_provider()
        self._token_provider = token_provider
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )

    async def complete(self, body: dict[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]:
        payload = {**body, "model": self.model, "stream": False}
        async with self._limit:
            response = await self._send(payload, timeout_s, stream=False)
        try:
            return response.json()
        except ValueError:
            raise InferenceError(f"{self.name} answered with a body that is not JSON.", upstream_status=200) from None

    async def stream(self, body: dict[str, Any], *, timeout_s: float | None = None) -> AsyncIterator[dict[str, Any]]:
        payload = {**body, "model": self.model, "stream": True}
        async with self._limit:
            response = await self._send(payload, timeout_s, stream=True)
            try:
                async for chunk in _sse_chunks(response, self.name, timeout_s or self.timeout_s):
                    yield chunk
            finally:
                await response.aclose()

    def share_limit(self, limit: asyncio.Semaphore) -> None:
        """Bound this client's calls in flight with `limit`, shared with other clients of the same endpoint."""
        self._limit = limit

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(self, payload: dict[str, Any], timeout_s: float | None, *, stream: bool) -> httpx.Response:
        """POST with retries; the response is open (stream) or read; any failure is an InferenceError."""
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)) if timeout_s else None
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {await self._token_provider()}"} if self._token_provider else None
            request = self.http.build_request(
                "POST", "/chat/completions", json=payload, headers=headers,
                **({"timeout": timeout} if timeout else {}),
            )
            try:
                response = await self.http.send(request, stream=True)
            except httpx.TimeoutException as exc:
                # A hang is not retried: a second wait would double the caller's latency before it falls back.
                raise InferenceError(
                    f"{self.name} did not answer within {timeout_s or self.timeout_s:g}s ({type(exc).__name__}).",
                    timed_out=True,
                ) from None
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise InferenceError(f"{self.name} at {self.base_url} is unreachable: {type(exc).__name__}.") from None
                attempt += 1
                await asyncio.sleep(_backoff(attempt))
                continue
            if response.status_code < 400:
                if not stream:
                    await response.aread()
                    await response.aclose()
                return response
            await response.aread()
            await response.aclose()
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                attempt += 1
                await asyncio.sleep(min(self.max_retry_wait_s, retry_after.seconds(response.headers) or _backoff(attempt)))
                continue
            raise InferenceError(
                f"{self.name} answered {response.status_code}: {_error_message(response)}",
                upstream_status=response.status_code,
            )


async def _sse_chunks(response: httpx.Response, name: str, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of `data:` events until `[DONE]`; other SSE fields and comments are skipped."""
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                raise InferenceError(f"{name} sent a stream event that is not JSON: {data[:80]!r}.") from None
            if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                raise InferenceError(f"{name} failed mid-stream: {_describe(chunk['error'])}")
            yield chunk
    except httpx.TimeoutException:
        raise InferenceError(f"{name} stalled mid-stream for over {timeout_s:g}s.", timed_out=True) from None
    except httpx.TransportError as exc:
        raise InferenceError(f"{name} dropped the stream: {type(exc).__name__}.") from None


def _backoff(attempt: int) -> float:
    return min(8.0, 0.25 * 2 ** (attempt - 1))


def _error_message(response: httpx.Response) -> str:
    """The upstream's own words (OpenAI's error shape or text), short; never the request or its headers."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    return _describe(body.get("error", body) if isinstance(body, dict) else body)


def _describe(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:300]
    return str(error)[:300]


def _entra_token_provider() -> TokenProvider:
    """Entra ID tokens for Azure OpenAI from the managed identity (or a developer's `az login`)."""
    from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

    return get_bearer_token_provider(DefaultAzureCredential(), AZURE_SCOPE)
