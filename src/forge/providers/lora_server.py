"""LoRA servers: one base model served, students loaded into it as adapters by name, answered over the OpenAI API.

Two kinds speak the same HTTP (vLLM's): any vLLM OpenAI server started with `--enable-lora` and
`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` (an Azure ML online endpoint in Azure), and the embedded llama.cpp server
Forge runs itself (`providers/embedded_lora.py`). Evaluation and the router reach a student through `client()`, by its
adapter name, the way they reach a hosted model. Loading is idempotent; a refusal carries the server's own words.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from forge.domain.errors import ForgeError
from forge.domain.models import ModelVersion
from forge.providers.inference import ChatClient, InferenceError
from forge.providers.openai_compat import OpenAICompatClient, TokenProvider

AZUREML_HOST = ".inference.ml.azure.com"
AZUREML_SCOPE = "https://ml.azure.com/.default"
log = logging.getLogger("forge.lora")


class AdapterRefused(ForgeError):
    """The LoRA server would not load (or unload) an adapter; the message is the server's."""

    status = 502
    title = "LoRA server refused the adapter"


class LoRAServerUnavailable(ForgeError):
    status = 503
    title = "LoRA server unavailable"


class Unservable(ForgeError):
    """This server cannot serve the model at all (not a refusal of a load): another server, or transformers, can."""

    status = 422
    title = "Model cannot be served by the LoRA server"


@dataclass(frozen=True)
class Endpoint:
    """Where an adapter answers: the server's OpenAI base URL (…/v1), its key, and the adapter's name as `model`."""

    name: str
    base_url: str
    api_key: str | None = None


class LoRAServer(Protocol):
    kind: str  # "vllm" or "llama.cpp": which server answered, as the router reports it

    def describe(self) -> str:
        """One line for `forge serve` and the demo: what serves students, and where."""
        ...

    def ensure_loaded(self, model: ModelVersion) -> Endpoint:
        """Load the model's adapter unless it is loaded already (idempotent); AdapterRefused with the server's words."""
        ...

    def unload(self, model: ModelVersion) -> bool:
        """Unload the adapter; False when it was not loaded."""
        ...

    def loaded(self) -> dict[str, str]:
        """Adapter name → where the server read it from."""
        ...

    def client(self, model: ModelVersion, *, timeout_s: float, concurrency: int, max_retries: int,
               transport: httpx.AsyncBaseTransport | None = None,
               fallback: Callable[[], ChatClient] | None = None) -> ChatClient:
        """A chat client answering as the model's adapter; the adapter is loaded on its first call."""
        ...


def adapter_name(model: ModelVersion) -> str:
    """The adapter's name on a LoRA server (vLLM's `lora_name`, the chat request's `model`): unique per version."""
    return f"{model.domain}-{model.version_id}".lower()


def adapter_source(model: ModelVersion) -> str:
    """What a vLLM server reads the adapter from: a path on its host, an https Blob URL its image fetches, a hub id."""
    uri = model.adapter_uri or ""
    return urlsplit(uri).path if uri.startswith("file://") else uri


class HttpLoRAServer:
    """A vLLM OpenAI server with runtime LoRA updating (or anything speaking its API), reached over HTTP."""

    def __init__(self, url: str, *, api_key: SecretStr | str | None = None, kind: str = "vllm",
                 source: Callable[[ModelVersion], str] = adapter_source, label: str | None = None,
                 transport: httpx.BaseTransport | None = None, async_transport: httpx.AsyncBaseTransport | None = None,
                 timeout_s: float = 300.0):
        self.root = url.rstrip("/").removesuffix("/v1")
        self.kind = kind
        self.label = label or f"{kind} at {self.root}"
        self.source = source
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self.api_key = key
        self._sync_token: Callable[[], str] | None = None
        self._async_token: TokenProvider | None = None
        if not key and (urlsplit(self.root).hostname or "").endswith(AZUREML_HOST):
            self._sync_token, self._async_token = _azureml_tokens()
        self._async_transport = async_transport
        # Loading a large adapter on a busy GPU can take a while; listing and unloading are quick.
        self.http = httpx.Client(base_url=self.root, timeout=httpx.Timeout(timeout_s, connect=10.0),
                                 headers={"Authorization": f"Bearer {key}"} if key else {}, transport=transport)

    def describe(self) -> str:
        return f"LoRA server: {self.label} (adapters loaded by name at run time)"

    def endpoint(self, name: str) -> Endpoint:
        return Endpoint(name, f"{self.root}/v1", self.api_key)

    def loaded(self) -> dict[str, str]:
        response = self._request("GET", "/v1/models")
        if response.status_code != 200:
            hint = "; check FORGE_LORA_SERVER_API_KEY (or the app's role on the endpoint)" \
                if response.status_code in (401, 403) else ""
            raise LoRAServerUnavailable(f"The LoRA server ({self.label}) answered {response.status_code} to "
                                        f"GET /v1/models: {message(response)}{hint}")
        cards = response.json().get("data") or []
        return {c["id"]: c.get("root") or "" for c in cards if isinstance(c, dict) and c.get("parent")}

    def ensure_loaded(self, model: ModelVersion) -> Endpoint:
        name = adapter_name(model)
        if name in self.loaded():
            return self.endpoint(name)
        source = self.source(model)
        response = self._request("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": source})
        said = message(response)
        if response.status_code == 200 or (response.status_code == 400 and "already been loaded" in said):
            log.info("loaded adapter %s on %s", name, self.label)
            return self.endpoint(name)
        if response.status_code == 404 and "Not Found" in said:
            said += (" — this server has no runtime LoRA updating; start vLLM with --enable-lora and "
                     "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True")
        raise AdapterRefused(f"The LoRA server ({self.label}) refused adapter {name} for model {model.version_id} "
                             f"({response.status_code}): {said}")

    def unload(self, model: ModelVersion) -> bool:
        name = adapter_name(model)
        response = self._request("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        if response.status_code == 200:
            log.info("unloaded adapter %s from %s", name, self.label)
            return True
        if response.status_code == 404 and "cannot be found" in message(response):
            return False
        raise AdapterRefused(f"The LoRA server ({self.label}) would not unload {name} ({response.status_code}): "
                             f"{message(response)}")

    def client(self, model: ModelVersion, *, timeout_s: float, concurrency: int, max_retries: int,
               transport: httpx.AsyncBaseTransport | None = None,
               fallback: Callable[[], ChatClient] | None = None) -> ChatClient:
        return StudentClient(self, model, timeout_s=timeout_s, concurrency=concurrency, max_retries=max_retries,
                             transport=transport or self._async_transport, token_provider=self._async_token,
                             fallback=fallback)

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._sync_token()}"} if self._sync_token else None
        try:
            return self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise LoRAServerUnavailable(f"The LoRA server ({self.label}) is unreachable: {type(exc).__name__}. "
                                        "Check that it runs and FORGE_LORA_SERVER_URL points at it.") from None


