"""Base models with no download: a byte-level BPE tokenizer trained here and a small random Llama or Qwen2."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Iterable, Iterator

from forge_trainer.chat import CHATML_SPECIAL_TOKENS, CHATML_TEMPLATE

# name → (hidden, layers, heads, kv heads, intermediate, vocab): "tiny" is a few hundred K parameters for tests,
# "bench" about 30M (the benchmark's 20–50M band), "small" in between for demos.
PRESETS = {
    "tiny": (64, 2, 4, 2, 160, 1024),
    "small": (256, 4, 8, 4, 704, 4096),
    "bench": (512, 8, 8, 4, 1408, 8192),
}
COLORS = ["red", "blue", "green", "amber", "violet", "black", "white", "silver", "orange", "teal"]
NOUNS = ["falcon", "river", "engine", "garden", "lantern", "harbor", "meadow", "canyon", "signal", "temple"]


def corpus() -> Iterator[str]:
    """Built-in tokenizer corpus: chat-shaped English and code, so common words become single tokens."""
    rng = random.Random(0)
    words = COLORS + NOUNS + ["the", "a", "is", "of", "and", "to", "in", "what", "return", "def", "print", "answer",
                              "question", "python", "function", "value", "list", "user", "assistant", "tool"]
    for i in range(3000):
        yield " ".join(rng.choice(words) for _ in range(rng.randint(4, 24))) + f" {i} {i * 7 % 101}."
        yield f"def f{i % 50}(x):\n    return x * {i % 13} + {i % 7}\n"


def train_tokenizer(vocab_size: int, texts: Iterable[str]):
    """A byte-level BPE tokenizer with ChatML specials and chat template, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=CHATML_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build(out: Path, *, preset: str = "tiny", arch: str = "llama", seed: int = 0,
          corpus_file: Path | None = None) -> Path:
    """Write a random-weight causal LM and its tokenizer to `out`, loadable with `from_pretrained(out)`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    hidden, layers, heads, kv_heads, inter, vocab = PRESETS[preset]
    texts = _lines(corpus_file) if corpus_file else corpus()
    tokenizer = train_tokenizer(vocab, texts)
    common = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv_heads, intermediate_size=inter, max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        tie_word_embeddings=False,
        # 1/sqrt(hidden) rather than 0.02: a frozen random LM head that small caps every logit near zero, and no
        # adapter could then move the loss far from ln(vocab).
        initializer_range=hidden**-0.5,
    )
    config = {"llama": LlamaConfig, "qwen2": Qwen2Config}[arch](**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as handle:
        yield from handle


def synthetic_records(count: int, seed: int = 0) -> list[dict]:
    """A learnable task: each noun has a fixed colour; the answer is that colour (multi-turn and tool calls too)."""
    rng = random.Random(seed)
    colour = {noun: COLORS[i] for i, noun in enumerate(NOUNS)}
    records = []
    for i in range(count):
        noun = rng.choice(NOUNS)
        messages = [{"role": "system", "content": "Answer with one colour."},
                    {"role": "user", "content": f"What colour is the {noun}?"},
                    {"role": "assistant", "content": f"The {noun} is {colour[noun]}."}]
        if i % 5 == 1:  # a second turn whose first answer is excluded from the loss
            other = rng.choice(NOUNS)
            messages[2]["weight"] = 0
            messages += [{"role": "user", "content": f"And the {other}?"},
                         {"role": "assistant", "content": f"The {other} is {colour[other]}."}]
        records.append({"messages": messages})
    return records


def write_jsonl(path: Path, records: Iterable[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path
