"""A job's settings (what a user may set: typed, documented, unknown keys refused) and its state (what the stages
record: prepared locations, watermark, provider cursors). No input from outside ever writes state; the public view
of a job shows its settings and outcome, never state."""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from forge.domain.sections import Section

# OpenAI's fine-tuning hyperparameters: every provider takes these; hosted providers take only these.
OPENAI_HYPERPARAMETERS = frozenset({"n_epochs", "batch_size", "learning_rate_multiplier"})
# A hosted model name (gpt-4.1-mini-2025-04-14, ft:gpt-4o-mini:org::id) or a Hugging Face hub id (org/name).
# ASCII only, so that the pattern the API publishes (MODEL_NAME_PATTERN) and this check agree on every value.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,127})?")
# What an API caller may name: a model name that is no Windows drive path either (`is_local_path`).
MODEL_NAME_PATTERN = r"^(?![A-Za-z]:)" + MODEL_NAME.pattern.replace("(/", "(?:/") + "$"
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
Auto = Literal["auto"]
ModuleName = Annotated[str, StringConstraints(pattern=f"^{MODULE_NAME.pattern}$")]


def _integral(value: Any) -> Any:
    """JSON's 3.0 is the integer 3 (as JSON Schema counts it); strict mode still refuses true and "3"."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


INTEGRAL = BeforeValidator(_integral)  # after any bounds in an Annotated, so the schema keeps them as JSON Schema's
Int = Annotated[int, INTEGRAL]


class _Strict(Section):
    """Unknown keys are refused with a message naming them and listing the allowed ones (as in a domain file);
    values are taken as the JSON types they are (no "3" for 3, no true for 1), as the published schema says."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Hyperparameters(_Strict):
    """OpenAI's names (every provider) and the documented LoRA ones (providers `local` and `azureml`)."""

    kind: ClassVar[str] = "hyperparameter"

    # The bounds sit on the number itself: on the union they would be applied to "auto" too (a TypeError).
    n_epochs: Annotated[int, Field(ge=1, le=1000), INTEGRAL] | Auto | None = Field(
        None, description="Passes over the training set.")
    batch_size: Annotated[int, Field(ge=1, le=1024), INTEGRAL] | Auto | None = Field(
        None, description="Examples per step.")
    learning_rate_multiplier: Annotated[float, Field(gt=0, le=100)] | Auto | None = Field(
        None, description="Scales the provider's learning rate.")
    learning_rate: float | None = Field(None, gt=0, le=1, description="LoRA: the learning rate itself.")
    lora_r: Annotated[int, Field(ge=1, le=1024), INTEGRAL] | None = Field(None, description="LoRA rank.")
    lora_alpha: float | None = Field(None, gt=0, le=4096, description="LoRA scaling numerator.")
    lora_dropout: float | None = Field(None, ge=0, lt=1, description="Dropout on the LoRA layers.")
    target_modules: Literal["all-linear"] | list[ModuleName] | None = Field(
        None, max_length=64, description="Module names to adapt (q_proj, v_proj…), or all-linear.")
    max_seq_length: Annotated[int, Field(ge=8, le=131_072), INTEGRAL] | None = Field(
        None, description="Tokens per example or packed row.")
    packing: bool | None = Field(None, description="Pack several examples into one row.")
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=1024), INTEGRAL] | None = Field(None)
    max_steps: Annotated[int, Field(ge=1, le=10_000_000), INTEGRAL] | None = Field(
        None, description="Stop after this many optimizer steps.")
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    weight_decay: float | None = Field(None, ge=0, le=10)
    eval_every: Annotated[int, Field(ge=1, le=10_000_000), INTEGRAL] | None = Field(
        None, description="Steps between validation passes.")
    save_every: Annotated[int, Field(ge=1, le=10_000_000), INTEGRAL] | None = Field(
        None, description="Steps between checkpoints.")
    early_stopping_patience: Annotated[int, Field(ge=1, le=1000), INTEGRAL] | None = Field(None)
    gradient_checkpointing: bool | None = None
    quantization: Literal["none", "4bit"] | None = Field(None, description="4bit = QLoRA (CUDA only).")
    merge: bool | None = Field(None, description="Also write merged weights.")
    threads: Annotated[int, Field(ge=1, le=256), INTEGRAL] | None = Field(
        None, description="CPU threads for the trainer.")

    @model_validator(mode="after")
    def _module_names(self) -> "Hyperparameters":
        if isinstance(self.target_modules, list):
            bad = [m for m in self.target_modules if not MODULE_NAME.fullmatch(m)]
            if bad:
                raise ValueError(f"target_modules {bad} are not module names (letters, digits, '_' and '.')")
        return self

    def given(self) -> dict[str, Any]:
        """Only the hyperparameters the user set."""
        return self.model_dump(exclude_none=True)


