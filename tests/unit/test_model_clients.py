"""Which client answers for a model, and how it reaches its endpoint (no call is made here)."""

from pathlib import Path

import pytest

from forge.config import load_settings
from forge.domain.errors import ConfigError, InvalidInput
from forge.domain.models import ModelVersion
from forge.providers.inference import InferenceError
from forge.providers.local_model import LocalModelClient, local_path
from forge.providers.clients import client_for, grader_client
from forge.providers.openai_compat import OpenAICompatClient, chat_base_url


def settings(**values):
    return load_settings(**{"teacher_base_url": "http://127.0.0.1:9/v1", "teacher_api_key": "sk-t", **values})


def version(**fields):
    return ModelVersion(tenant="t", domain="coding", base_model="/models/base", **fields)


def test_a_model_name_is_served_by_the_teacher_endpoint_with_a_bearer_key():
    client = client_for(settings(inference_timeout_s=7, inference_concurrency=3), "gpt-4.1")
    assert isinstance(client, OpenAICompatClient)
    assert (client.name, client.model, client.base_url, client.timeout_s) == ("gpt-4.1", "gpt-4.1",
                                                                              "http://127.0.0.1:9/v1", 7)
    assert client.http.headers["authorization"] == "Bearer sk-t" and "api-key" not in client.http.headers


def test_an_azure_openai_endpoint_gets_its_v1_path_and_an_api_key_header():
    client = client_for(settings(teacher_base_url="https://acct.openai.azure.com/"), "gpt-4.1")
    assert client.base_url == "https://acct.openai.azure.com/openai/v1"
    assert client.http.headers["api-key"] == "sk-t" and "authorization" not in client.http.headers
    assert chat_base_url("https://acct.openai.azure.com/openai/v1/") == "https://acct.openai.azure.com/openai/v1"
    assert chat_base_url("http://localhost:11434/v1") == "http://localhost:11434/v1"


def test_a_hosted_student_uses_the_student_endpoint_when_one_is_set():
    ft = version(provider_model_id="ft:gpt-4.1-mini:forge:1")
    assert client_for(settings(), ft).base_url == "http://127.0.0.1:9/v1"
    student = client_for(settings(student_base_url="http://127.0.0.1:10/v1", student_api_key="sk-s"), ft)
    assert (student.base_url, student.model) == ("http://127.0.0.1:10/v1", "ft:gpt-4.1-mini:forge:1")
    assert student.http.headers["authorization"] == "Bearer sk-s"


def test_a_version_with_an_adapter_runs_locally_under_its_version_id():
    local = version(adapter_uri="file:///models/adapters/v%201")
    client = client_for(settings(), local)
    assert isinstance(client, LocalModelClient)
    assert (client.name, client.base_dir, client.adapter_dir) == (local.version_id, Path("/models/base"),
                                                                 Path("/models/adapters/v 1"))
    assert local_path("~/a").is_absolute() and local_path("rel/dir") == Path("rel/dir")
    with pytest.raises(InferenceError, match="not a local folder"):
        local_path("https://acct.blob.core.windows.net/models/a")


def test_a_version_nothing_can_serve_and_a_missing_endpoint_say_what_to_do():
    with pytest.raises(InvalidInput, match="neither an adapter nor a provider model id"):
        client_for(settings(), version())
    with pytest.raises(ConfigError, match="FORGE_TEACHER_BASE_URL"):
        client_for(load_settings(), "gpt-4.1")


def test_the_judge_is_off_unless_a_grader_model_is_set_and_can_have_its_own_endpoint():
    assert grader_client(settings()) is None
    assert grader_client(settings(grader_model="gpt-4.1")).base_url == "http://127.0.0.1:9/v1"
    own = grader_client(settings(grader_model="judge", grader_base_url="http://127.0.0.1:11/v1", grader_api_key="k"))
    assert (own.base_url, own.model, own.http.headers["authorization"]) == ("http://127.0.0.1:11/v1", "judge",
                                                                             "Bearer k")


def test_api_keys_are_secret_in_settings_and_blank_urls_are_unset():
    loaded = settings(grader_model="", student_base_url=" ")
    assert "sk-t" not in repr(loaded) and loaded.grader_model is None and loaded.student_base_url is None
