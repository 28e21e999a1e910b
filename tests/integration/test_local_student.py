"""A local student — a tiny Llama base model and a LoRA adapter built here — answering through `transformers` +
`peft` on CPU: the client itself, the `evaluate` stage registering and scoring it, and `forge eval` on it."""

import asyncio

import pytest

from forge.bootstrap import bootstrap
from forge.domain.models import ModelStage
from forge.providers.inference import InferenceError, answer_text
from forge.providers.local_model import LocalModelClient
from forge.services.candidates import EvaluateRequest, evaluate
from tests.factories import make_job, make_model_version, make_tiny_student

ASK = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "write python code"}],
       "max_tokens": 6}


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return make_tiny_student(tmp_path_factory.mktemp("student"))


def answer(client, body=ASK):
    async def go():
        try:
            return await client.complete(body)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_the_adapter_answers_in_chat_completion_shape_and_changes_what_the_base_says(student):
    base, adapter = student
    tuned = answer(LocalModelClient(base, f"file://{adapter}", name="v1"))
    assert tuned["object"] == "chat.completion" and tuned["model"] == "v1"
    assert tuned["choices"][0]["finish_reason"] in ("length", "stop") and tuned["usage"]["completion_tokens"] <= 6
    assert tuned["usage"]["prompt_tokens"] > 0
    plain = answer(LocalModelClient(base, None))
    assert answer_text(tuned) != answer_text(plain)  # the LoRA weights were applied
    assert answer_text(answer(LocalModelClient(base, adapter, name="v1"))) == answer_text(tuned)  # greedy


def test_a_stream_carries_the_same_answer_in_chunks(student):
    base, adapter = student
    client = LocalModelClient(base, adapter)

    async def both():
        try:
            chunks = [c async for c in client.stream(ASK)]
            return chunks, await client.complete(ASK)
        finally:
            await client.aclose()

    chunks, whole = asyncio.run(both())
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * 3
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == answer_text(whole)
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]


def test_an_adapter_trained_with_added_chat_tokens_loads_and_prompts_with_its_own_template(tmp_path):
    base, adapter = make_tiny_student(tmp_path, chat_tokens=True)
    completion = answer(LocalModelClient(base, adapter), {"messages": [{"role": "user", "content": "write code"}],
                                                           "max_tokens": 4})
    # ChatML from the adapter's tokenizer: <|im_start|> user write code <|im_end|> <|im_start|> assistant.
    assert completion["usage"]["prompt_tokens"] == 7 and completion["usage"]["completion_tokens"] <= 4


def test_a_missing_adapter_or_model_folder_is_an_error_that_names_it(student, tmp_path):
    base, _ = student
    with pytest.raises(InferenceError, match=f"No PEFT adapter at {tmp_path}"):
        answer(LocalModelClient(base, tmp_path))
    with pytest.raises(InferenceError, match="config.json missing"):
        answer(LocalModelClient(tmp_path, None))


def test_the_stage_registers_the_trained_adapter_on_its_base_and_scores_it(student, settings, storage, tenant):
    base, adapter = student
    forge = bootstrap(settings, storage=storage)
    job = storage.jobs.create(make_job(tenant))
    result = evaluate(forge, EvaluateRequest(tenant=tenant, domain="coding", job_id=job.job_id,
                                             result_model=str(adapter), max_tasks=2, max_tokens=16))
    model = storage.models.get(tenant, "coding", result.model_version_id)
    assert (model.adapter_uri, model.base_model, model.stage) == (str(adapter), str(base), ModelStage.STAGING)
    assert result.metrics.errors == 0 and result.metrics.benchmark_tasks == 2
    # A random tiny model writes no working code: it fails on score, and on having too few examples.
    assert result.decision == "fail" and any("below the minimum 65" in r for r in result.reasons)
    assert storage.jobs.get(tenant, job.job_id).eval_metrics["model_version_id"] == model.version_id


def test_forge_eval_runs_a_registered_local_student(student, forge_cli, storage, tenant):
    base, adapter = student
    model = storage.models.create(make_model_version(tenant, "legal", provider_model_id=None, base_model=str(base),
                                                     adapter_uri=str(adapter)))
    code, out, _ = forge_cli("eval", "--model", model.version_id, "--domain", "legal", "--tasks", "2",
                             "--max-tokens", "16")
    assert code == 0 and f"{model.version_id} on legal: 2 benchmark tasks" in out
    assert any(line.split()[0] == "contracts" for line in out.splitlines() if line.strip()) and "Decision: FAIL" in out
