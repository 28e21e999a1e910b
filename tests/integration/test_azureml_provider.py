"""Provider `azureml` at the MLClient boundary: a fake MLClient checks the job spec; the trainer runs the job's
own command line here against Azurite, so what Forge reads back is what a real run writes."""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from forge.config import load_settings
from forge.domain.errors import ConfigError
from forge.providers.azureml import IMAGE_CONFIG, AzureMLProvider
from forge.providers.training import ProviderRejected, ProviderUnavailable, TrainingState
from forge.storage.azurite import ACCOUNT, ACCOUNT_KEY
from tests.factories import make_training_request, write_chat_dataset

TRAINER_CONFIGS = Path(__file__).resolve().parents[2] / "gpu-trainer" / "configs"
IMAGE = "forgeacr.azurecr.io/forge-trainer:1"


class FakeJobs:
    """`MLClient.jobs` as Forge uses it: get, create_or_update, begin_cancel."""

    def __init__(self):
        self.created, self.status, self.cancelled, self.fail_create = {}, {}, [], None

    def get(self, name):
        if name not in self.created:
            raise ResourceNotFoundError(f"job {name} not found")
        return SimpleNamespace(name=name, status=self.status.get(name, "Queued"),
                               studio_url=f"https://ml.azure.com/runs/{name}", tags=self.created[name].tags)

    def create_or_update(self, job):
        if self.fail_create:
            raise self.fail_create
        job._to_rest_object()  # the SDK's own serialisation, which a real submit runs first
        self.created[job.name] = job
        return job

    def begin_cancel(self, name):
        self.cancelled.append(name)
        self.status[name] = "CancelRequested"


@pytest.fixture
def ml():
    return SimpleNamespace(jobs=FakeJobs())


@pytest.fixture
def provider(storage, ml):
    return AzureMLProvider(storage, compute="gpu-cluster", image=IMAGE, ml_client=ml)


@pytest.fixture
def dataset(storage, tenant) -> str:
    return write_chat_dataset(storage, tenant, train=24, valid=6)


def sas(container: str) -> str:
    return generate_container_sas(ACCOUNT, container, account_key=ACCOUNT_KEY,
                                  permission=ContainerSasPermissions(read=True, write=True, create=True),
                                  expiry=datetime.now(timezone.utc) + timedelta(hours=1))


def test_the_job_spec_runs_the_trainer_image_on_the_cluster_with_blob_inputs_and_a_registered_output(
        provider, ml, storage, tenant, dataset):
    request = make_training_request(tenant, dataset, "Qwen/Qwen2.5-0.5B-Instruct", n_epochs=2,
                                    learning_rate_multiplier=0.5, lora_r=8)
    prepared = provider.prepare(request)
    blobs = storage.datasets.blobs.url
    assert prepared.train == f"{blobs}/{tenant}/{dataset}/train.jsonl"
    assert prepared.valid == f"{blobs}/{tenant}/{dataset}/valid.jsonl"

    job_id = provider.start(request, prepared)
    assert provider.start(request, prepared) == job_id and len(ml.jobs.created) == 1  # idempotent on the job id
    job = ml.jobs.created[job_id.split("/", 1)[1]]
    assert job_id == f"{tenant}/forge-{request.job_id.lower()}"
    assert job.compute == "gpu-cluster" and job.environment.image == IMAGE
    assert type(job.identity).__name__ == "ManagedIdentityConfiguration"
    assert {k: (v.type, v.path, v.mode) for k, v in job.inputs.items()} == {
        "train": ("uri_file", prepared.train, "download"), "valid": ("uri_file", prepared.valid, "download")}
    output = job.outputs["model"]
    assert (output.type, output.mode, output.name) == ("custom_model", "rw_mount", f"forge-{tenant}-coding")
    args = shlex.split(job.command)
    assert args[:6] == ["forge-trainer", "train", "--config", IMAGE_CONFIG, "--resume",
                        "model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct"]
    assert {"train.epochs=2", "train.lr=0.0001", "lora.r=8", "train.seed=7", "data.train=${{inputs.train}}",
            "data.valid=${{inputs.valid}}", "output.dir=${{outputs.model}}",
            f"output.upload_url={storage.account.blobs.url.rstrip('/')}/models/{tenant}/{job.name}"} <= set(args)
    assert job.tags["forge_job_id"] == request.job_id and job.tags["forge_dataset"] == dataset


