"""The API's wire models: request bodies (closed: an unknown key is a 422) and the views its responses take. The
routes declare them, so the OpenAPI document says what the server does, and `forge.client` parses with the same
classes. Views accept fields they do not list yet (a newer server may add some); requests never do.

Pure pydantic over `forge.domain`: importing this (as the SDK does) brings in no server code.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from forge.api.ids import DatasetId, DomainName, JobId, ModelId
from forge.domain.chat_format import ROLES
from forge.domain.cost import CostEstimate
from forge.domain.job_settings import INTEGRAL, MODEL_NAME_PATTERN, JobSettings
from forge.domain.labels import MAX_TAGS, Labels, Tag
from forge.domain.models import Feedback, JobStart, JobStatus, ModelStage

PROVIDERS = ("local", "azure-openai", "openai", "azureml")  # config.Provider's values (config is server-side)
Provider = Literal["local", "azure-openai", "openai", "azureml"]
CURSOR_PATTERN = r"^(?:[0-9a-f]{2}){0,1024}$"  # storage.tables.CURSOR_PATTERN; a test keeps them equal
T = TypeVar("T")
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
                      r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def _rfc3339(value: Any) -> Any:
    """A time as the schema's `date-time` says: RFC 3339 with its offset; no bare dates, numbers or naive times."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return datetime.fromisoformat(value.upper())
    raise ValueError("not a date and time with an offset (RFC 3339, e.g. 2026-11-30T12:00:00Z)")


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class View(BaseModel):
    """A response body: camelCase on the wire, fields a newer server adds are kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class Request(BaseModel):
    """A request body: camelCase on the wire (snake_case accepted), unknown keys refused, each value of the JSON type
    the schema gives (no "3" for 3, no true for 1)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


class Page(View, Generic[T]):
    """One page of a list. Pass `continuation` back (`?continuation=…`) for the next; null on the last page."""

    items: list[T]
    continuation: str | None = Field(None, pattern=CURSOR_PATTERN)


# --- requests ----------------------------------------------------------------------------------------------------


def _older_config_name(schema: dict[str, Any]) -> None:
    schema["properties"]["config"] = {"$ref": "#/components/schemas/JobSettings", "deprecated": True,
                                      "description": "The older name of `settings` (CHANGELOG.md); send one of them."}
    schema["not"] = {"required": ["settings", "config"]}


class TriggerIn(BaseModel):
    """`POST /api/v1/forge/jobs/trigger`: a run over the domain's new golden traces."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_older_config_name)

    domain: DomainName | None = Field(None, description="Domain to distil; the configured one by default.")
    provider: Provider | None = Field(None, description="FORGE_PROVIDER by default; one of FORGE_ALLOWED_PROVIDERS.")
    settings: JobSettings = Field(default_factory=JobSettings, validation_alias=AliasChoices("settings", "config"),
                                  description="Job settings (docs/jobs.md).")


class JobIn(Request):
    """`POST /api/v1/forge/jobs`: fine-tune on a stored dataset (no gather, no curate), then evaluate and promote."""

    # The base model is given once: as `baseModel`, or as `settings.base_model`.
    model_config = ConfigDict(json_schema_extra={"not": {"required": ["baseModel", "settings"], "properties": {
        "settings": {"required": ["base_model"]}}}})

    dataset_id: DatasetId = Field(description="The dataset to train on (`POST /api/v1/datasets` returned it).")
    base_model: str = Field(None, min_length=1, max_length=512, json_schema_extra={"pattern": MODEL_NAME_PATTERN},
                                   description="The student's base model (a hosted name or org/name); "
                                               "FORGE_STUDENT_BASE_MODEL by default. Same as settings.base_model.")
    provider: Provider = Field(None, description="FORGE_PROVIDER by default; one of FORGE_ALLOWED_PROVIDERS.")
    domain: DomainName = Field(None, description="Domain it is evaluated and routed in; the dataset's own "
                                                        "by default.")
    settings: JobSettings = Field(default_factory=JobSettings, description="Job settings: hyperparameters, seed, "
                                                                           "polling (docs/jobs.md).")
    name: str = Field(None, min_length=1, max_length=200)
    description: str = Field(None, max_length=4000)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS, json_schema_extra={"uniqueItems": True})


# Whitespace as both Python's str.isspace and ECMAScript's \s know it, spelled out: "content that is not blank" must
# mean the same to the published schema and to the server's check (domain/chat_format.py).
_NOT_BLANK = "[^\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_FALSY = {"enum": [False, 0, "", [], {}, None]}
CHAT_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["role"],
    "properties": {"role": {"enum": list(ROLES)}, "content": {}, "name": {"type": "string", "minLength": 1},
                   "weight": {"enum": [0, 1, True, False]}, "tool_calls": {}, "function_call": {},
                   "tool_call_id": {}},
    "anyOf": [{"required": ["content"], "properties": {"content": {"type": "string", "pattern": _NOT_BLANK}}},
              {"required": ["tool_calls"], "properties": {"tool_calls": {"not": _FALSY}}},
              {"required": ["function_call"], "properties": {"function_call": {"not": _FALSY}}}],
}
CHAT_EXAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["messages"],
    "description": "An OpenAI chat fine-tuning example, checked as OpenAI checks one: known roles, text or calls in "
                   "each message, at least one assistant message.",
    "properties": {"messages": {"type": "array", "minItems": 1, "items": CHAT_MESSAGE_SCHEMA,
                                "contains": {"type": "object", "required": ["role"],
                                             "properties": {"role": {"const": "assistant"}}}},
                   "tools": {"type": "array"}, "functions": {}, "parallel_tool_calls": {}},
}


class EstimateIn(Request):
    """A stored dataset or inline examples (one of them), and optionally the base model and epochs."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["datasetId"]}, {"required": ["examples"]}]})

    dataset_id: DatasetId = Field(None, description="A stored dataset (its train.jsonl is billed).")
    examples: list[Annotated[dict[str, Any], WithJsonSchema(CHAT_EXAMPLE_SCHEMA)]] = Field(
        None, min_length=1, max_length=100_000, description="Or chat examples sent inline.")
    model: str = Field(None, min_length=1, max_length=256, json_schema_extra={"pattern": MODEL_NAME_PATTERN},
                       description="Base model; FORGE_STUDENT_BASE_MODEL by default.")
    epochs: Annotated[int, Field(ge=1, le=1000), INTEGRAL] = Field(None, description="Epochs; OpenAI's auto choice "
                                                                                     "by default.")


