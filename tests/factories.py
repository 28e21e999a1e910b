"""Builders for test records: valid by default, each field overridable."""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from forge.domain.models import DistillationJob, ModelVersion, Trace
from forge.domain.traces import new_trace_id

_counter = itertools.count()


def unique_name(prefix: str) -> str:
    """A tenant or domain name no other test in this session uses."""
    return f"{prefix}{os.getpid()}-{next(_counter)}"


def chat_record(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You write Python."},
            {"role": "user", "content": f"Write a function that returns {i} squared."},
            {"role": "assistant", "content": f"```python\ndef f():\n    return {i} ** 2\n```"},
        ],
        **extra,
    }


def chat_line(i: int = 0, **extra: Any) -> str:
    return json.dumps(chat_record(i, **extra))


def make_trace(tenant: str, domain: str = "coding", *, created_at: datetime | None = None, **fields: Any) -> Trace:
    created_at = created_at or datetime.now(timezone.utc)
    values: dict[str, Any] = {
        "id": new_trace_id(domain, created_at),
        "tenant": tenant,
        "domain": domain,
        "created_at": created_at,
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "response": {"role": "assistant", "content": "4"},
    }
    values.update(fields)
    return Trace(**values)


def make_job(tenant: str, domain: str = "coding", **fields: Any) -> DistillationJob:
    return DistillationJob(tenant=tenant, domain=domain, **fields)


def make_model_version(tenant: str, domain: str = "coding", **fields: Any) -> ModelVersion:
    """A hosted student (`provider_model_id`), in staging unless `stage` says otherwise."""
    values: dict[str, Any] = {"base_model": "gpt-4.1-mini-2025-04-14", "provider_model_id": "ft:gpt-4.1-mini:forge"}
    values.update(fields)
    return ModelVersion(tenant=tenant, domain=domain, **values)


_WORDS = ("parse", "cache", "queue", "vector", "stream", "index", "merge", "token", "graph", "buffer", "retry",
          "schema", "thread", "socket", "matrix", "filter", "router", "ledger", "widget", "sensor", "kernel",
          "bucket", "cursor", "lambda", "tensor", "packet", "record", "signal", "window", "bundle")


def varied_record(i: int, **extra: Any) -> dict[str, Any]:
    """A golden coding trace whose words differ from every other `i`'s (so near-duplicate detection keeps it)."""
    import random

    rng = random.Random(i)
    topic = " ".join(rng.sample(_WORDS, 6))
    body = "\n".join(f"    {w}_{rng.randrange(10**6)} = {rng.choice(_WORDS)}({rng.randrange(999)})"
                     for w in rng.sample(_WORDS, 5))
    record = {
        "messages": [
            {"role": "user", "content": f"Task {i}: write code that handles {topic}."},
            {"role": "assistant", "content": f"```python\ndef task_{i}():\n{body}\n```\nIt handles {topic}."},
        ],
        "score": 95,
        "conversation_id": f"conv-{i}",
    }
    record.update(extra)
    return record


def varied_lines(n: int, start: int = 0, **extra: Any) -> list[str]:
    return [json.dumps(varied_record(i, **extra)) for i in range(start, start + n)]


_TINY_CORPUS = [
    "def add ( a , b ) : return a + b",
    "the answer is a function that returns the square of a number",
    "write python code with tests and explain the important choices",
    "a list a dict a set and a tuple are python data structures",
]


def make_tiny_student(folder: Path, *, seed: int = 0, chat_tokens: bool = False) -> tuple[Path, Path]:
    """A tiny Llama base model with a word-level tokenizer trained here, and a random (not no-op) LoRA adapter
    whose adapter_config names the base folder. Returns (base_dir, adapter_dir); a few seconds on CPU.

    With `chat_tokens`, the adapter is trained the way forge-trainer does for a tokenizer without a chat template:
    ChatML tokens added, embeddings resized, and the tokenizer saved beside the adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    base, adapter = folder / "base", folder / "adapter"
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(_TINY_CORPUS, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id, bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(base)
    fast.save_pretrained(base)
    model = LlamaForCausalLM.from_pretrained(base)  # so the adapter records the base folder it belongs to
    if chat_tokens:
        fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        fast.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                              "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
        model.resize_token_embeddings(len(fast))
        fast.save_pretrained(adapter)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(adapter)
    return base, adapter


def make_training_request(tenant: str, dataset_id: str, base_model: str, **hyperparameters: Any):
    """A TrainingRequest for provider tests, with the given hyperparameters and a fixed seed."""
    from forge.domain.models import new_id
    from forge.providers.training import TrainingRequest

    return TrainingRequest(job_id=new_id(), tenant=tenant, domain="coding", dataset_id=dataset_id,
                           dataset_sha256="", base_model=base_model, suffix="forge-coding-1",
                           hyperparameters=hyperparameters, seed=7)


def wait_for_status(provider: Any, provider_job_id: str, until: Any = None, timeout: float = 20.0):
    """Poll `provider.status` until `until(status)` (default: finished); AssertionError with the last one if not."""
    import time

    until = until or (lambda status: status.state.finished)
    deadline = time.monotonic() + timeout
    while True:
        status = provider.status(provider_job_id)
        if until(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting; last status {status}")
        time.sleep(0.05)


def write_chat_dataset(storage: Any, tenant: str, train: int = 48, valid: int = 8) -> str:
    """A learnable chat dataset (forge_trainer's synthetic colour task) in Blob; returns its dataset id."""
    from forge.domain.models import new_id
    from forge_trainer.tiny import synthetic_records

    dataset_id = new_id()
    storage.datasets.write_file(tenant, dataset_id, "train", synthetic_records(train, seed=1))
    storage.datasets.write_file(tenant, dataset_id, "valid", synthetic_records(valid, seed=2))
    return dataset_id
