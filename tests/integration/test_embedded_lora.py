"""The embedded LoRA server (llama.cpp behind vLLM's LoRA API), started by Forge the way Azurite is: on loopback with
a token, its state owner-only under FORGE_HOME, reused by the next command; two students batched together answer
exactly as each does alone, and as transformers + peft do; what it refuses, it refuses in vLLM's words."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx
import pytest

from forge.domain.models import ModelVersion
from forge.providers.embedded_lora import EmbeddedLoRAServer
from forge.providers.local_model import LocalModelClient
from forge.providers.lora_server import Unservable, adapter_name
from tests.factories import make_tiny_student

QUESTIONS = ["What colour is the river?", "Write a function that returns a list.", "Name a garden.", "Say hi."]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def students(tmp_path_factory) -> list[ModelVersion]:
    """Two random (not no-op) LoRA students on one tiny base with a SentencePiece tokenizer."""
    import torch
    from forge_trainer import tiny
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("students")
    base = tiny.build(root / "base", seed=0, tokenizer_kind="sentencepiece")
    versions = []
    for i in range(2):
        torch.manual_seed(10 + i)
        lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
        get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(root / f"adapter{i}")
        versions.append(ModelVersion(tenant="t", domain="demo", base_model=str(base), adapter_uri=str(root / f"adapter{i}")))
    return versions


@pytest.fixture(scope="module")
def server(home, students):
    embedded = EmbeddedLoRAServer(home, slots=4)
    yield embedded
    embedded.stop()


def body(question: str, **extra) -> dict:
    return {"messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": question}],
            "max_tokens": 16, **extra}


async def ask_all(client_of, pairs):
    clients = {id(model): client_of(model) for model, _ in pairs}
    try:
        return await asyncio.gather(*(clients[id(model)].complete(body(q)) for model, q in pairs))
    finally:
        for client in clients.values():
            await client.aclose()


def text(answer: dict) -> str:
    return answer["choices"][0]["message"]["content"]


def test_students_batched_together_answer_as_each_alone_and_as_transformers_with_peft(server, students):
    on_server = lambda model: server.client(model, timeout_s=60, concurrency=8, max_retries=0)  # noqa: E731
    pairs = [(model, q) for q in QUESTIONS for model in students]
    together = asyncio.run(ask_all(on_server, pairs))  # 8 requests, 2 adapters, 4 slots: interleaved steps
    alone = [asyncio.run(ask_all(on_server, [pair]))[0] for pair in pairs]
    in_process = asyncio.run(ask_all(lambda m: LocalModelClient(m.base_model, m.adapter_uri, name=m.version_id,
                                                                max_new_tokens=16), pairs))
    assert [text(a) for a in together] == [text(a) for a in alone] == [text(a) for a in in_process]
    assert len({text(a) for a in together}) > 1  # the two students do not answer alike
    assert {a["model"] for a in together} == {adapter_name(m) for m in students}
    assert all(a["usage"]["completion_tokens"] > 0 for a in together)


def test_the_server_runs_like_azurite_on_loopback_with_an_owner_only_state_file_and_is_reused(home, server,
                                                                                            students):
    server.ensure_loaded(students[0])
    [state] = server.running()
    state_file = home / "lora" / "servers" / server._key(Path(state.base)) / "state.json"
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
    again = EmbeddedLoRAServer(home)  # the next command, same FORGE_HOME
    assert again.ensure_loaded(students[0]).base_url == f"http://127.0.0.1:{state.port}/v1"
    assert [s.pid for s in again.running()] == [state.pid]
    assert f"pid {state.pid}" in again.describe()


def test_it_wants_its_token_and_loads_only_gguf_adapters_from_its_own_folder(server, students, tmp_path):
    endpoint = server.ensure_loaded(students[0])
    url = endpoint.base_url.removesuffix("/v1")
    assert httpx.get(f"{url}/v1/models").status_code == 401
    auth = {"Authorization": f"Bearer {endpoint.api_key}"}
    outside = tmp_path / "evil.gguf"
    outside.write_bytes(b"GGUF")
    refused = httpx.post(f"{url}/v1/load_lora_adapter", headers=auth, json={"lora_name": "x", "lora_path": str(outside)})
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "InvalidUserInput"
    unknown = httpx.post(f"{url}/v1/chat/completions", headers=auth, json={"model": "nope", **body("hi")})
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == "The model `nope` does not exist."
    gone = httpx.post(f"{url}/v1/unload_lora_adapter", headers=auth, json={"lora_name": "nope"})
    assert gone.status_code == 404 and "cannot be found" in gone.json()["error"]["message"]


def test_unload_frees_the_adapter_and_the_next_call_loads_it_again(server, students):
    model = students[1]
    server.ensure_loaded(model)
    assert server.unload(model) is True and adapter_name(model) not in server.loaded()
    assert server.unload(model) is False

    async def stream():
        client = server.client(model, timeout_s=60, concurrency=2, max_retries=0)
        try:
            return [chunk async for chunk in client.stream(body("Say hi.", stream_options={"include_usage": True}))]
        finally:
            await client.aclose()

    chunks = asyncio.run(stream())
    assert adapter_name(model) in server.loaded()
    assert chunks[-1]["usage"]["completion_tokens"] > 0 and chunks[0]["choices"][0]["delta"]["role"] == "assistant"


def test_a_base_llama_cpp_cannot_convert_is_served_in_process_with_the_reason(home, tmp_path):
    base, adapter = make_tiny_student(tmp_path)  # a word-level tokenizer: llama.cpp's converter refuses it
    model = ModelVersion(tenant="t", domain="demo", base_model=str(base), adapter_uri=str(adapter))
    server = EmbeddedLoRAServer(home)
    with pytest.raises(Unservable, match="converter"):
        server.ensure_loaded(model)
    fallback = lambda: LocalModelClient(base, adapter, name=model.version_id, max_new_tokens=4)  # noqa: E731

    async def ask():
        client = server.client(model, timeout_s=60, concurrency=1, max_retries=0, fallback=fallback)
        try:
            return await client.complete(body("hello")), client.served_by
        finally:
            await client.aclose()

    answer, served_by = asyncio.run(ask())
    assert served_by == "transformers" and answer["model"] == model.version_id


def test_forge_lora_status_shows_the_running_server_and_its_adapters_and_stop_stops_it(home, server, students,
                                                                                     forge_cli, monkeypatch):
    server.ensure_loaded(students[0])
    [state] = server.running()
    monkeypatch.setenv("FORGE_HOME", str(home))
    monkeypatch.setenv("FORGE_LORA_SERVER", "embedded")
    code, out, _ = forge_cli("lora", "status")
    assert code == 0 and f"pid {state.pid} on http://127.0.0.1:{state.port}" in out
    assert adapter_name(students[0]) in out
    code, out, _ = forge_cli("lora", "stop")
    assert (code, out.strip()) == (0, "Stopped 1 embedded LoRA server.") and server.running() == []
    monkeypatch.setenv("FORGE_LORA_SERVER", "transformers")
    code, out, _ = forge_cli("lora", "status")
    assert "students answer in-process with transformers" in out
