"""vLLM middleware (`--middleware forge_adapters.BlobAdapters`): adapters from Forge's Blob storage.

Forge loads a student with `POST /v1/load_lora_adapter {"lora_name", "lora_path"}`, where `lora_path` is the https URL
of the adapter folder the `azureml` provider's trainer wrote to Forge's `models` container. vLLM reads adapters from
local folders (or the Hugging Face hub), so this middleware downloads the folder first, with the endpoint's managed
identity, into a local cache, and hands vLLM the local path. Only URLs under FORGE_ADAPTER_STORAGE (Forge's Blob
endpoint) are fetched; any other https URL is refused, so the endpoint never fetches what a caller names. Local
paths and hub ids pass through untouched. Errors use vLLM's own shape.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

CACHE = Path(os.environ.get("FORGE_ADAPTER_CACHE", "/tmp/forge-adapters"))


class AdapterMissing(Exception):
    pass


class BlobAdapters:
    def __init__(self, app: Any, *, storage: str | None = None, credential: Any = None,
                 cache: Path | None = None) -> None:
        self.app = app
        self.storage = (storage or os.environ.get("FORGE_ADAPTER_STORAGE", "")).rstrip("/")
        self.credential = credential
        self.cache = cache or CACHE

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or scope.get("path") != "/v1/load_lora_adapter" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        path = request.get("lora_path") if isinstance(request, dict) else None
        if isinstance(path, str) and path.startswith(("https://", "http://")):
            if not self.storage or not path.startswith(self.storage + "/"):
                await _error(send, 400, f"This server fetches adapters only from {self.storage or '(none set)'}; "
                                        f"{urlsplit(path).netloc} is not it.", "InvalidUserInput")
                return
            try:
                local = await asyncio.to_thread(self.fetch, path)
            except AdapterMissing:
                await _error(send, 404, f"Loading lora {request.get('lora_name')} failed: No adapter found for {path}",
                             "NotFoundError")
                return
            body = json.dumps({**request, "lora_path": str(local)}).encode()
        await self.app(scope, _replay(body), send)

    def fetch(self, url: str) -> Path:
        """The adapter folder at `url`, downloaded once into the cache (a folder there is always complete)."""
        from azure.storage.blob import ContainerClient

        folder = self.cache / hashlib.sha256(url.encode()).hexdigest()[:24]
        if (folder / "adapter_config.json").is_file():
            return folder
        container_name, _, prefix = url[len(self.storage) + 1:].partition("/")
        container = ContainerClient(self.storage, container_name, credential=self.credential or _identity())
        temp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
        try:
            for blob in container.list_blobs(name_starts_with=prefix.rstrip("/") + "/"):
                target = temp / blob.name[len(prefix.rstrip("/")) + 1:]
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as handle:
                    container.download_blob(blob.name).readinto(handle)
            if not (temp / "adapter_config.json").is_file():
                raise AdapterMissing(url)
            temp.rename(folder)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return folder


def _identity() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


async def _body(receive: Callable) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes) -> Callable:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _error(send: Callable, status: int, message: str, kind: str) -> None:
    payload = json.dumps({"error": {"message": message, "type": kind, "param": "lora_path", "code": status}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
