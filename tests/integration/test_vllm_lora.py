"""Students on a vLLM LoRA server, against a contract fake of vLLM over real HTTP, on Azurite: an `azureml` job's
adapter (in Forge's Blob storage) is registered, loaded on the endpoint by name, evaluated and promoted; the router
answers through it; promotion, rollback and refusals follow the route."""

from __future__ import annotations

import asyncio
import json

import pytest
from azure.core.exceptions import ResourceNotFoundError

from forge.bootstrap import bootstrap
from forge.domain.models import Dataset, JobStatus, ModelStage
from forge.evaluation.benchmarks import load_benchmark
from forge.providers.azureml import job_name
from forge.providers.lora_server import AdapterRefused, HttpLoRAServer, LoRAServerUnavailable, adapter_name
from forge.services import adapters
from forge.services import models as registry
from forge.services.candidates import EvaluateRequest, evaluate
from forge.services.promotion import PromoteRequest, promote
from forge.serving.router import Router
from tests.factories import chat_record, make_job, make_model_version, make_tiny_student
from tests.fakes import vllm_server
from tests.fakes.vllm_server import API_KEY


HELD_OUT = [chat_record(i) for i in range(6)]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return make_tiny_student(tmp_path_factory.mktemp("student"))[1]


@pytest.fixture
def blob_reader(storage):
    """The endpoint reads an adapter from Forge's `models` container with its own identity (the image's fetcher)."""
    models = storage.account.blobs.get_container_client("models")

    def read(path: str) -> str | None:
        prefix = f"{models.url.rstrip('/')}/"
        if not path.startswith(prefix):
            return None
        try:
            return models.download_blob(f"{path[len(prefix):]}/adapter_config.json").readall().decode()
        except ResourceNotFoundError:
            return None

    return read


@pytest.fixture
def endpoint(blob_reader):
    answers = {t.prompt: t.gold_answer for t in load_benchmark("coding")}
    answers |= {r["messages"][1]["content"]: r["messages"][2]["content"] for r in HELD_OUT}
    with vllm_server.running(read=blob_reader, answers=answers) as fake:
        yield fake


@pytest.fixture
def forge(settings, storage, endpoint):
    quick = settings.model_copy(update={"lora_drain_s": 0.2})  # a replaced student unloads 0.2 s after it stops
    return bootstrap(quick, storage=storage, lora_server=HttpLoRAServer(f"{endpoint.url}/v1", api_key=API_KEY))


def upload_adapter(storage, tenant: str, job_id: str, adapter, *, rank: int | None = None) -> str:
    """The adapter where the azureml provider's trainer mirrors it; returns the provider's `result_model`."""
    models = storage.account.blobs.get_container_client("models")
    prefix = f"{tenant}/{job_name(job_id)}/adapter"
    for file in adapter.iterdir():
        data = file.read_bytes()
        if rank is not None and file.name == "adapter_config.json":
            data = data.replace(b'"r": 4', f'"r": {rank}'.encode())
        models.upload_blob(f"{prefix}/{file.name}", data, overwrite=True)
    return f"{models.url.rstrip('/')}/{prefix}"


def adapter_version(tenant: str, **fields):
    """A LoRA student: an adapter on its base model, no hosted id."""
    return make_model_version(tenant, provider_model_id=None, base_model="Qwen/Qwen2.5-0.5B-Instruct", **fields)


def azureml_job(forge, tenant):
    dataset = forge.storage.datasets.create(Dataset(tenant=tenant, domain="coding"))
    forge.storage.datasets.write_file(tenant, dataset.dataset_id, "valid", HELD_OUT)
    return forge.storage.jobs.create(make_job(tenant, provider="azureml", status=JobStatus.EVALUATING,
                                              dataset_id=dataset.dataset_id))


