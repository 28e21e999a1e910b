"""Forge's records. Python names are snake_case; the JSON the API speaks is camelCase (`jobId`, `datasetSize`)."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from ulid import ULID

from forge.domain.job_settings import JobSettings, JobState, shown_models, split_legacy_config


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A ULID: unique, and sorts by creation time."""
    return str(ULID())


class Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, use_enum_values=False)

    # The storage ETag this record was read with; never serialised, used for optimistic concurrency.
    etag: str | None = Field(default=None, exclude=True, repr=False)

    def public(self) -> dict[str, Any]:
        """The record as the API shows it."""
        return self.model_dump(mode="json", by_alias=True)


class Labelled(Record):
    """What a person calls a job, dataset or model (`PUT` on it): a name, a description and tags; no effect on runs."""

    name: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)


Feedback = Literal["approved", "rejected"]


class Trace(Record):
    """One teacher call: the prompt messages, the assistant's answer, and what people or judges said of it."""

    id: str
    tenant: str
    domain: str
    created_at: datetime
    model: str | None = None
    messages: list[dict[str, Any]]
    response: dict[str, Any]
    tools: list[dict[str, Any]] | None = None
    score: float | None = Field(default=None, ge=0, le=100)
    feedback: Feedback | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    source: str = "import"
    conversation_id: str | None = None
    user: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def is_golden(self, min_score: float) -> bool:
        return is_golden(self.score, self.feedback, min_score)


def is_golden(score: float | None, feedback: str | None, min_score: float) -> bool:
    """Approved by a person, or scored at least `min_score`; a rejected trace never is."""
    if feedback == "rejected":
        return False
    return feedback == "approved" or (score is not None and score >= min_score)


class JobStatus(str, Enum):
    COLLECTING = "COLLECTING"
    CURATING = "CURATING"
    UPLOADING = "UPLOADING"
    TRAINING = "TRAINING"
    EVALUATING = "EVALUATING"
    PROMOTING = "PROMOTING"
    COMPLETED = "COMPLETED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.SKIPPED, JobStatus.FAILED, JobStatus.CANCELLED)


JobStart = Literal["gather", "upload"]


class DistillationJob(Labelled):
    job_id: str = Field(default_factory=new_id)
    tenant: str
    domain: str
    start: JobStart = "gather"  # gather: from golden traces; upload: from a dataset someone uploaded (`dataset_id`)
    domain_version: int | None = None  # the tenant's domain version the run uses; 0: the packaged template
    status: JobStatus = JobStatus.COLLECTING
    trigger: str = "manual"
    provider: str | None = None
    provider_job_id: str | None = None
    dataset_id: str | None = None
    dataset_size: int | None = None
    resulting_model_id: str | None = None
    eval_metrics: dict[str, Any] = Field(default_factory=dict)
    settings: JobSettings = Field(default_factory=JobSettings)  # what the user set (validated at the edge)
    state: JobState = Field(default_factory=JobState)  # what the stages recorded; never from outside, never shown
    cost: dict[str, Any] = Field(default_factory=dict)
    promotion: dict[str, Any] = Field(default_factory=dict)  # what the promote stage did with the job's model
    stage_times: dict[str, datetime] = Field(default_factory=dict)
    error: str | None = None
    reason: str | None = None  # why the run ended SKIPPED or CANCELLED (FAILED says it in `error`)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="before")
    @classmethod
    def _legacy_config(cls, data: Any) -> Any:
        # Jobs stored before settings and state were separate kept both in one `config`.
        if isinstance(data, dict) and isinstance(data.get("config"), dict) and "settings" not in data:
            data = dict(data)
            settings, state, reason = split_legacy_config(data.pop("config"))
            data.update(settings=settings, state=state)
            data.setdefault("reason", reason)
        return data

    def public(self) -> dict[str, Any]:
        """The user's settings and the outcome; never the stages' state (paths, file ids, URIs) or provider ids."""
        shown = self.model_dump(mode="json", by_alias=True, exclude={"state", "provider_job_id", "settings"})
        shown["settings"] = self.settings.public()
        shown["cost"] = shown_models(shown.get("cost"))
        shown["evalMetrics"] = shown_models(shown.get("evalMetrics"))
        training = self.state.training
        shown["training"] = {k: training.get(k) for k in ("state", "progress", "trained_tokens", "loss")} \
            if training else None
        shown["goldenNew"] = self.state.golden_new
        return shown

    def advance(self, status: JobStatus, *, at: datetime | None = None, error: str | None = None) -> None:
        """Move to `status`, stamping when it was entered."""
        moment = at or utcnow()
        self.status = status
        self.stage_times[status.value] = moment
        self.updated_at = moment
        if error is not None:
            self.error = error


class JobEvent(Record):
    job_id: str
    seq: int = 0
    time: datetime = Field(default_factory=utcnow)
    level: Literal["debug", "info", "warning", "error"] = "info"
    type: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class Dataset(Labelled):
    dataset_id: str = Field(default_factory=new_id)
    tenant: str
    domain: str
    version: int = 1
    parent_id: str | None = None
    job_id: str | None = None
    sha256: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict)
    token_stats: dict[str, Any] = Field(default_factory=dict)
    blobs: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    # Curation (issue 3): where the examples came from, PII found by kind, the cost estimate, warnings, soft delete.
    source: str = "traces"
    pii: dict[str, int] = Field(default_factory=dict)
    estimate: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    deleted_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        """The dataset as the API shows it: a cost estimate names a local base model by its folder name only."""
        shown = super().public()
        shown["estimate"] = shown_models(shown.get("estimate"))
        return shown


class ModelStage(str, Enum):
    STAGING = "staging"
    CANDIDATE = "candidate"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class ModelVersion(Labelled):
    version_id: str = Field(default_factory=new_id)
    tenant: str
    domain: str
    base_model: str
    provider_model_id: str | None = None
    adapter_uri: str | None = None
    job_id: str | None = None
    dataset_id: str | None = None
    deployed_from: str | None = None  # the version of another domain this one serves (`deploy` to another route)
    stage: ModelStage = ModelStage.STAGING
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    def public(self) -> dict[str, Any]:
        """The version as the API shows it: its base model and adapter by name, never a path or a storage URL."""
        return shown_models(super().public())


class Route(Record):
    tenant: str
    domain: str
    production_model: str | None = None
    previous_production_model: str | None = None
    canary_model: str | None = None
    canary_percent: float = Field(default=0.0, ge=0, le=100)
    sticky_by: Literal["user", "conversation"] = "user"
    updated_at: datetime = Field(default_factory=utcnow)


class ApiKey(Record):
    tenant: str
    key_hash: str
    name: str
    scopes: list[str] = Field(default_factory=lambda: ["read", "write"])
    created_at: datetime = Field(default_factory=utcnow)
    revoked: bool = False
