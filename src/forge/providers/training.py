"""The one Protocol every training provider implements: prepare, start, status, cancel, events.

Providers: `local` (forge-trainer subprocess), `azureml` (command job on a GPU cluster), `azure-openai` and
`openai` (hosted fine-tuning). The orchestrator's stages call them only through this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from forge.domain.errors import ForgeError

# The tags (Azure ML run tags, OpenAI job metadata) a provider puts on its job so an event or a listing leads back to
# Forge's job: written by the providers, read by the services that route their events.
JOB_TAG = "forge_job_id"
TENANT_TAG = "forge_tenant"
DOMAIN_TAG = "forge_domain"
DATASET_TAG = "forge_dataset"
DATASET_SHA_TAG = "forge_dataset_sha256"


class ProviderRejected(ForgeError):
    """The provider refused the request (a 4xx): the job fails with the provider's own message."""

    status = 422
    title = "Provider rejected the request"


class ProviderUnavailable(ForgeError):
    """A transient failure (429, 5xx, timeout) that outlived the provider's own retries; retry later."""

    status = 503
    title = "Provider unavailable"


class TrainingState(str, Enum):
    QUEUED = "queued"  # accepted, validating files, or waiting for compute
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TrainingState.SUCCEEDED, TrainingState.FAILED, TrainingState.CANCELLED)


@dataclass(frozen=True)
class TrainingRequest:
    """What to train: small, JSON-able, keyed by the Forge job id (every call is idempotent on it)."""

    job_id: str
    tenant: str
    domain: str
    dataset_id: str
    dataset_sha256: str
    base_model: str
    suffix: str  # e.g. forge-coding-3
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # n_epochs, batch_size, learning_rate_multiplier…
    seed: int = 42


@dataclass(frozen=True)
class PreparedData:
    """Where the provider can read the dataset: uploaded file ids, URIs or local paths."""

    train: str
    valid: str | None = None


@dataclass(frozen=True)
class TrainingStatus:
    provider_job_id: str
    state: TrainingState
    progress: float | None = None  # 0..1 where the provider says
    trained_tokens: int | None = None
    result_model: str | None = None  # an `ft:` model id, or an adapter URI/path
    error: str | None = None  # the provider's own words when it failed


@dataclass(frozen=True)
class ProviderEvent:
    id: str  # provider-side id or sequence, used as the `after` cursor
    type: str  # "metrics" carries data {"step", "loss", "valid_loss"?}; "message" otherwise
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TrainingProvider(Protocol):
    name: str

    def prepare(self, request: TrainingRequest) -> PreparedData:
        """Make the dataset readable by the provider; a second call for the same dataset reuses the first upload."""
        ...

    def start(self, request: TrainingRequest, data: PreparedData) -> str:
        """Start training and return the provider job id; a second call for the same Forge job finds the first."""
        ...

    def status(self, provider_job_id: str) -> TrainingStatus:
        ...

    def cancel(self, provider_job_id: str) -> None:
        ...

    def events(self, provider_job_id: str, after: str | None = None) -> list[ProviderEvent]:
        """Events newer than `after`, oldest first."""
        ...