def test_an_azureml_students_adapter_is_registered_loaded_on_the_endpoint_evaluated_and_promoted(
        forge, endpoint, tenant, student):
    job = azureml_job(forge, tenant)
    result_model = upload_adapter(forge.storage, tenant, job.job_id, student)

    result = evaluate(forge, EvaluateRequest(tenant=tenant, domain="coding", job_id=job.job_id,
                                             result_model=result_model))
    model = forge.storage.models.get(tenant, "coding", result.model_version_id)
    assert model.adapter_uri == result_model  # registered from what training produced
    name = adapter_name(model)
    assert endpoint.loras == {name: result_model}  # loaded by name, from Blob, before the first call
    asked = [call for call in endpoint.calls if call[0] == "/v1/chat/completions"]
    assert asked and {model_name for _, model_name, _ in asked} == {name}  # evaluated through the adapter
    assert (result.decision, result.metrics.score) == ("pass", 100.0), result.reasons

    done = promote(forge, PromoteRequest(tenant=tenant, domain="coding", job_id=job.job_id,
                                         model_version_id=model.version_id, decision="pass"))
    assert done.outcome == "production"
    assert forge.storage.routes.get(tenant, "coding").production_model == model.version_id
    loads = [call for call in endpoint.calls if call[0] == "/v1/load_lora_adapter"]
    assert len(loads) == 1  # promoting found it loaded: loading is idempotent