class StudentClient:
    """A ChatClient for one student on a LoRA server: loads its adapter on the first call, and again when the server
    has lost it (a restart answers 404); `fallback` (transformers in-process) answers when the server cannot serve it."""

    def __init__(self, server: LoRAServer, model: ModelVersion, *, timeout_s: float, concurrency: int,
                 max_retries: int, transport: httpx.AsyncBaseTransport | None = None,
                 token_provider: TokenProvider | None = None, fallback: Callable[[], ChatClient] | None = None):
        self.server = server
        self.model = model
        self.name = model.version_id
        self.served_by = server.kind
        self._options = dict(timeout_s=timeout_s, concurrency=concurrency, max_retries=max_retries,
                             transport=transport, token_provider=token_provider)
        self._fallback_factory = fallback
        self._inner: ChatClient | None = None
        self._endpoint: Endpoint | None = None
        self._lock = asyncio.Lock()

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        client = await self._ready()
        try:
            return await client.complete(body)
        except InferenceError as exc:
            if exc.upstream_status != 404 or self.served_by == "transformers":
                raise
        return await (await self._ready(reload=True)).complete(body)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        client = await self._ready()
        chunks = client.stream(body)
        try:
            first = await anext(chunks, None)
        except InferenceError as exc:
            if exc.upstream_status != 404 or self.served_by == "transformers":
                raise
            chunks = (await self._ready(reload=True)).stream(body)
            first = await anext(chunks, None)
        if first is not None:
            yield first
            async for chunk in chunks:
                yield chunk

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    async def _ready(self, reload: bool = False) -> ChatClient:
        async with self._lock:
            if self._inner is not None and not reload:
                return self._inner
            try:
                endpoint = await asyncio.to_thread(self.server.ensure_loaded, self.model)
            except Unservable as exc:
                if self._fallback_factory is None:
                    raise
                log.warning("%s: %s; it answers in-process with transformers instead", self.name, exc)
                self._inner, self.served_by = self._fallback_factory(), "transformers"
                return self._inner
            if self._inner is None or endpoint != self._endpoint:
                if self._inner is not None:
                    await self._inner.aclose()
                options = dict(self._options)
                self._inner = OpenAICompatClient(endpoint.base_url, model=endpoint.name, name=self.name,
                                                 api_key=endpoint.api_key, **options)  # type: ignore[arg-type]
                self._endpoint = endpoint
            return self._inner


def message(response: httpx.Response) -> str:
    """The server's words: vLLM's `{"error": {"message"}}`, its older flat `{"message"}`, FastAPI's `detail`, text."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason_phrase)[:400]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)[:400]
        for key in ("message", "detail", "error"):
            if body.get(key):
                return str(body[key])[:400]
    return str(body)[:400]


def _azureml_tokens() -> tuple[Callable[[], str], TokenProvider]:
    """Entra ID tokens for an Azure ML online endpoint from the app's managed identity (or `az login`)."""
    from azure.identity import DefaultAzureCredential
    from azure.identity.aio import DefaultAzureCredential as AsyncCredential, get_bearer_token_provider

    credential = DefaultAzureCredential()
    return (lambda: credential.get_token(AZUREML_SCOPE).token,
            get_bearer_token_provider(AsyncCredential(), AZUREML_SCOPE))