class JobSettings(_Strict):
    """What a user may set on a job, through the API, `forge run --set` or the dashboard."""

    kind: ClassVar[str] = "job setting"

    base_model: str | None = Field(
        None, min_length=1, max_length=512, json_schema_extra={"pattern": MODEL_NAME_PATTERN},
        description="Student base model: a hosted model name or a Hugging Face hub id (org/name); "
                    "FORGE_STUDENT_BASE_MODEL by default. Local folders are the operator's (see local_folder_allowed).")
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    seed: Annotated[int, Field(ge=0, le=2**32 - 1), INTEGRAL] = Field(
        42, description="Seeds the split and the trainer.")
    trigger_threshold: Annotated[int, Field(ge=0, le=10_000_000), INTEGRAL] | None = Field(None,
                                          description="New golden traces needed; FORGE_TRIGGER_THRESHOLD by default.")
    valid_share: float = Field(0.1, ge=0, le=0.5, description="Share of examples held out for validation.")
    max_examples: Annotated[int, Field(ge=1, le=10_000_000), INTEGRAL] | None = Field(
        None, description="Newest examples kept at most.")
    poll_interval_s: float = Field(60.0, ge=0.1, le=3600, description="Seconds between training status polls.")
    max_training_s: float = Field(24 * 3600.0, gt=0, le=7 * 24 * 3600,
                                  description="Training time after which the run is cancelled and FAILED.")
    retry_first_s: float = Field(2.0, ge=0.01, le=3600, description="First retry delay of a failed activity.")

    def public(self) -> dict[str, Any]:
        """The settings as the API shows them: what was set, a local base model folder by its name only."""
        shown = self.model_dump(mode="json", exclude_none=True)
        if self.base_model:
            shown["base_model"] = shown_model(self.base_model)
        shown["hyperparameters"] = self.hyperparameters.given()
        return shown


MODEL_KEYS = frozenset({"model", "base_model", "baseModel", "adapter_uri", "adapterUri"})


def shown_model(value: str | None) -> str | None:
    """A model as a tenant may see it: names and hub ids as they are; a folder on the worker or a storage URL by its
    last segment only (`local:NAME`, `stored:NAME`), never the path, the account or a SAS."""
    if not value:
        return value
    if "://" in value:
        return f"stored:{PurePosixPath(value.split('?', 1)[0].split('://', 1)[1].rstrip('/')).name}"
    if is_local_path(value):
        return f"local:{PurePosixPath(value.replace(chr(92), '/').rstrip('/')).name}"
    return value


def shown_models(data: Any) -> Any:
    """`data` with every model-naming key (model, base_model, adapter_uri…) passed through `shown_model`."""
    if isinstance(data, dict):
        return {k: shown_model(v) if k in MODEL_KEYS and isinstance(v, str) else shown_models(v)
                for k, v in data.items()}
    if isinstance(data, list):
        return [shown_models(v) for v in data]
    return data


def is_local_path(value: str) -> bool:
    """Whether a base model names a folder rather than a hosted model or a hub id."""
    return not MODEL_NAME.fullmatch(value) or value.startswith(".") or PureWindowsPath(value).drive != ""


def tenant_base_model_problem(settings: JobSettings) -> str | None:
    """Why a tenant may not ask for this base model, or None: folders on the worker are set by the operator."""
    if settings.base_model and is_local_path(settings.base_model):
        return (f"base_model {settings.base_model!r} is not a model name: give a hosted model name or a Hugging Face "
                "hub id (org/name). Local model folders are set by the operator (FORGE_STUDENT_BASE_MODEL).")
    return None


class JobState(BaseModel):
    """What the stages record on a job; written by stages only, never shown by the API."""

    model_config = ConfigDict(extra="ignore")

    watermark: str | None = None  # the cut-off of the domain's previous completed job
    cutoff: str | None = None  # traces up to here are this job's
    golden_new: int | None = None
    traces_new: int | None = None
    prepared: dict[str, Any] | None = None  # where the provider reads the dataset (paths, file ids, URIs)
    event_cursor: str | None = None  # the provider's last copied event
    training: dict[str, Any] = Field(default_factory=dict)  # state, progress, trained tokens, last loss
    eval_set: int | None = None  # the eval set version curate carved before training: what evaluate scores on
    resumes: int = 0  # times the reconciler started the run again after its orchestration went missing
    queued: bool = False  # created to be started by the next reconcile pass (a drift alert's run), not yet started
    outage: dict[str, Any] | None = None  # a provider outage being waited out: since, attempts, last reason


def split_legacy_config(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """A job stored before settings and state were separate: (settings, state, reason) from its one `config`."""
    settings = {k: v for k, v in config.items() if k in JobSettings.model_fields}
    if isinstance(settings.get("hyperparameters"), dict):
        settings["hyperparameters"] = {k: v for k, v in settings["hyperparameters"].items()
                                       if k in Hyperparameters.model_fields}
    state = {k: v for k, v in config.items() if k in JobState.model_fields}
    return settings, state, config.get("reason")
