"""The trainer's configuration: a YAML file plus `key=value` overrides, validated as a whole before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem and how to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    name_or_path: str = Field(min_length=1, description="A local folder, or a Hugging Face hub id.")
    revision: str | None = None
    local_files_only: bool = False  # HF_HUB_OFFLINE=1 has the same effect
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    quantization: Literal["none", "4bit"] = "none"  # 4bit = QLoRA; needs CUDA and bitsandbytes
    gradient_checkpointing: bool = False
    chat_template: str | None = None  # a Jinja template or a path to one; None → the tokenizer's, else ChatML


class LoraConfig(_Section):
    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Literal["all-linear"] | list[str] = "all-linear"


class DataConfig(_Section):
    train: str = Field(min_length=1, description="JSONL path or https URL (a Blob SAS URL works).")
    valid: str | None = None
    max_seq_length: int = Field(2048, ge=8)
    packing: bool = True  # padding-free rows of several examples; false → right-padded batches


class TrainConfig(_Section):
    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(1, ge=1)  # examples per micro-batch, or rows of max_seq_length tokens when packing
    gradient_accumulation_steps: int = Field(8, ge=1)
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    seed: int = 42
    log_every: int = Field(1, ge=1)
    eval_every: int = Field(50, ge=1)
    save_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1)  # evaluations without improvement before stopping
    threads: int | None = Field(None, ge=1)  # CPU threads for torch; None → torch's default


class OutputConfig(_Section):
    dir: str = Field("out", min_length=1)
    upload_url: str | None = None  # Blob container URL (+ optional SAS, or a managed identity) for the outputs
    merge: bool = False  # also write merged full weights to merged/


class Config(_Section):
    model: ModelConfig
    lora: LoraConfig = LoraConfig()
    data: DataConfig
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _upload_is_a_url(self) -> "Config":
        if self.output.upload_url and not self.output.upload_url.startswith(("https://", "http://")):
            raise ValueError("output.upload_url must be an http(s) Blob container URL")
        return self


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """The YAML at `path` (optional) with `a.b=value` overrides applied; ConfigError lists every problem."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist; pass one of gpu-trainer/configs/*.yaml") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of sections (model, lora, data, train, output)")
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.epochs=2")
        _set(data, key.split("."), yaml.safe_load(raw) if raw else None)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid trainer config:\n  " + "\n  ".join(problems)) from None


def _set(data: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        data = data.setdefault(key, {})
        if not isinstance(data, dict):
            raise ConfigError(f"cannot set {'.'.join(keys)}: {key} is not a section")
    data[keys[-1]] = value
