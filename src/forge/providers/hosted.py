"""Providers `azure-openai` and `openai`: hosted supervised fine-tuning through the official `openai` SDK.

Files API upload (purpose fine-tune) → `fine_tuning.jobs` create / retrieve / list_events / checkpoints / cancel →
an `ft:` model; on Azure, optionally deployed so it can be served. Every call is idempotent: an uploaded file is
found again by its name, which embeds the dataset's sha256, and a provider job by its metadata, which carries the
Forge job id. Transient errors (429 honouring Retry-After, 5xx, timeouts) are retried with backoff, by the SDK for
reads and by `_create_once` for creates (which looks for an earlier success before each retry); any other 4xx is
ProviderRejected with the provider's own message.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import openai

from forge.domain.errors import ConfigError, DatasetNotFound, ForgeError
from forge.providers.azure_deployments import DEPLOYING, READY, AzureDeployments, deployment_name
from forge.providers.hosted_events import merge, newer, split_cursor
from forge.providers.training import (DOMAIN_TAG, JOB_TAG, TENANT_TAG, PreparedData, ProviderEvent,
                                      ProviderRejected, ProviderUnavailable, TrainingRequest, TrainingState,
                                      TrainingStatus)

STATES = {
    "validating_files": TrainingState.QUEUED, "queued": TrainingState.QUEUED, "pending": TrainingState.QUEUED,
    "paused": TrainingState.QUEUED, "running": TrainingState.RUNNING, "pausing": TrainingState.RUNNING,
    "resuming": TrainingState.RUNNING, "succeeded": TrainingState.SUCCEEDED, "failed": TrainingState.FAILED,
    "cancelled": TrainingState.CANCELLED,
}
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")
TRANSIENT = frozenset({408, 409, 429})
FILE_WAITING = ("uploaded", "pending", "running")
MAX_SCAN = 2000  # provider jobs or files looked through for an earlier upload or start


class HostedFineTuning:
    """The TrainingProvider over an `OpenAI` or `AzureOpenAI` client."""

    def __init__(self, name: str, client: Any, storage: Any, *, deployments: AzureDeployments | None = None,
                 max_retries: int = 4, file_poll_s: float = 2.0, file_wait_s: float = 600.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.client = client.with_options(max_retries=max_retries)  # reads: the SDK retries with backoff
        self.creator = client.with_options(max_retries=0)  # creates: `_create_once` retries, looking first
        self.storage = storage
        self.deployments = deployments
        self.max_retries = max_retries
        self.file_poll_s, self.file_wait_s = file_poll_s, file_wait_s
        self.sleep = sleep

    @classmethod
    def from_forge(cls, forge: Any, provider: str | None = None) -> "HostedFineTuning":
        """`azure-openai` (Entra ID unless FORGE_AZURE_OPENAI_API_KEY) or `openai`, from the settings."""
        s = forge.settings
        name = provider or s.provider.value
        if name == "azure-openai":
            if not s.azure_openai_endpoint:
                raise ConfigError("Provider azure-openai needs FORGE_AZURE_OPENAI_ENDPOINT, your Azure OpenAI "
                                  "endpoint (https://NAME.openai.azure.com); azd sets it.")
            deployments = AzureDeployments.from_settings(s) if s.azure_openai_deploy else None
            return cls(name, azure_client(s), forge.storage, deployments=deployments)
        if name == "openai":
            if s.openai_api_key is None:
                raise ConfigError("Provider openai needs FORGE_OPENAI_API_KEY (an OpenAI project key with "
                                  "fine-tuning access); Azure OpenAI is provider azure-openai.")
            client = openai.OpenAI(api_key=s.openai_api_key.get_secret_value(), base_url=s.openai_base_url,
                                   timeout=60.0)
            return cls(name, client, forge.storage)
        raise ConfigError(f"HostedFineTuning serves azure-openai and openai, not '{name}'.")

    # --- the protocol --------------------------------------------------------------------------------

    def prepare(self, request: TrainingRequest) -> PreparedData:
        """Upload train.jsonl and valid.jsonl (when not empty) once per dataset content, and wait until processed."""
        ids: dict[str, str] = {}
        for part in ("train", "valid"):
            filename = f"forge-{request.dataset_sha256 or request.dataset_id}-{part}.jsonl"
            file = self._upload_once(request, part, filename)
            if file is not None:
                ids[part] = self._processed(file).id
        if "train" not in ids:
            raise ProviderRejected(f"Dataset {request.dataset_id} has no training examples; curate it again.")
        return PreparedData(train=ids["train"], valid=ids.get("valid"))

    def start(self, request: TrainingRequest, data: PreparedData) -> str:
        """Create the fine-tuning job, or find the one an earlier call created for this Forge job."""
        body: dict[str, Any] = {
            "model": request.base_model, "training_file": data.train, "suffix": request.suffix,
            "seed": request.seed,
            "metadata": {JOB_TAG: request.job_id, TENANT_TAG: request.tenant, DOMAIN_TAG: request.domain},
            "method": {"type": "supervised", "supervised": {"hyperparameters": _hyperparameters(request)}},
        }
        if data.valid:
            body["validation_file"] = data.valid
        job = self._create_once(lambda: self._find_job(request.job_id),
                                lambda: self.creator.fine_tuning.jobs.create(**body), "starting fine-tuning")
        return job.id

    def status(self, provider_job_id: str) -> TrainingStatus:
        job = self._job(provider_job_id)
        state = STATES.get(job.status, TrainingState.QUEUED)  # a status this code predates: still in progress
        common = {"provider_job_id": provider_job_id, "trained_tokens": job.trained_tokens}
        if state == TrainingState.FAILED:
            return TrainingStatus(state=state, error=_job_error(job), **common)
        if state != TrainingState.SUCCEEDED:
            return TrainingStatus(state=state, **common)
        if self.deployments is None:
            return TrainingStatus(state=state, progress=1.0, result_model=job.fine_tuned_model, **common)
        name = deployment_name(provider_job_id)
        deployed = self.deployments.ensure(name, job.fine_tuned_model)
        if deployed.state == READY:  # on Azure the deployment's name is what a chat call names as its model
            return TrainingStatus(state=state, progress=1.0, result_model=name, **common)
        if deployed.state == DEPLOYING:
            return TrainingStatus(state=TrainingState.RUNNING, progress=1.0, **common)
        return TrainingStatus(state=TrainingState.FAILED, error=(
            f"{job.fine_tuned_model} trained, but {deployed.error}. Free deployment quota or change "
            "FORGE_AZURE_OPENAI_DEPLOYMENT_SKU, then deploy it by hand or run the job again."), **common)

    def cancel(self, provider_job_id: str) -> None:
        """Cancel a run in progress; a finished one is left as it is."""
        if STATES.get(self._job(provider_job_id).status, TrainingState.QUEUED).finished:
            return
        with self._errors("cancelling fine-tuning"):
            self.client.fine_tuning.jobs.cancel(provider_job_id)

    def events(self, provider_job_id: str, after: str | None = None) -> list[ProviderEvent]:
        """Job events (loss points as metrics) and checkpoints newer than `after`, oldest first."""
        last_event, last_checkpoint = split_cursor(after)
        jobs = self.client.fine_tuning.jobs
        with self._errors("reading training events"):
            fresh_events = newer(jobs.list_events(provider_job_id, limit=100), last_event)
            fresh_checkpoints = newer(jobs.checkpoints.list(provider_job_id, limit=100), last_checkpoint)
        return merge(fresh_events, fresh_checkpoints, last_event, last_checkpoint)

    # --- for webhooks ----------------------------------------------------------------------------------

    def forge_job(self, provider_job_id: str) -> tuple[str | None, str] | None:
        """(tenant, Forge job id) from the provider job's metadata; None for a job Forge did not start."""
        metadata = self._job(provider_job_id).metadata or {}
        return (metadata.get(TENANT_TAG), metadata[JOB_TAG]) if metadata.get(JOB_TAG) else None

    # --- helpers ---------------------------------------------------------------------------------------

    def _job(self, provider_job_id: str) -> Any:
        with self._errors("reading the fine-tuning job"):
            return self.client.fine_tuning.jobs.retrieve(provider_job_id)

    def _find_job(self, job_id: str) -> Any:
        jobs = self.client.fine_tuning.jobs
        with self._errors("looking for an earlier fine-tuning job"):
            try:  # filtered by metadata where the service supports it; checked below either way
                listing = jobs.list(metadata={JOB_TAG: job_id}, limit=100)
            except openai.BadRequestError:
                listing = jobs.list(limit=100)
            for n, job in enumerate(listing):
                if (job.metadata or {}).get(JOB_TAG) == job_id:
                    return job
                if n >= MAX_SCAN:
                    break
        return None

    def _find_file(self, filename: str) -> Any:
        with self._errors("looking for an earlier upload"):
            for n, file in enumerate(self.client.files.list(purpose="fine-tune")):
                if file.filename == filename and file.status not in ("error", "deleted", "deleting"):
                    return file
                if n >= MAX_SCAN:
                    break
        return None

    def _upload_once(self, request: TrainingRequest, part: str, filename: str) -> Any:
        """The file named `filename`, uploaded now unless an earlier call did; None for an empty or absent file."""
        earlier = self._find_file(filename)
        if earlier is not None:
            return earlier
        with tempfile.TemporaryFile(prefix="forge-upload-") as spool:  # bounded memory, and re-readable on retry
            try:
                for chunk in self.storage.datasets.open_file(request.tenant, request.dataset_id, part):
                    spool.write(chunk)
            except DatasetNotFound:
                return None
            if spool.tell() == 0:
                return None

            def upload() -> Any:
                spool.seek(0)
                return self.creator.files.create(file=(filename, spool), purpose="fine-tune")

            return self._create_once(lambda: self._find_file(filename), upload, f"uploading {filename}")

    def _processed(self, file: Any) -> Any:
        deadline = time.monotonic() + self.file_wait_s
        while file.status in FILE_WAITING:
            if time.monotonic() > deadline:
                raise ProviderUnavailable(f"{self.name} is still processing {file.filename} after "
                                          f"{self.file_wait_s:g} s; the upload is retried.")
            self.sleep(self.file_poll_s)
            with self._errors(f"waiting for {file.filename}"):
                file = self.client.files.retrieve(file.id)
        if file.status != "processed":
            raise ProviderRejected(f"{self.name} could not process {file.filename}: "
                                   f"{getattr(file, 'status_details', None) or file.status}")
        return file

    def _create_once(self, find: Callable[[], Any], create: Callable[[], Any], doing: str) -> Any:
        """Create, retrying transient failures; before each try, look for what an earlier try may have made."""
        for attempt in range(self.max_retries + 1):
            found = find()
            if found is not None:
                return found
            try:
                return create()
            except openai.APIError as exc:
                if attempt == self.max_retries or not _transient(exc):
                    raise self._translate(exc, doing) from None
                self.sleep(_backoff(exc, attempt))
        raise AssertionError("unreachable")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except openai.APIError as exc:
            raise self._translate(exc, doing) from None

    def _translate(self, exc: openai.APIError, doing: str) -> ForgeError:
        status = getattr(exc, "status_code", None)
        if _transient(exc):
            reason = f"HTTP {status}" if status else type(exc).__name__
            return ProviderUnavailable(f"{self.name} was unavailable while {doing} ({reason}: {_message(exc)}); "
                                       "Forge retries later.")
        hint = ""
        if status in (401, 403):
            hint = (" Check FORGE_AZURE_OPENAI_API_KEY, or the app identity's role on the account."
                    if self.name == "azure-openai" else " Check FORGE_OPENAI_API_KEY.")
        return ProviderRejected(f"{_message(exc)} (HTTP {status} while {doing}).{hint}")