def test_the_router_answers_a_promoted_student_through_the_endpoint_plain_and_streaming(forge, endpoint, tenant,
                                                                                     student):
    job = azureml_job(forge, tenant)
    model = forge.storage.models.create(adapter_version(
        tenant, job_id=job.job_id, adapter_uri=upload_adapter(forge.storage, tenant, job.job_id, student)))
    registry.promote_model(forge, tenant, model.version_id, to=ModelStage.PRODUCTION)
    task = load_benchmark("coding")[0]
    router = Router(forge.storage, forge.settings, ["coding"], lora=forge.lora_server())
    body = {"model": "forge:coding", "messages": [{"role": "user", "content": task.prompt}]}

    async def ask():
        try:
            answer = await router.complete(tenant, body, {})
            await answer.capture  # as the API does after the response: the call is recorded
            stream = await router.stream(tenant, {**body, "stream": True}, {})
            streamed = b"".join([chunk async for chunk in stream.chunks]).decode()
            return answer, stream.headers, streamed
        finally:
            await router.aclose()

    answer, headers, streamed = asyncio.run(ask())
    assert answer.body["choices"][0]["message"]["content"] == task.gold_answer
    assert answer.headers["x-forge-model"] == model.version_id and answer.headers["x-forge-served-by"] == "vllm"
    assert headers["x-forge-served-by"] == "vllm" and streamed.endswith("data: [DONE]\n\n")
    deltas = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: {")]
    assert "".join(d["choices"][0]["delta"].get("content", "") for d in deltas if d.get("choices")) == task.gold_answer


def test_a_refused_load_fails_the_promotion_with_the_servers_message_and_leaves_the_route(forge, endpoint, tenant,
                                                                                        student):
    job = azureml_job(forge, tenant)
    model = forge.storage.models.create(adapter_version(
        tenant, job_id=job.job_id, adapter_uri=upload_adapter(forge.storage, tenant, job.job_id, student, rank=64)))
    before = forge.storage.routes.get(tenant, "coding")
    with pytest.raises(AdapterRefused, match="LoRA rank 64 is greater than max_lora_rank 16"):
        promote(forge, PromoteRequest(tenant=tenant, domain="coding", job_id=job.job_id,
                                      model_version_id=model.version_id, decision="pass"))
    after = forge.storage.routes.get(tenant, "coding")
    assert (after.production_model, after.canary_model, after.etag) == (before.production_model, None, before.etag)
    assert endpoint.loras == {}


def test_rollback_loads_the_previous_student_routes_back_then_unloads_the_retired_one_after_the_drain(
        forge, endpoint, tenant, student):
    old, new = (forge.storage.models.create(adapter_version(
        tenant, adapter_uri=upload_adapter(forge.storage, tenant, f"job{i}", student))) for i in range(2))
    registry.promote_model(forge, tenant, old.version_id, to=ModelStage.PRODUCTION)
    registry.promote_model(forge, tenant, new.version_id, to=ModelStage.PRODUCTION)
    adapters.wait_for_unloads()
    assert set(endpoint.loras) == {adapter_name(new)}  # the replaced one was unloaded once it stopped serving

    change = registry.rollback_model(forge.storage, tenant, new.version_id, lora=forge.lora_server(), drain_s=0.3)
    assert change.route.production_model == old.version_id
    assert set(endpoint.loras) == {adapter_name(old), adapter_name(new)}  # the old one loaded before the route moved
    assert any("drain" in note for note in change.notes)
    adapters.wait_for_unloads()
    assert set(endpoint.loras) == {adapter_name(old)}


def test_a_student_promoted_again_during_the_drain_stays_loaded(forge, endpoint, tenant, student):
    model = forge.storage.models.create(adapter_version(
        tenant, adapter_uri=upload_adapter(forge.storage, tenant, "job", student)))
    registry.promote_model(forge, tenant, model.version_id, to=ModelStage.PRODUCTION)
    registry.rollback_model(forge.storage, tenant, model.version_id, lora=forge.lora_server(), drain_s=0.5)
    registry.promote_model(forge, tenant, model.version_id, to=ModelStage.PRODUCTION)
    adapters.wait_for_unloads()
    assert set(endpoint.loras) == {adapter_name(model)}


def test_loading_is_idempotent_and_a_lost_adapter_is_loaded_again_on_the_next_call(forge, endpoint, tenant, student):
    model = forge.storage.models.create(adapter_version(
        tenant, adapter_uri=upload_adapter(forge.storage, tenant, "job", student)))
    lora = forge.lora_server()
    assert lora.ensure_loaded(model) == lora.ensure_loaded(model)
    assert sum(call[0] == "/v1/load_lora_adapter" for call in endpoint.calls) == 1
    endpoint.loras.clear()  # the server restarted: its adapters are gone

    async def ask():
        client = lora.client(model, timeout_s=10, concurrency=2, max_retries=0)
        try:
            return await client.complete({"messages": [{"role": "user", "content": "hi"}]})
        finally:
            await client.aclose()

    assert asyncio.run(ask())["model"] == adapter_name(model)
    assert adapter_name(model) in endpoint.loras


def test_vllms_errors_come_back_as_clear_forge_errors(endpoint, tenant, storage):
    lora = HttpLoRAServer(endpoint.url, api_key=API_KEY)
    missing = adapter_version(tenant, adapter_uri=f"{storage.account.blobs.url}/models/{tenant}/nothing/adapter")
    with pytest.raises(AdapterRefused, match="No adapter found for"):
        lora.ensure_loaded(missing)
    assert lora.unload(missing) is False  # not loaded: nothing to do
    with pytest.raises(LoRAServerUnavailable, match="401 .*Unauthorized.*FORGE_LORA_SERVER_API_KEY"):
        HttpLoRAServer(endpoint.url, api_key="sk-wrong").ensure_loaded(missing)
    with pytest.raises(LoRAServerUnavailable, match="unreachable"):
        HttpLoRAServer("http://127.0.0.1:9/v1").loaded()
    assert lora.loaded() == {}  # the base model is listed, but it is no adapter


def test_a_student_that_failed_its_evaluation_is_unloaded_when_the_promote_stage_archives_it(forge, endpoint, tenant,
                                                                                              student):
    job = azureml_job(forge, tenant)
    model = forge.storage.models.create(adapter_version(
        tenant, job_id=job.job_id, adapter_uri=upload_adapter(forge.storage, tenant, job.job_id, student)))
    forge.lora_server().ensure_loaded(model)  # as evaluation left it
    done = promote(forge, PromoteRequest(tenant=tenant, domain="coding", job_id=job.job_id,
                                         model_version_id=model.version_id, decision="fail", reasons=["worse"]))
    assert done.outcome == "archived" and endpoint.loras == {}
