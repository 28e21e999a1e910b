"""A ChatClient over a local `transformers` model plus an optional PEFT adapter, on CPU.

The model loads once, on the first call, in a worker thread; generations run one at a time in a worker thread
(`asyncio.to_thread`), so the event loop stays free. Nothing is downloaded: both folders must be local.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import unquote, urlsplit

from forge.domain.models import new_id
from forge.domain.content import content_text
from forge.providers.inference import InferenceError

# Used when a tokenizer has no chat template of its own (tiny test tokenizers, some base models). The trainer's
# fallback must render the same text, or a student would be prompted unlike the way it was taught.
FALLBACK_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def local_path(uri: str) -> Path:
    """A local folder from a path or a `file://` URI; anything else is refused with what to do."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # 'C:' style drive letters are paths, not schemes
        raise InferenceError(
            f"'{uri}' is not a local folder; copy the adapter to this machine and register its path or file:// URI."
        )
    return Path(uri).expanduser()


class LocalModelClient:
    """Greedy (or sampled, when `temperature` > 0) generation with a local base model and adapter."""

    def __init__(self, base_model: str | Path, adapter: str | Path | None = None, *, name: str | None = None,
                 max_new_tokens: int = 256):
        self.base_dir = local_path(str(base_model))
        self.adapter_dir = local_path(str(adapter)) if adapter else None
        self.name = name or (self.adapter_dir or self.base_dir).name
        self.max_new_tokens = max_new_tokens
        self._loaded: tuple[Any, Any] | None = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()  # CPU-bound: one generation at a time is fastest overall

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        text, prompt_tokens, completion_tokens, finish = await asyncio.to_thread(self._generate, body)
        return {
            "id": f"chatcmpl-{new_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The whole answer, generated first, then sent as role, content and finish chunks."""
        completion = await self.complete(body)
        choice = completion["choices"][0]
        base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
                "model": self.name}
        for delta, finish in (({"role": "assistant"}, None), ({"content": choice["message"]["content"]}, None),
                              ({}, choice["finish_reason"])):
            yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    async def aclose(self) -> None:
        self._loaded = None

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._loaded is None:
                try:
                    self._loaded = _load(self.base_dir, self.adapter_dir)
                except (OSError, ValueError, KeyError, RuntimeError) as exc:  # transformers/peft on broken folders
                    raise InferenceError(
                        f"Could not load {self.base_dir} with adapter {self.adapter_dir}: {type(exc).__name__}: "
                        f"{str(exc)[:300]}. Check that both folders hold complete, matching saves."
                    ) from None
            return self._loaded

    def _generate(self, body: dict[str, Any]) -> tuple[str, int, int, str]:
        import torch

        model, tokenizer = self._load()
        messages = [{"role": m.get("role", "user"), "content": content_text(m.get("content"))} for m in body.get("messages", [])]
        if not messages:
            raise InferenceError("The request has no messages; send at least one user message.", upstream_status=400)
        template = None if tokenizer.chat_template else FALLBACK_CHAT_TEMPLATE
        prompt = tokenizer.apply_chat_template(messages, chat_template=template, add_generation_prompt=True,
                                               tokenize=False)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        limit = min(int(body.get("max_completion_tokens") or body.get("max_tokens") or self.max_new_tokens),
                    self.max_new_tokens)
        temperature = float(body.get("temperature") or 0)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": float(body.get("top_p") or 1.0)} \
            if temperature > 0 else {"do_sample": False}
        with self._generate_lock, torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=limit, pad_token_id=tokenizer.pad_token_id
                                    or tokenizer.eos_token_id, **sampling)
        new = output[0][inputs["input_ids"].shape[1]:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        ended = tokenizer.eos_token_id is not None and len(new) and int(new[-1]) == tokenizer.eos_token_id
        finish = "stop" if ended or len(new) < limit else "length"
        text, stopped = _cut_at_stop(text, body.get("stop"))
        return text, int(inputs["input_ids"].shape[1]), int(len(new)), "stop" if stopped else finish


def _load(base_dir: Path, adapter_dir: Path | None) -> tuple[Any, Any]:
    """Model and tokenizer from local folders only; an adapter is merged into the base for faster generation."""
    if not (base_dir / "config.json").is_file():
        raise InferenceError(f"No model at {base_dir} (config.json missing); register the base model's local folder.")
    if adapter_dir is not None and not (adapter_dir / "adapter_config.json").is_file():
        raise InferenceError(f"No PEFT adapter at {adapter_dir} (adapter_config.json missing); check the model's "
                             "adapter URI.")
    import warnings

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a served model loads quietly; its log is the server's, not a progress bar
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    tokenizer_dir = adapter_dir if adapter_dir and (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        # The trainer added chat tokens (its ChatML fallback) and saved the resized embeddings with the adapter.
        model.resize_token_embeddings(len(tokenizer))
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False).merge_and_unload()
    model.eval()
    return model, tokenizer


def _cut_at_stop(text: str, stop: Any) -> tuple[str, bool]:
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str) and s]
    cuts = [text.index(s) for s in stops if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)