def azure_client(settings: Any) -> Any:
    """An AzureOpenAI client: with FORGE_AZURE_OPENAI_API_KEY, or else the app's Entra ID identity."""
    common = {"azure_endpoint": settings.azure_openai_endpoint, "api_version": settings.azure_openai_api_version,
              "timeout": 60.0}
    if settings.azure_openai_api_key is not None:
        return openai.AzureOpenAI(api_key=settings.azure_openai_api_key.get_secret_value(), **common)
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider

    from forge.providers.openai_compat import AZURE_SCOPE

    return openai.AzureOpenAI(azure_ad_token_provider=get_bearer_token_provider(DefaultAzureCredential(),
                                                                                AZURE_SCOPE), **common)


def _hyperparameters(request: TrainingRequest) -> dict[str, Any]:
    unknown = sorted(set(request.hyperparameters) - set(HYPERPARAMETERS))
    if unknown:
        raise ProviderRejected(f"Hosted fine-tuning takes only {', '.join(HYPERPARAMETERS)} (each a value or "
                               f"'auto'); remove {', '.join(unknown)} from the job's hyperparameters.")
    return {k: v for k, v in request.hyperparameters.items() if v is not None}


def _job_error(job: Any) -> str:
    error = job.error
    if error is None or not error.message:
        return f"the provider reports job {job.id} failed without a reason; see its events"
    return error.message + (f" ({error.code})" if error.code else "")


def _transient(exc: openai.APIError) -> bool:
    status = getattr(exc, "status_code", None)
    if status is None:
        return isinstance(exc, openai.APIConnectionError)  # timeouts are connection errors too
    return status in TRANSIENT or status >= 500


def _backoff(exc: openai.APIError, attempt: int) -> float:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        wait = float(header) if header is not None else None
    except ValueError:
        wait = None
    return wait if wait is not None and 0 <= wait <= 120 else min(0.5 * 2 ** attempt, 8.0)


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(exc.message)
