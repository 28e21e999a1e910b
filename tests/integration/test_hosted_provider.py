"""Providers `openai` and `azure-openai`: the real `openai` SDK against the contract fake over HTTP, data in Azurite."""

from __future__ import annotations

import time
from types import SimpleNamespace

import openai
import pytest
from azure.core.exceptions import ResourceNotFoundError
from pydantic import SecretStr

from forge.bootstrap import Forge
from forge.domain.errors import ConfigError
from forge.domain.models import new_id
from forge.providers.azure_deployments import AzureDeployments, deployment_name
from forge.providers.hosted import HostedFineTuning
from forge.providers.registry import training_provider
from forge.providers.training import ProviderRejected, ProviderUnavailable, TrainingState
from tests.factories import chat_record, make_training_request
from tests.fakes.openai_server import API_KEY, AZURE_KEY, running

ACCOUNT = "/subscriptions/sub-1/resourceGroups/rg-forge/providers/Microsoft.CognitiveServices/accounts/oai-forge"


@pytest.fixture
def fake():
    with running(step_s=0.05, steps=6) as server:
        yield server


def provider_for(fake, storage, *, timeout=10.0, max_retries=4, **kwargs) -> HostedFineTuning:
    client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key=API_KEY, timeout=timeout)
    return HostedFineTuning("openai", client, storage, max_retries=max_retries, file_poll_s=0.02, **kwargs)


@pytest.fixture
def dataset(storage, tenant) -> str:
    dataset_id = new_id()
    storage.datasets.write_file(tenant, dataset_id, "train", [chat_record(i) for i in range(12)])
    storage.datasets.write_file(tenant, dataset_id, "valid", [chat_record(i) for i in range(100, 103)])
    return dataset_id


def request_for(tenant, dataset, **hyperparameters):
    return make_training_request(tenant, dataset, "gpt-4.1-mini-2025-04-14", **hyperparameters)


