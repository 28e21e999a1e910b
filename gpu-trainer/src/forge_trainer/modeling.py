"""Base model and tokenizer loading, LoRA (or QLoRA) wrapping, and the assistant-token loss."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from forge_trainer import attention
from forge_trainer.chat import CHATML_TEMPLATE
from forge_trainer.config import Config, ModelConfig


class ModelError(ValueError):
    """The base model or tokenizer cannot be loaded; the message says what to do."""


def check_source(model: ModelConfig) -> None:
    """A name that reads as a path must exist; anything else is a hub id (offline flags are respected)."""
    name = model.name_or_path
    if Path(name).expanduser().exists():
        return
    if name.startswith(("/", "./", "../", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ModelError(f"base model path {name} does not exist; point model.name_or_path at a model folder "
                         "(`forge-trainer tiny-model --out DIR` makes one) or a hub id.")


def device_and_dtype(model: ModelConfig) -> tuple[torch.device, torch.dtype]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if model.dtype != "auto":
        return device, getattr(torch, model.dtype)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return device, torch.bfloat16
    return device, torch.float32  # CPU: float32 keeps CPU runs exact and comparable


def load_tokenizer(model: ModelConfig) -> Any:
    from transformers import AutoTokenizer

    tokenizer = _load(AutoTokenizer.from_pretrained, model)
    if model.chat_template:
        path = Path(model.chat_template).expanduser()
        tokenizer.chat_template = path.read_text(encoding="utf-8") if path.is_file() else model.chat_template
    elif not tokenizer.chat_template:
        # Documented fallback: ChatML, whose <|im_start|>/<|im_end|> are added as special tokens.
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(config: Config, tokenizer: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """The base model with LoRA adapters on it; only the adapters train."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": attention.register()}
    quantized = config.model.quantization == "4bit"
    if quantized:
        if device.type != "cuda":
            raise ModelError("model.quantization=4bit (QLoRA) needs CUDA; use quantization=none on this machine.")
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ModelError("QLoRA needs bitsandbytes: pip install 'forge-trainer[qlora]'.") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": device.index or 0}
    base = _load(AutoModelForCausalLM.from_pretrained, config.model, **kwargs)
    if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(len(tokenizer))  # the ChatML fallback added tokens
    if quantized:
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=config.model.gradient_checkpointing)
    elif config.model.gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False
    lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=config.lora.target_modules, task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    return model if quantized else model.to(device)


def _load(loader: Any, model: ModelConfig, **kwargs: Any) -> Any:
    try:
        return loader(model.name_or_path, revision=model.revision, local_files_only=model.local_files_only,
                      trust_remote_code=model.trust_remote_code, **kwargs)
    except OSError as exc:
        offline = model.local_files_only or os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = "it is not in the local cache and downloads are off" if offline else "check the id and network"
        raise ModelError(f"cannot load {model.name_or_path} ({hint}): {exc}") from None


def parts(model: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder stack and the LM head under the PEFT wrapper (LoRA layers included)."""
    causal = model.get_base_model()
    return getattr(causal, causal.base_model_prefix), causal.get_output_embeddings()


def loss_sum(model: Any, batch: Any) -> torch.Tensor:
    """Summed cross-entropy over the trained tokens only; the LM head runs only where a target exists."""
    decoder, head = parts(model)
    hidden = decoder(**batch.forward_kwargs()).last_hidden_state
    mask = batch.targets != -100
    logits = head(hidden[mask]).float()
    return F.cross_entropy(logits, batch.targets[mask], reduction="sum")


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def total_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