def test_a_completed_job_yields_the_adapter_forge_can_read_and_its_loss_points(provider, ml, storage, tenant,
                                                                              dataset, tmp_path):
    from forge_trainer import tiny
    from forge_trainer.cli import main as trainer

    base = tiny.build(tmp_path / "tiny")
    request = make_training_request(tenant, dataset, "Qwen/Qwen2.5-0.5B-Instruct", n_epochs=1,
                                    threads=1, max_seq_length=256)
    job_id = provider.start(request, provider.prepare(request))
    name = job_id.split("/", 1)[1]
    assert provider.status(job_id).state == TrainingState.QUEUED and provider.events(job_id) == []

    # Run the job's own command line as the container would, with what Azure ML substitutes into it.
    job = ml.jobs.created[name]
    inputs = {k: f"{v.path}?{sas('datasets')}" for k, v in job.inputs.items()}
    args = []
    for arg in shlex.split(job.command)[1:]:
        arg = arg.replace(IMAGE_CONFIG, str(TRAINER_CONFIGS / Path(IMAGE_CONFIG).name))
        arg = arg.replace("${{inputs.train}}", inputs["train"]).replace("${{inputs.valid}}", inputs["valid"])
        arg = arg.replace("${{outputs.model}}", str(tmp_path / "output"))
        arg = arg.replace("Qwen/Qwen2.5-0.5B-Instruct", str(base))
        args.append(arg + f"?{sas('models')}" if arg.startswith("output.upload_url=") else arg)
    ml.jobs.status[name] = "Running"
    assert trainer(args) == 0
    ml.jobs.status[name] = "Completed"

    status = provider.status(job_id)
    assert status.state == TrainingState.SUCCEEDED and status.progress == 1.0 and status.trained_tokens > 0
    assert status.result_model == f"{storage.account.blobs.url.rstrip('/')}/models/{tenant}/{name}/adapter"
    models = storage.account.blobs.get_container_client("models")
    assert models.get_blob_client(f"{tenant}/{name}/adapter/adapter_model.safetensors").exists()
    events = provider.events(job_id)
    local = (tmp_path / "output" / "metrics.jsonl").read_text().splitlines()
    assert [e.data for e in events] == [json.loads(line) for line in local]
    assert provider.events(job_id, after=events[-1].id) == []


def test_status_maps_every_azure_ml_state_and_failures_carry_the_trainers_reason(provider, ml, storage, tenant,
                                                                                dataset):
    request = make_training_request(tenant, dataset, "Qwen/Qwen2.5-0.5B-Instruct")
    job_id = provider.start(request, provider.prepare(request))
    name = job_id.split("/", 1)[1]
    expected = {"NotStarted": "queued", "Provisioning": "queued", "Preparing": "queued", "Queued": "queued",
                "Running": "running", "Finalizing": "running", "CancelRequested": "running", "Canceled": "cancelled",
                "Failed": "failed"}
    for aml, forge_state in expected.items():
        ml.jobs.status[name] = aml
        assert provider.status(job_id).state.value == forge_state, aml
    assert "studio" in provider.status(job_id).error or "ml.azure.com" in provider.status(job_id).error
    models = storage.account.blobs.get_container_client("models")
    models.upload_blob(f"{tenant}/{name}/status.json", json.dumps({"state": "failed", "error": "train line 3: bad"}))
    assert provider.status(job_id).error == "train line 3: bad"
    ml.jobs.status[name] = "Completed"  # completed, but the trainer's own status says it failed
    status = provider.status(job_id)
    assert status.state == TrainingState.FAILED and "Storage Blob Data Contributor" in status.error


def test_cancel_asks_azure_ml_once_and_leaves_a_finished_job_alone(provider, ml, tenant, dataset):
    request = make_training_request(tenant, dataset, "Qwen/Qwen2.5-0.5B-Instruct")
    job_id = provider.start(request, provider.prepare(request))
    name = job_id.split("/", 1)[1]
    ml.jobs.status[name] = "Running"
    provider.cancel(job_id)
    assert ml.jobs.cancelled == [name]
    ml.jobs.status[name] = "Canceled"
    provider.cancel(job_id)
    assert ml.jobs.cancelled == [name]


def test_refusals_and_outages_of_azure_ml_become_named_provider_errors(provider, ml, tenant, dataset):
    request = make_training_request(tenant, dataset, "Qwen/Qwen2.5-0.5B-Instruct")
    prepared = provider.prepare(request)
    refused = HttpResponseError("quota exceeded")
    refused.status_code = 400
    ml.jobs.fail_create = refused
    with pytest.raises(ProviderRejected, match="quota exceeded"):
        provider.start(request, prepared)
    busy = HttpResponseError("try later")
    busy.status_code = 503
    ml.jobs.fail_create = busy
    with pytest.raises(ProviderUnavailable):
        provider.start(request, prepared)
    with pytest.raises(ProviderRejected, match="open weights"):
        provider.start(make_training_request(tenant, "d", "gpt-4.1-mini"), prepared)


def test_without_its_workspace_settings_the_provider_names_the_variables_to_set(storage, tmp_path):
    forge = SimpleNamespace(settings=load_settings(home=tmp_path, azureml_workspace="ws"), storage=storage)
    with pytest.raises(ConfigError, match="FORGE_AZUREML_SUBSCRIPTION_ID.*FORGE_TRAINER_IMAGE"):
        AzureMLProvider.from_forge(forge)
