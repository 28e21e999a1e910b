"""Which ChatClient answers for a model: a hosted name, a hosted student (`ft:…`) or a local PEFT adapter."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from forge.config import Settings
from forge.domain.errors import ConfigError, InvalidInput
from forge.domain.models import ModelVersion
from forge.providers.inference import ChatClient
from forge.providers.local_model import LocalModelClient
from forge.providers.openai_compat import OpenAICompatClient


def client_for(settings: Settings, model: ModelVersion | str, *, timeout_s: float | None = None,
               concurrency: int | None = None, max_retries: int = 3,
               transport: httpx.AsyncBaseTransport | None = None) -> ChatClient:
    """A new client for `model` (callers keep and reuse it, and close it with `aclose`).

    A string is a model hosted at the teacher's endpoint; a ModelVersion with an `adapter_uri` runs locally
    (its `base_model` is a local folder); one with a `provider_model_id` is served at the student endpoint.
    """
    if isinstance(model, str):
        return _hosted(settings, model, "teacher", timeout_s, concurrency, max_retries, transport)
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
