"""Provider `azureml`: forge-trainer as an Azure ML command job on a GPU cluster, data and results in Blob.

The job reads train/valid.jsonl straight from Forge's `datasets` container (https URIs, read with the cluster's
managed identity), writes its run folder to a `custom_model` output that Azure ML registers as a model when the
job completes, and mirrors status.json, metrics.jsonl and the adapter to `models/{tenant}/{job name}/` in Forge's
storage, where `status` and `events` read them. The provider job id is `{tenant}/{Azure ML job name}`.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError, ServiceResponseError

from forge.domain.errors import ConfigError
from forge.providers.lora import metrics_events, trainer_overrides
from forge.providers.training import (DATASET_SHA_TAG, DATASET_TAG, DOMAIN_TAG, JOB_TAG, TENANT_TAG, PreparedData,
                                      ProviderEvent, ProviderRejected, ProviderUnavailable, TrainingRequest,
                                      TrainingState, TrainingStatus)

IMAGE_CONFIG = "/app/configs/qwen2.5-0.5b_lora_cuda.yaml"  # in the image; hyperparameters override its keys
STATES = {
    "NotStarted": TrainingState.QUEUED, "Starting": TrainingState.QUEUED, "Provisioning": TrainingState.QUEUED,
    "Preparing": TrainingState.QUEUED, "Queued": TrainingState.QUEUED, "Paused": TrainingState.QUEUED,
    "Running": TrainingState.RUNNING, "Finalizing": TrainingState.RUNNING, "NotResponding": TrainingState.RUNNING,
    "CancelRequested": TrainingState.RUNNING, "Completed": TrainingState.SUCCEEDED, "Failed": TrainingState.FAILED,
    "Canceled": TrainingState.CANCELLED,
}
REQUIRED = ("azureml_subscription_id", "azureml_resource_group", "azureml_workspace", "azureml_compute",
            "trainer_image")


class AzureMLProvider:
    name = "azureml"

    def __init__(self, storage: Any, *, compute: str, image: str, ml_client: Any = None,
                 client_factory: Any = None):
        self.storage = storage
        self.compute = compute
        self.image = image
        self._client = ml_client
        self._client_factory = client_factory

    @classmethod
    def from_forge(cls, forge: Any) -> "AzureMLProvider":
        s = forge.settings
        missing = [f"FORGE_{name.upper()}" for name in REQUIRED if not getattr(s, name)]
        if missing:
            raise ConfigError(f"Provider azureml needs {', '.join(missing)} (azd sets them; see docs/training.md).")

        def client() -> Any:
            try:
                from azure.ai.ml import MLClient
            except ImportError:
                raise ConfigError("Provider azureml needs azure-ai-ml: pip install 'forge[azureml]'.") from None
            from azure.identity import DefaultAzureCredential

            return MLClient(DefaultAzureCredential(), s.azureml_subscription_id, s.azureml_resource_group,
                            s.azureml_workspace)

        return cls(forge.storage, compute=s.azureml_compute, image=s.trainer_image, client_factory=client)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # --- the protocol --------------------------------------------------------------------------------

    def prepare(self, request: TrainingRequest) -> PreparedData:
        """The dataset is in Blob already: its https URIs, read by the cluster's identity (no copy, no SAS)."""
        blobs = self.storage.datasets.blobs
        urls = {}
        for name in ("train", "valid"):
            blob = blobs.get_blob_client(f"{request.tenant}/{request.dataset_id}/{name}.jsonl")
            if blob.exists():
                urls[name] = blob.url
        if "train" not in urls:
            raise ProviderRejected(f"Dataset {request.dataset_id} has no train.jsonl; curate it again.")
        return PreparedData(train=urls["train"], valid=urls.get("valid"))

    def start(self, request: TrainingRequest, data: PreparedData) -> str:
        """Submit the command job, named after the Forge job, so a second call finds the first job."""
        name = job_name(request.job_id)
        provider_job_id = f"{request.tenant}/{name}"
        try:
            self.client.jobs.get(name)
            return provider_job_id
        except ResourceNotFoundError:
            pass
        job = self.job_spec(request, data, name)
        try:
            self.client.jobs.create_or_update(job)
        except Exception as exc:  # the SDK raises HttpResponseError or its own validation errors
            raise _translate(exc, f"Azure ML refused training job {name}") from None
        return provider_job_id

    def job_spec(self, request: TrainingRequest, data: PreparedData, name: str) -> Any:
        from azure.ai.ml import Input, Output, command
        from azure.ai.ml.entities import Environment, ManagedIdentityConfiguration

        mirror = self._mirror_url(request.tenant, name)
        arguments = trainer_overrides(request) + [
            "data.train=${{inputs.train}}",
            "data.valid=${{inputs.valid}}" if data.valid else "data.valid=null",
            "output.dir=${{outputs.model}}", f"output.upload_url={mirror}"]
        inputs = {"train": Input(type="uri_file", path=data.train, mode="download")}
        if data.valid:
            inputs["valid"] = Input(type="uri_file", path=data.valid, mode="download")
        return command(
            name=name,
            display_name=f"forge {request.domain} {request.suffix}",
            experiment_name=f"forge-{request.tenant}-{request.domain}",
            # --resume: a preempted (low-priority) node restarts the job on the same output, from its checkpoint.
            command=" ".join(["forge-trainer", "train", "--config", IMAGE_CONFIG, "--resume",
                              *(shlex.quote(a) if "${{" not in a else a for a in arguments)]),
            environment=Environment(image=self.image),
            compute=self.compute,
            inputs=inputs,
            # Registered by Azure ML as model `forge-{tenant}-{domain}` (next version) when the job completes.
            outputs={"model": Output(type="custom_model", mode="rw_mount", name=f"forge-{request.tenant}-{request.domain}")},
            identity=ManagedIdentityConfiguration(),
            environment_variables={"HF_HUB_DISABLE_TELEMETRY": "1"},
            tags={JOB_TAG: request.job_id, TENANT_TAG: request.tenant, DOMAIN_TAG: request.domain,
                  DATASET_TAG: request.dataset_id, DATASET_SHA_TAG: request.dataset_sha256},
        )

    def status(self, provider_job_id: str) -> TrainingStatus:
        tenant, name = _split(provider_job_id)
        try:
            job = self.client.jobs.get(name)
        except ResourceNotFoundError:
            raise ProviderRejected(f"No Azure ML job {name} in this workspace.") from None
        except Exception as exc:
            raise _translate(exc, f"Cannot read Azure ML job {name}") from None
        state = STATES.get(job.status, TrainingState.QUEUED)
        trainer = self._mirrored_json(tenant, name, "status.json") or {}
        common = {"provider_job_id": provider_job_id, "progress": trainer.get("progress"),
                  "trained_tokens": trainer.get("tokens")}
        if state == TrainingState.SUCCEEDED:
            if trainer.get("state") != "succeeded":
                return TrainingStatus(state=TrainingState.FAILED, error=(
                    "the Azure ML job completed but its adapter never reached Forge's storage; check the cluster "
                    f"identity's Storage Blob Data Contributor role and the job's logs ({_studio(job)})"), **common)
            url = f"{self._mirror_url(tenant, name)}/adapter"
            return TrainingStatus(state=state, result_model=url, **common)
        if state == TrainingState.FAILED:
            error = trainer.get("error") or f"the Azure ML job failed before the trainer reported why; see {_studio(job)}"
            return TrainingStatus(state=state, error=error, **common)
        return TrainingStatus(state=state, **common)

    def cancel(self, provider_job_id: str) -> None:
        """Azure ML sends the trainer SIGTERM: it checkpoints to the output and exits."""
        _, name = _split(provider_job_id)
        job = self.client.jobs.get(name)
        if STATES.get(job.status, TrainingState.QUEUED).finished:
            return
        try:
            self.client.jobs.begin_cancel(name)
        except Exception as exc:
            raise _translate(exc, f"Azure ML could not cancel job {name}") from None

    def events(self, provider_job_id: str, after: str | None = None) -> list[ProviderEvent]:
        tenant, name = _split(provider_job_id)
        text = self._mirrored(tenant, name, "metrics.jsonl")
        return metrics_events(text.splitlines(), after) if text else []

    # --- Forge's copy of the run folder ---------------------------------------------------------------

    def _mirror_url(self, tenant: str, name: str) -> str:
        return f"{self.storage.account.blobs.url.rstrip('/')}/models/{tenant}/{name}"

    def _mirrored(self, tenant: str, name: str, file: str) -> str | None:
        container = self.storage.account.blobs.get_container_client("models")
        try:
            return container.download_blob(f"{tenant}/{name}/{file}").readall().decode("utf-8")
        except ResourceNotFoundError:
            return None

    def _mirrored_json(self, tenant: str, name: str, file: str) -> dict[str, Any] | None:
        text = self._mirrored(tenant, name, file)
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return None


def job_name(job_id: str) -> str:
    """Azure ML job names are lower case; Forge job ids are unique across tenants (ULIDs, nightly-…)."""
    return f"forge-{job_id.lower()}"


def _split(provider_job_id: str) -> tuple[str, str]:
    tenant, sep, name = provider_job_id.partition("/")
    if not sep or not name:
        raise ProviderRejected(f"'{provider_job_id}' is not an azureml provider job id (tenant/job-name).")
    return tenant, name


def _studio(job: Any) -> str:
    return getattr(job, "studio_url", None) or "Azure ML studio"


def _translate(exc: Exception, what: str) -> Exception:
    """Throttling, 5xx and network errors are worth retrying; anything else (4xx, an invalid spec) is not."""
    transient = isinstance(exc, (ServiceRequestError, ServiceResponseError)) or (
        isinstance(exc, HttpResponseError) and (exc.status_code or 500) in (408, 429) + tuple(range(500, 600)))
    if transient:
        return ProviderUnavailable(f"{what}: {exc}; Forge retries later.")
    return ProviderRejected(f"{what}: {exc}")
