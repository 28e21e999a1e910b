"""The vLLM image's adapter fetcher (lora-server/forge_adapters.py) as vLLM runs it, an ASGI middleware in front of
the server, against Azurite: a load request naming an adapter in Forge's Blob storage reaches vLLM as a local folder
holding the adapter; other storage is refused, a missing adapter is vLLM's 404, local paths pass untouched."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from forge.storage.azurite import ACCOUNT, ACCOUNT_KEY

MODULE = Path(__file__).resolve().parents[2] / "lora-server" / "forge_adapters.py"


def middleware_class():
    spec = importlib.util.spec_from_file_location("forge_adapters", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BlobAdapters


class Vllm:
    """Stands in for vLLM behind the middleware: records the load requests it gets and what the path holds."""

    def __init__(self):
        self.loads: list[dict] = []

    async def __call__(self, scope, receive, send):
        message = await receive()
        body = json.loads(message["body"])
        folder = Path(body["lora_path"])
        self.loads.append({**body, "files": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Success"})


@pytest.fixture
def setup(azurite, tenant, tmp_path):
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    models = blobs.get_container_client("models")
    if not models.exists():
        models.create_container()
    prefix = f"{tenant}/forge-job/adapter"
    models.upload_blob(f"{prefix}/adapter_config.json", b'{"r": 8}', overwrite=True)
    models.upload_blob(f"{prefix}/adapter_model.safetensors", b"weights", overwrite=True)
    vllm = Vllm()
    app = middleware_class()(vllm, storage=blobs.url, cache=tmp_path / "cache",
                             credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY})

    def load(name: str, path: str) -> httpx.Response:
        async def post() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vllm") as client:
                return await client.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        return asyncio.run(post())

    return vllm, f"{models.url}/{prefix}", load


def test_an_adapter_in_forge_storage_reaches_vllm_as_a_local_folder_fetched_once(setup, tmp_path):
    vllm, url, load = setup
    assert load("coding-01", url).status_code == 200
    first = vllm.loads[-1]
    assert first["lora_name"] == "coding-01" and first["files"] == ["adapter_config.json", "adapter_model.safetensors"]
    assert Path(first["lora_path"]).is_relative_to(tmp_path / "cache")
    assert load("coding-02", url).status_code == 200 and vllm.loads[-1]["lora_path"] == first["lora_path"]


def test_other_storage_is_refused_a_missing_adapter_is_vllms_404_and_local_paths_pass(setup, tmp_path):
    vllm, url, load = setup
    other = load("x", "https://elsewhere.blob.core.windows.net/models/a")
    assert other.status_code == 400 and other.json()["error"]["type"] == "InvalidUserInput"
    missing = load("x", url.replace("forge-job", "no-job"))
    assert missing.status_code == 404 and "No adapter found for" in missing.json()["error"]["message"]
    assert vllm.loads == []  # vLLM saw neither
    assert load("x", str(tmp_path)).status_code == 200 and vllm.loads[-1]["lora_path"] == str(tmp_path)