class FromTraces(Request):
    domain: DomainName | None = Field(None, description="The domain; the configured one by default.")
    since: Timestamp = Field(None, description="Only traces from this time (RFC 3339).")
    until: Timestamp = Field(None, description="The cut-off: traces before it (RFC 3339).")
    max_examples: Annotated[int, Field(ge=10, le=10_000_000), INTEGRAL] = Field(
        None, description="Keep at most this many, newest first.")
    valid_share: float = Field(0.1, ge=0, le=0.5)
    seed: Annotated[int, Field(ge=0, le=2**32 - 1), INTEGRAL] = 42
    job_id: JobId | None = Field(None, description="Build once per job: a repeat returns the same dataset.")


class FeedbackIn(BaseModel):
    """A person's verdict, a score, or both (at least one)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"anyOf": [{"required": ["feedback"]},
                                                                           {"required": ["score"]}]})

    feedback: Feedback = Field(None, description="approved makes the trace golden; rejected keeps it out of training.")
    score: float = Field(None, ge=0, le=100, description="0 to 100; at least FORGE_MIN_SCORE makes it golden.")


class TraceBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    traces: list[dict[str, Any]] = Field(min_length=1, max_length=1000, description=(
        "Records in the import format: OpenAI chat `{messages: [...]}` or `{prompt, response}`, with optional "
        "score, feedback, model, metadata. Records that fail are listed in `rejected`; the batch is a 422 only "
        "when none is valid."))
    domain: DomainName | None = Field(None, description="Domain for records that name none; the configured one "
                                                        "by default.")


class PromoteIn(Request):
    stage: Literal["candidate", "production"] | None = Field(
        None, description="Where to: 'candidate' (the canary) or 'production'; unset: the next stage.")
    canary_percent: float | None = Field(None, gt=0, le=100, description="Canary share; unset: the domain's.")


class DeployIn(Request):
    """`POST /api/v1/models/{id}/deploy`: serve the model on a domain's route."""

    # `percent` is a canary's share: with it, the stage must be said to be canary.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"not": {"required": ["percent"]}},
        {"required": ["stage", "percent"], "properties": {"stage": {"const": "canary"}}}]})

    domain: DomainName = Field(None, description="The route (domain) to serve it on; the model's own by default. "
                                                 "Another domain gets its own version of the model.")
    stage: Literal["production", "canary"] = Field("production", description="production, or canary with `percent`.")
    percent: float = Field(None, gt=0, le=100, description="Canary share; the domain's by default. Only for a "
                                                           "canary.")


# --- views -------------------------------------------------------------------------------------------------------


class LabelsView(View):
    name: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)


