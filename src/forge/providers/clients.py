"""Which ChatClient answers for a model: a hosted name, a hosted student (`ft:…`), a student on a LoRA server, or a
local PEFT adapter in-process; and which LoRA server serves students."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from forge.config import Settings
from forge.domain.errors import ConfigError, InvalidInput
from forge.domain.models import ModelVersion
from forge.providers import gguf
from forge.providers.embedded_lora import EmbeddedLoRAServer
from forge.providers.inference import ChatClient
from forge.providers.local_model import LocalModelClient
from forge.providers.lora_server import HttpLoRAServer, LoRAServer
from forge.providers.openai_compat import OpenAICompatClient


def client_for(settings: Settings, model: ModelVersion | str, *, timeout_s: float | None = None,
               concurrency: int | None = None, max_retries: int = 3,
               transport: httpx.AsyncBaseTransport | None = None, lora: LoRAServer | None = None) -> ChatClient:
    """A new client for `model` (callers keep and reuse it, and close it with `aclose`).

    A string is a model hosted at the teacher's endpoint; a ModelVersion with an `adapter_uri` is an adapter on the
    `lora` server (loaded by name on its first call), or without one runs in-process with transformers (its
    `base_model` a local folder); one with a `provider_model_id` is served at the student endpoint.
    """
    if isinstance(model, str):
        return _hosted(settings, model, "teacher", timeout_s, concurrency, max_retries, transport)
    if model.adapter_uri and lora is not None:
        in_process = lambda: LocalModelClient(model.base_model, model.adapter_uri, name=model.version_id)  # noqa: E731
        return lora.client(model, timeout_s=timeout_s or settings.inference_timeout_s,
                           concurrency=concurrency or settings.inference_concurrency, max_retries=max_retries,
                           transport=transport, fallback=in_process if lora.kind == "llama.cpp" else None)
    if model.adapter_uri:
        return LocalModelClient(model.base_model, model.adapter_uri, name=model.version_id)
    if model.provider_model_id:
        return _hosted(settings, model.provider_model_id, "student", timeout_s, concurrency, max_retries, transport)
    if Path(model.base_model).is_dir():  # a local base model with no adapter: what a student starts from
        return LocalModelClient(model.base_model, None, name=model.version_id)
    raise InvalidInput(
        f"Model version '{model.version_id}' has neither an adapter nor a provider model id, so nothing can serve "
        "it; its training did not finish. Evaluate a model version whose job completed."
    )


def lora_server_for(settings: Settings) -> LoRAServer | None:
    """The LoRA server students are served from: FORGE_LORA_SERVER, by default a vLLM server when
    FORGE_LORA_SERVER_URL is set, else the embedded llama.cpp one when it is installed, else none (transformers
    in-process, one request at a time; `lora_server_note` says so)."""
    mode = settings.lora_server
    if mode == "transformers":
        return None
    if mode == "vllm" or (mode == "auto" and settings.lora_server_url):
        if not settings.lora_server_url:
            raise ConfigError("FORGE_LORA_SERVER=vllm needs FORGE_LORA_SERVER_URL: the vLLM server's URL, e.g. "
                              "http://host:8000/v1 or your Azure ML endpoint's https://….inference.ml.azure.com/v1.")
        return HttpLoRAServer(settings.lora_server_url, api_key=settings.lora_server_api_key, kind="vllm")
    missing = gguf.available(settings.llama_cpp_scripts)
    if missing is None:
        return EmbeddedLoRAServer(settings.home, scripts=settings.llama_cpp_scripts)
    if mode == "embedded":
        raise ConfigError(f"FORGE_LORA_SERVER=embedded, but {missing}")
    return None


def lora_server_note(settings: Settings, server: LoRAServer | None) -> str:
    """What serves LoRA students, for `forge serve` and the demo to say at start."""
    if server is not None:
        return server.describe()
    if settings.lora_server == "transformers":
        return "LoRA server: none (FORGE_LORA_SERVER=transformers): students answer in-process with transformers."
    return (f"LoRA server: none — {gguf.available(settings.llama_cpp_scripts)} Students answer in-process with "
            "transformers, one request at a time (a fallback, not for production traffic).")


def grader_client(settings: Settings, *, timeout_s: float | None = None) -> ChatClient | None:
    """The LLM judge from FORGE_GRADER_MODEL (None when unset), at its own endpoint or the teacher's."""
    if not settings.grader_model:
        return None
    if settings.grader_base_url:
        return _client(settings, settings.grader_base_url, settings.grader_api_key, settings.grader_model, timeout_s,
                       None, 3)
    return _hosted(settings, settings.grader_model, "teacher", timeout_s, None, 3)


def _hosted(settings: Settings, model: str, endpoint: str, timeout_s: float | None, concurrency: int | None,
            max_retries: int, transport: httpx.AsyncBaseTransport | None = None) -> OpenAICompatClient:
    url, key = settings.teacher_base_url, settings.teacher_api_key
    if endpoint == "student" and settings.student_base_url:
        url, key = settings.student_base_url, settings.student_api_key
    if not url:
        raise ConfigError(
            f"No endpoint serves '{model}': set FORGE_TEACHER_BASE_URL (an OpenAI-compatible URL or your Azure "
            "OpenAI endpoint) and, unless Azure OpenAI uses your identity, FORGE_TEACHER_API_KEY."
        )
    return _client(settings, url, key, model, timeout_s, concurrency, max_retries, transport)


def _client(settings: Settings, url: str, key: SecretStr | None, model: str, timeout_s: float | None,
            concurrency: int | None, max_retries: int,
            transport: httpx.AsyncBaseTransport | None = None) -> OpenAICompatClient:
    return OpenAICompatClient(
        url, model=model, api_key=key, timeout_s=timeout_s or settings.inference_timeout_s,
        concurrency=concurrency or settings.inference_concurrency, max_retries=max_retries, transport=transport,
    )
