"""Forge's one Settings object: environment variables (`FORGE_*`) over `$FORGE_HOME/forge.toml` over defaults."""

from __future__ import annotations

import os
import tomllib
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from forge.domain.cron import CronError, parse_cron
from forge.domain.errors import ConfigError
from forge.domain.names import NAME_RULE, valid_name

ENV_PREFIX = "FORGE_"
CONFIG_FILE = "forge.toml"


class Provider(str, Enum):
    LOCAL = "local"
    AZURE_OPENAI = "azure-openai"
    OPENAI = "openai"
    AZUREML = "azureml"


def default_home() -> Path:
    return Path.home() / ".forge"


class Settings(BaseSettings):
    """Everything Forge reads from its environment, validated once at start."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True)

    enabled: bool = Field(True, description="Run the nightly distillation when true.")
    # Defaults are models Azure OpenAI fine-tunes (see README "Configuration"): the teacher is the strong
    # model serving traffic, the student base is its cheaper sibling that hosted fine-tuning accepts.
    teacher_model: str = Field("gpt-4.1", min_length=1)
    student_base_model: str = Field("gpt-4.1-mini-2025-04-14", min_length=1)
    trigger_threshold: int = Field(500, ge=1, description="Golden traces needed since the last run.")
    schedule_cron: str = Field("0 0 2 * * *", description="Functions NCRONTAB, six fields.")
    min_score: float = Field(90.0, ge=0, le=100, description="A trace scoring at least this is golden.")
    provider: Provider = Provider.LOCAL
    allowed_providers: str | None = Field(
        None, description="Comma-separated providers an API caller's job may use; unset: FORGE_PROVIDER alone.")
    storage_connection: SecretStr | None = Field(None, description="Unset: Forge runs Azurite itself.")
    trace_shards: int = Field(16, ge=1, le=100, description="Partitions per tenant, domain and day of the trace "
                              "table; after changing it, run `forge storage migrate`.")
    storage_blob_url: str | None = Field(None, description="Blob account URL, used with DefaultAzureCredential.")
    storage_table_url: str | None = Field(None, description="Table account URL, used with DefaultAzureCredential.")
    home: Path = Field(default_factory=default_home)
    node_modules: Path | None = Field(None, description="Where Azurite is installed; found by default.")
    tenant: str = Field("default", description="The tenant the CLI acts for.")
    domain: str = Field("coding", description="The active domain.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    api_max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # The router caches API-key lookups: a revoked key stops working within this, and while storage is unreachable
    # a cached key is trusted for at most twice this after storage last confirmed it (then 503, fail closed).
    api_key_ttl_s: float = Field(10.0, gt=0, le=300, description="Seconds an API-key lookup is cached (router).")
    # Inference (evaluation, the judge, the router). An Azure OpenAI endpoint without a key uses Entra ID.
    teacher_base_url: str | None = Field(None, description="OpenAI-compatible endpoint serving the teacher.")
    teacher_api_key: SecretStr | None = Field(None, description="Unset on Azure OpenAI: the app's identity is used.")
    student_base_url: str | None = Field(None, description="Endpoint serving hosted students; unset: the teacher's.")
    student_api_key: SecretStr | None = None
    grader_model: str | None = Field(None, description="LLM that grades unscored traces and judges evaluations.")
    grader_base_url: str | None = Field(None, description="Endpoint serving the judge; unset: the teacher's.")
    grader_api_key: SecretStr | None = None
    inference_timeout_s: float = Field(60.0, gt=0, le=600, description="Per model call.")
    inference_concurrency: int = Field(8, ge=1, le=1024, description="Calls in flight per endpoint.")
    # The router (/v1/chat/completions): student time limit before the teacher answers instead, how long a route
    # is cached (route changes take effect within this), connections per upstream, traces buffered before drops.
    router_timeout_s: float = Field(30.0, gt=0, le=600, description="A student's time limit before fallback.")
    router_route_ttl_s: float = Field(2.0, ge=0, le=300, description="Seconds a route lookup is cached.")
    router_concurrency: int = Field(256, ge=1, le=10_000, description="Calls in flight per upstream model.")
    router_trace_queue: int = Field(10_000, ge=1, description="Traces buffered for recording; more are dropped.")
    # USD per million tokens, for the saving a student makes against the teacher. Defaults: OpenAI's list prices
    # (2025) for gpt-4.1 and for a fine-tuned gpt-4.1-mini; set your own (Azure's differ by region and deployment).
    teacher_price_input: float = Field(2.00, ge=0)
    teacher_price_output: float = Field(8.00, ge=0)
    student_price_input: float = Field(0.80, ge=0)
    student_price_output: float = Field(3.20, ge=0)
    # A LoRA-served student's cost is the server's, not per token: set it and `forge economics` shares the server's
    # hourly cost among the domains by their LoRA-served requests each day (docs/router.md "Economics").
    lora_cost_per_hour: float | None = Field(None, ge=0, description="USD an hour of the LoRA server; unset: LoRA "
                                             "students cost FORGE_STUDENT_PRICE_* per token.")
    # Fine-tuning prices (issue 3): a TOML or JSON price table replacing the built-in, dated one.
    price_table: Path | None = Field(None, description="Fine-tuning price table file; unset: built-in prices.")
    notify_url: str | None = Field(None, description="POSTed a JSON summary when a job finishes.")
    # Issue 16: notifications are retried until accepted; Event Grid gets CloudEvents (the app's identity in Azure).
    notify_eventgrid_endpoint: str | None = Field(None, description="Event Grid topic endpoint for job CloudEvents.")
    notify_eventgrid_key: SecretStr | None = Field(None, description="Topic access key; unset: Entra ID.")
    activity_budget_s: float = Field(300.0, gt=0, le=3600, description="Longest one activity may run.")
    provider_outage_s: float = Field(3600.0, ge=0, le=7 * 86400, description="How long a training provider may "
                                     "answer 5xx/429/timeouts before the job fails; waited out on durable timers.")
    # Issue 19: curation maps chunks of the traces on several cores, and in Azure over shards as activities.
    curate_workers: int | None = Field(None, ge=1, le=256, description="Processes curation maps on; unset: all cores.")
    curate_fanout: int = Field(0, ge=0, le=64, description="Shard activities a job's curation runs at once (Durable "
                               "fan-out, parts in Blob); 0: one curate activity with its own process pool.")
    storage_queue_url: str | None = Field(None, description="Queue account URL, used with DefaultAzureCredential.")
    router_capture: bool = Field(True, description="Record router calls as traces (through the capture queue).")
    # LoRA training (issue 4): forge-trainer on this machine (provider `local`) or as an Azure ML job (`azureml`).
    trainer_command: str | None = Field(None, description="Command that runs forge-trainer; unset: the venv's.")
    local_trainer_config: Path | None = Field(None, description="forge-trainer YAML the local provider starts from.")
    azureml_subscription_id: str | None = None
    azureml_resource_group: str | None = None
    azureml_workspace: str | None = None
    azureml_compute: str | None = Field(None, description="The GPU cluster Azure ML training jobs run on.")
    trainer_image: str | None = Field(None, description="The forge-trainer image, e.g. myacr.azurecr.io/forge-trainer:1.")
    # Serving LoRA students (issue 17): a server with the base model that loads students as adapters by name.
    lora_server: Literal["auto", "embedded", "vllm", "transformers"] = Field(
        "auto", description="auto: vLLM when FORGE_LORA_SERVER_URL is set, else the embedded llama.cpp server.")
    lora_server_url: str | None = Field(None, description="A vLLM OpenAI server with runtime LoRA updating.")
    lora_server_api_key: SecretStr | None = Field(None, description="Its key; unset on Azure ML: the app's identity.")
    lora_drain_s: float = Field(30.0, ge=0, le=3600, description="Seconds a retired adapter stays loaded.")
    llama_cpp_scripts: Path | None = Field(None, description="llama.cpp's converter scripts; unset: the venv's.")
    # Hosted fine-tuning (issue 5): Azure OpenAI (Entra ID unless a key is set) or OpenAI, and completion webhooks.
    azure_openai_endpoint: str | None = Field(None, description="Azure OpenAI endpoint that fine-tunes students.")
    azure_openai_api_key: SecretStr | None = Field(None, description="Unset: the app's identity (Entra ID) is used.")
    azure_openai_api_version: str = Field("2025-04-01-preview", min_length=1, description="Data-plane API version.")
    azure_openai_deploy: bool = Field(False, description="Deploy each fine-tuned model so Azure can serve it.")
    azure_openai_resource_id: str | None = Field(None, description="ARM id of the Azure OpenAI account (deploying).")
    azure_openai_deployment_sku: str = Field("Standard", min_length=1, description="SKU of fine-tuned deployments.")
    azure_openai_deployment_capacity: int = Field(1, ge=1, description="Their capacity (thousands of tokens/min).")
    openai_api_key: SecretStr | None = Field(None, description="Key for provider `openai`.")
    openai_base_url: str | None = Field(None, description="Unset: https://api.openai.com/v1.")
    openai_webhook_secret: SecretStr | None = Field(None, description="The whsec_… secret of the OpenAI webhook.")
    eventgrid_webhook_key: SecretStr | None = Field(None, description="Key Event Grid sends as ?code= or a header.")
    # Where model-written benchmark code runs: an Azure Container Apps session pool when set, else a bubblewrap jail.
    sandbox_pool_endpoint: str | None = Field(None, description="Session pool management endpoint (Azure).")
    sandbox_unjailed: bool = Field(False, description="Without bubblewrap, run code with rlimits only (one tenant).")
    # Read under the names Azure sets for every app, not with the FORGE_ prefix.
    applicationinsights_connection_string: SecretStr | None = Field(
        None, validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    applicationinsights_authentication_string: str | None = Field(
        None, validation_alias="APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
    )

    @field_validator("allowed_providers")
    @classmethod
    def _known_providers(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None  # set but empty (as infra may pass it): FORGE_PROVIDER alone
        if value is not None:
            known = {p.value for p in Provider}
            unknown = [p for p in _split(value) if p not in known]
            if unknown or not _split(value):
                raise ValueError(f"unknown providers {unknown or [value]}")
        return value

    @property
    def tenant_providers(self) -> list[str]:
        """The providers a tenant's job may use (FORGE_ALLOWED_PROVIDERS, else FORGE_PROVIDER alone)."""
        return _split(self.allowed_providers) if self.allowed_providers else [self.provider.value]

    @field_validator("schedule_cron")
    @classmethod
    def _cron_has_six_fields(cls, value: str) -> str:
        try:
            parse_cron(value)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("tenant", "domain")
    @classmethod
    def _is_a_name(cls, value: str) -> str:
        if not valid_name(value):
            raise ValueError(NAME_RULE)
        return value

    @field_validator("teacher_base_url", "student_base_url", "grader_model", "grader_base_url",
                     "azure_openai_endpoint", "azure_openai_resource_id", "openai_base_url", "lora_server_url",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value  # Bicep passes '' for "none"

    @field_validator("home", "node_modules", "local_trainer_config", "llama_cpp_scripts")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def uses_managed_azurite(self) -> bool:
        return self.storage_connection is None and not (self.storage_blob_url and self.storage_table_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlFile(settings_cls)


class _TomlFile(PydanticBaseSettingsSource):
    """`$FORGE_HOME/forge.toml`: keys are the variable names without `FORGE_`, in lower case."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _home_from_env() / CONFIG_FILE
        if not path.is_file():
            return {}
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc}); fix or delete it.") from None
        return {k: v for k, v in data.items() if k in self.settings_cls.model_fields}


def _home_from_env() -> Path:
    raw = os.environ.get(f"{ENV_PREFIX}HOME")
    return Path(raw).expanduser() if raw else default_home()


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; any invalid value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        name = f"{ENV_PREFIX}{field.upper()}"
        allowed = _allowed(field)
        got = err.get("input")
        shown = "<hidden>" if field == "storage_connection" or field.endswith(("_key", "_secret")) else repr(got)
        lines.append(f"{name}={shown}: {err['msg']}" + (f" (allowed: {allowed})" if allowed else ""))
    return "Invalid configuration:\n  " + "\n  ".join(lines)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _allowed(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is None:
        return ""
    if field == "provider":
        return ", ".join(p.value for p in Provider)
    if field == "allowed_providers":
        return "a comma-separated list of " + ", ".join(p.value for p in Provider)
    if field == "enabled":
        return "true or false"
    if field == "schedule_cron":
        return "six NCRONTAB fields: second minute hour day month day-of-week, e.g. '0 0 2 * * *'"
    if field in ("tenant", "domain"):
        return NAME_RULE
    bounds = [m for m in info.metadata if hasattr(m, "ge") or hasattr(m, "le")]
    lo = next((m.ge for m in bounds if getattr(m, "ge", None) is not None), None)
    hi = next((m.le for m in bounds if getattr(m, "le", None) is not None), None)
    if lo is not None and hi is not None:
        return f"a number from {lo} to {hi}"
    if lo is not None:
        return f"a number of at least {lo}"
    return ""


def write_setting(settings: Settings, key: str, value: str | int | float | bool) -> Path:
    """Set one key in `$FORGE_HOME/forge.toml`, keeping the others; validated before anything is written."""
    if key not in Settings.model_fields:
        raise ConfigError(f"Unknown setting '{key}'; known: {', '.join(sorted(Settings.model_fields))}.")
    path = settings.config_file
    current: dict[str, Any] = {}
    if path.is_file():
        current = tomllib.loads(path.read_text(encoding="utf-8"))
    current[key] = value
    load_settings(**{k: v for k, v in current.items() if k in Settings.model_fields})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in current.items()), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves a half-written config
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