class JobView(LabelsView):
    """A job's settings and outcome (never the stages' state or provider ids)."""

    job_id: str
    tenant: str
    domain: str
    start: JobStart = "gather"
    status: JobStatus
    trigger: str
    provider: str | None = None
    dataset_id: str | None = None
    dataset_size: int | None = None
    resulting_model_id: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    eval_metrics: dict[str, Any] = Field(default_factory=dict)
    cost: dict[str, Any] = Field(default_factory=dict)
    promotion: dict[str, Any] = Field(default_factory=dict)
    stage_times: dict[str, datetime] = Field(default_factory=dict)
    training: dict[str, Any] | None = None
    golden_new: int | None = None
    error: str | None = None
    reason: str | None = None
    created_at: datetime
    updated_at: datetime


class JobAccepted(View):
    """A run was accepted: poll `statusUrl` (also in `Location`)."""

    job_id: str
    status: JobStatus
    status_url: str
    started: bool
    job: JobView | None = None


class JobEventView(View):
    job_id: str
    seq: int
    time: datetime
    level: Literal["debug", "info", "warning", "error"]
    type: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class DatasetView(LabelsView):
    dataset_id: str
    tenant: str
    domain: str
    version: int
    parent_id: str | None = None
    job_id: str | None = None
    sha256: str | None = None
    source: str
    counts: dict[str, int] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict)
    pii: dict[str, int] = Field(default_factory=dict)
    estimate: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    created_at: datetime
    deleted_at: datetime | None = None


class DatasetDetail(DatasetView):
    """A dataset with its stats.json and its first training examples."""

    stats: dict[str, Any] = Field(default_factory=dict)
    preview: list[dict[str, Any]] = Field(default_factory=list)


class DatasetBuilt(View):
    """A new dataset version: what was kept and dropped, and what training on it would cost."""

    dataset_id: str
    version: int
    parent_id: str | None = None
    sha256: str
    counts: dict[str, int]
    dropped: dict[str, int]
    pii: dict[str, int]
    train: int
    valid: int
    billed_tokens: int
    epochs: int
    estimated_cost: float | None = None
    currency: str
    warnings: list[str]
    reused: bool = False


class ModelView(LabelsView):
    version_id: str
    tenant: str
    domain: str
    base_model: str
    provider_model_id: str | None = None
    adapter_uri: str | None = None
    job_id: str | None = None
    dataset_id: str | None = None
    deployed_from: str | None = None
    stage: ModelStage
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class ModelDetail(ModelView):
    role: str | None = None
    lineage: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, Any] = Field(default_factory=dict)
    usage_window_days: float


class RouteView(View):
    tenant: str
    domain: str
    production_model: str | None = None
    previous_production_model: str | None = None
    canary_model: str | None = None
    canary_percent: float = 0.0
    sticky_by: Literal["user", "conversation"] = "user"
    updated_at: datetime


class RegistryChangeView(View):
    """A model after a registry action, its domain's route, and what changed around it."""

    model: ModelView
    route: RouteView
    role: str | None = None
    restored: ModelView | None = None
    notes: list[str] = Field(default_factory=list)


class TraceView(View):
    id: str
    tenant: str
    domain: str
    created_at: datetime
    model: str | None = None
    messages: list[dict[str, Any]]
    response: dict[str, Any]
    tools: list[dict[str, Any]] | None = None
    score: float | None = None
    feedback: Feedback | None = None
    source: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class TracesImported(View):
    imported: int
    ids: list[str]
    rejected: list[dict[str, Any]]


class DatasetStats(View):
    total: int
    by_state: dict[str, int]
    by_domain: dict[str, int]
    by_source: dict[str, int]
    examples: dict[str, int]
    tokens: dict[str, int]
    estimated_cost: dict[str, Any]
    usage: dict[str, int]


class ModelStats(View):
    total: int
    by_stage: dict[str, int]
    by_domain: dict[str, int]
    serving: dict[str, int]
    training: dict[str, Any]
    usage: dict[str, Any]


class Estimate(View):
    """What fine-tuning would bill (`forge.domain.cost.CostEstimate`, camelCase)."""

    model: str
    examples: int
    epochs: int
    epochs_auto: bool
    dataset_tokens: int
    billed_tokens: int
    token_limit: int
    truncated_examples: int
    price_per_1m: float | None = None
    cost: float | None = None
    currency: str
    prices_as_of: str


__all__ = ["CostEstimate", "DatasetBuilt", "DatasetDetail", "DatasetStats", "DatasetView", "DeployIn", "Estimate",
           "EstimateIn", "FeedbackIn", "FromTraces", "JobAccepted", "JobEventView", "JobIn", "JobView", "Labels",
           "ModelDetail", "ModelStats", "ModelView", "Page", "PromoteIn", "RegistryChangeView", "RouteView",
           "TraceBatch", "TraceView", "TracesImported", "TriggerIn"]