def wait(provider, job_id, until=lambda s: s.state.finished, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = provider.status(job_id)
        if until(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting; last status {status}")


def test_a_hosted_run_uploads_once_starts_once_and_ends_with_a_fine_tuned_model_and_loss_points(fake, storage,
                                                                                                tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset, n_epochs=3)
    prepared = provider.prepare(request)
    assert provider.prepare(request) == prepared and prepared.valid
    assert fake.calls("POST", "/files") == 2
    uploaded = fake.contents[prepared.train]
    assert uploaded == b"".join(storage.datasets.open_file(tenant, dataset, "train"))

    job_id = provider.start(request, prepared)
    assert provider.start(request, prepared) == job_id  # a retried stage finds the same provider job
    assert fake.calls("POST", "/fine_tuning/jobs") == 1
    sent = fake.jobs[job_id]
    assert sent["metadata"] == {"forge_job_id": request.job_id, "forge_tenant": tenant, "forge_domain": "coding"}
    assert sent["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}}
    assert (sent["suffix"], sent["seed"], sent["validation_file"]) == ("forge-coding-1", 7, prepared.valid)

    status = wait(provider, job_id)
    assert status.state == TrainingState.SUCCEEDED and status.error is None
    assert status.result_model.startswith("ft:gpt-4.1-mini-2025-04-14:") and status.trained_tokens > 0

    events = provider.events(job_id)
    losses = [e.data["loss"] for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in events if e.type == "metrics"] == [1, 2, 3, 4, 5, 6]
    assert losses == sorted(losses, reverse=True) and any("valid_loss" in e.data for e in events)
    checkpoints = [e for e in events if e.type == "checkpoint"]
    assert [c.data["step"] for c in checkpoints] == [2, 4, 6] and checkpoints[0].data["checkpoint"].startswith("ft:")
    assert [e.message for e in events if e.type == "message"][-1] == "The job has successfully completed"
    assert provider.events(job_id, after=events[-1].id) == []
    assert [e.id for e in provider.events(job_id, after=events[4].id)] == [e.id for e in events[5:]]


def test_the_registry_builds_azure_openai_on_the_azure_client_and_deploys_the_student(fake, settings, storage,
                                                                                     tenant, dataset):
    forge = Forge(settings.model_copy(update={
        "azure_openai_endpoint": fake.url, "azure_openai_api_key": SecretStr(AZURE_KEY),
        "azure_openai_deploy": True, "azure_openai_resource_id": ACCOUNT}), storage, {})
    provider = training_provider(forge, "azure-openai")
    assert provider.name == "azure-openai"
    deployments = FakeDeployments()
    provider.deployments._operations = deployments  # the ARM control plane is the one boundary faked in-process
    provider.file_poll_s = 0.02
    request = request_for(tenant, dataset)
    job_id = provider.start(request, provider.prepare(request))
    assert fake.calls("POST", "/files") == 2 and fake.calls("POST", "/fine_tuning/jobs") == 1

    deploying = wait(provider, job_id, until=lambda s: s.progress == 1.0)
    assert deploying.state == TrainingState.RUNNING and deploying.result_model is None
    name = deployment_name(job_id)
    rg, account, spec = deployments.created[name]
    assert (rg, account) == ("rg-forge", "oai-forge")
    assert (spec.properties.model.format, spec.properties.model.version) == ("OpenAI", "1")
    assert spec.properties.model.name == fake.jobs[job_id]["fine_tuned_model"] and spec.sku.name == "Standard"
    assert provider.status(job_id).state == TrainingState.RUNNING and len(deployments.created) == 1

    deployments.states[name] = "Succeeded"
    done = provider.status(job_id)
    assert (done.state, done.result_model) == (TrainingState.SUCCEEDED, name)


def test_a_failed_deployment_fails_the_job_saying_what_was_trained_and_what_to_do(fake, storage, tenant, dataset):
    deployments = FakeDeployments()
    provider = provider_for(fake, storage, deployments=AzureDeployments(ACCOUNT, operations=deployments))
    request = request_for(tenant, dataset)
    job_id = provider.start(request, provider.prepare(request))
    wait(provider, job_id, until=lambda s: s.progress == 1.0)
    deployments.states[deployment_name(job_id)] = "Failed"
    status = provider.status(job_id)
    assert status.state == TrainingState.FAILED
    assert fake.jobs[job_id]["fine_tuned_model"] in status.error and "deploy it by hand" in status.error


def test_a_429_with_retry_after_and_a_500_are_retried_and_the_job_is_created_once(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset)
    prepared = provider.prepare(request)
    fake.fail("POST", "/fine_tuning/jobs", 429, retry_after="0.2", message="Rate limit reached for requests")
    fake.fail("GET", "/fine_tuning/jobs", 500, message="The server had an error")  # the look before the retry
    job_id = provider.start(request, prepared)
    assert fake.calls("POST", "/fine_tuning/jobs") == 2 and len(fake.jobs) == 1
    assert provider.status(job_id).provider_job_id == job_id


def test_a_create_whose_answer_was_lost_is_found_instead_of_repeated(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset)
    fake.fail("POST", "/files", 502, after_commit=True)
    prepared = provider.prepare(request)
    assert len(fake.files) == 2  # the lost upload was found by its name, not sent again
    fake.fail("POST", "/fine_tuning/jobs", 500, after_commit=True)
    job_id = provider.start(request, prepared)
    assert list(fake.jobs) == [job_id]


def test_a_service_that_refuses_the_metadata_filter_is_searched_without_it(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset)
    prepared = provider.prepare(request)
    job_id = provider.start(request, prepared)
    fake.fail("GET", "/fine_tuning/jobs", 400, message="Unknown parameter: metadata")
    assert provider.start(request, prepared) == job_id
    assert fake.calls("GET", "/fine_tuning/jobs") == 3 and fake.calls("POST", "/fine_tuning/jobs") == 1


def test_a_timeout_is_retried(fake, storage, tenant, dataset):
    # The timeout leaves a loaded machine (CI) room to answer the retry in time: 0.3 s once timed the retry out too.
    provider = provider_for(fake, storage, timeout=1.5)
    request = request_for(tenant, dataset)
    job_id = provider.start(request, provider.prepare(request))
    fake.fail("GET", f"/fine_tuning/jobs/{job_id}", 200, delay_s=3.5)
    assert provider.status(job_id).provider_job_id == job_id
    assert fake.calls("GET", f"/fine_tuning/jobs/{job_id}") == 2


def test_a_provider_that_stays_down_is_unavailable_not_a_rejection(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage, max_retries=1)
    fake.fail("GET", "/files", 503, times=10, message="Service Unavailable")
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        provider.prepare(request_for(tenant, dataset))


def test_a_400_is_rejected_with_the_providers_own_message_and_not_retried(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset)
    prepared = provider.prepare(request)
    fake.fail("POST", "/fine_tuning/jobs", 400, message="invalid training_file: file has an unsupported format")
    with pytest.raises(ProviderRejected, match="invalid training_file: file has an unsupported format"):
        provider.start(request, prepared)
    assert fake.calls("POST", "/fine_tuning/jobs") == 1 and not fake.jobs


def test_a_training_file_the_provider_finds_invalid_fails_the_job_with_its_reason(fake, storage, tenant):
    dataset = new_id()
    no_answer = {"messages": [{"role": "user", "content": "hi"}]}
    storage.datasets.write_file(tenant, dataset, "train", [no_answer] * 12)
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset)
    prepared = provider.prepare(request)
    assert prepared.valid is None  # no valid.jsonl: none is sent
    status = wait(provider, provider.start(request, prepared))
    assert status.state == TrainingState.FAILED
    assert "invalid training file" in status.error and "Line 1" in status.error and status.result_model is None


def test_cancel_stops_a_run_in_progress_and_leaves_a_finished_one_alone(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset)
    job_id = provider.start(request, provider.prepare(request))
    provider.cancel(job_id)
    assert provider.status(job_id).state == TrainingState.CANCELLED
    provider.cancel(job_id)
    assert fake.calls("POST", f"/fine_tuning/jobs/{job_id}/cancel") == 1


def test_unknown_hyperparameters_are_refused_before_anything_is_created(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset, lora_r=8)
    prepared = provider.prepare(request)
    with pytest.raises(ProviderRejected, match="remove lora_r"):
        provider.start(request, prepared)
    assert fake.calls("POST", "/fine_tuning/jobs") == 0


def test_a_webhook_lookup_reads_the_forge_job_from_the_provider_jobs_metadata(fake, storage, tenant, dataset):
    provider = provider_for(fake, storage)
    request = request_for(tenant, dataset)
    job_id = provider.start(request, provider.prepare(request))
    assert provider.forge_job(job_id) == (tenant, request.job_id)


@pytest.mark.parametrize("provider, missing", [("azure-openai", "FORGE_AZURE_OPENAI_ENDPOINT"),
                                               ("openai", "FORGE_OPENAI_API_KEY")])
def test_a_hosted_provider_without_its_endpoint_or_key_says_which_setting_to_set(settings, storage, provider, missing):
    with pytest.raises(ConfigError, match=missing):
        training_provider(Forge(settings, storage, {}), provider)


def test_deploying_without_the_accounts_resource_id_says_what_to_set(settings, storage):
    forge = Forge(settings.model_copy(update={"azure_openai_endpoint": "https://x.openai.azure.com",
                                              "azure_openai_api_key": SecretStr("k"), "azure_openai_deploy": True}),
                  storage, {})
    with pytest.raises(ConfigError, match="FORGE_AZURE_OPENAI_RESOURCE_ID"):
        training_provider(forge, "azure-openai")


class FakeDeployments:
    """`CognitiveServicesManagementClient.deployments` as Forge uses it: get and begin_create_or_update."""

    def __init__(self):
        self.created: dict[str, tuple[str, str, object]] = {}
        self.states: dict[str, str] = {}

    def get(self, resource_group, account, name):
        if name not in self.created:
            raise ResourceNotFoundError(f"deployment {name} not found")
        return SimpleNamespace(name=name, properties=SimpleNamespace(provisioning_state=self.states[name]))

    def begin_create_or_update(self, resource_group, account, name, deployment):
        deployment.serialize()  # the SDK's own serialisation, which a real call runs first
        self.created[name] = (resource_group, account, deployment)
        self.states[name] = "Creating"
