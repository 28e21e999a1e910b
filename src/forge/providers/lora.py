"""What the LoRA providers (`local`, `azureml`) share: forge-trainer overrides from a request, loss points back."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from forge.providers.training import ProviderEvent, ProviderRejected, TrainingRequest

TRAINER_DEFAULT_LR = 2e-4  # forge-trainer's own default `train.lr`
# Request hyperparameter → trainer config key. OpenAI's names come first, so one job config fits every provider.
HYPERPARAMETERS = {
    "n_epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "learning_rate": "train.lr",
    "lora_r": "lora.r",
    "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout",
    "target_modules": "lora.target_modules",
    "max_seq_length": "data.max_seq_length",
    "packing": "data.packing",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "max_steps": "train.max_steps",
    "warmup_ratio": "train.warmup_ratio",
    "weight_decay": "train.weight_decay",
    "eval_every": "train.eval_every",
    "save_every": "train.save_every",
    "early_stopping_patience": "train.early_stopping_patience",
    "gradient_checkpointing": "model.gradient_checkpointing",
    "quantization": "model.quantization",
    "merge": "output.merge",
    "threads": "train.threads",
}
# Trainer options that reach code, files or the network (model.trust_remote_code, model.chat_template,
# model.name_or_path, output.upload_url, data.*) are never taken from a job: only the mapping above is, and the
# provider sets the rest from server configuration.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def check_base_model(base_model: str) -> None:
    """A local model folder (absolute) or a Hugging Face hub id; a hosted model name (gpt-…) cannot be LoRA-trained."""
    folder = Path(base_model).expanduser()
    if (folder.is_absolute() and folder.is_dir()) or (HUB_ID.fullmatch(base_model) and not base_model.startswith(".")):
        return
    raise ProviderRejected(
        f"Base model '{base_model}' is neither a model folder nor a Hugging Face id (org/name). LoRA training needs "
        "open weights: set FORGE_STUDENT_BASE_MODEL (or the job's base_model) to one, e.g. Qwen/Qwen2.5-0.5B-Instruct "
        "or a folder made by `forge-trainer tiny-model --out DIR`."
    )


def trainer_overrides(request: TrainingRequest, *, base_lr: float = TRAINER_DEFAULT_LR) -> list[str]:
    """`key=value` overrides for the request's base model, seed and hyperparameters; unknown names are refused."""
    check_base_model(request.base_model)
    overrides = [f"model.name_or_path={request.base_model}", f"train.seed={request.seed}"]
    unknown = []
    for name, value in sorted(request.hyperparameters.items()):
        if value is None or value == "auto":  # OpenAI's "let the provider choose"
            continue
        if name == "learning_rate_multiplier":
            overrides.append(f"train.lr={base_lr * float(value)!r}")
        elif name in HYPERPARAMETERS:
            overrides.append(f"{HYPERPARAMETERS[name]}={_yaml(value)}")
        else:
            unknown.append(name)
    if unknown:
        raise ProviderRejected(
            f"Unknown hyperparameters {unknown}; use {sorted(HYPERPARAMETERS)} or learning_rate_multiplier."
        )
    return overrides


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def metrics_events(lines: Iterable[str], after: str | None) -> list[ProviderEvent]:
    """One `metrics` event per metrics.jsonl line (step, loss, valid_loss…) after line `after`; ids are line numbers."""
    start = int(after or 0)
    events = []
    for number, line in enumerate(lines, start=1):
        if number <= start or not line.strip():
            continue
        try:
            point = json.loads(line)
        except json.JSONDecodeError:
            break  # the trainer is writing this line now; it comes next time
        message = f"step {point.get('step')}: loss {point.get('loss')}" + (
            f", valid_loss {point['valid_loss']}" if "valid_loss" in point else "")
        events.append(ProviderEvent(id=str(number), type="metrics", message=message, data=point))
    return events
