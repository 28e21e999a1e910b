"""Base models with no download: a tokenizer trained here (byte-level BPE, or SentencePiece for llama.cpp's GGUF
converter) and a small random Llama or Qwen2."""

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
TOKENIZERS = ("bpe", "sentencepiece")
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


def train_sentencepiece_tokenizer(vocab_size: int, texts: Iterable[str], out: Path):
    """A SentencePiece BPE tokenizer (byte fallback, ChatML specials as single pieces), saved with its
    `tokenizer.model` so llama.cpp's GGUF converter takes it (it refuses a `tokenizers` BPE whose pre-tokenizer
    it does not know).

    No dummy prefix and no normalisation: text becomes the same pieces in sentencepiece, transformers and llama.cpp.
    The vocabulary may come out smaller than `vocab_size` on a small corpus.
    """
    import io

    import sentencepiece as spm
    from transformers import AutoTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, hard_vocab_limit=False,
        model_type="bpe", byte_fallback=True, user_defined_symbols=CHATML_SPECIAL_TOKENS, add_dummy_prefix=False,
        normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True,
        allow_whitespace_only_pieces=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        max_sentence_length=1 << 16, num_threads=1, minloglevel=2,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.model").write_bytes(model.getvalue())
    # BOS stays in the vocabulary (llama.cpp expects one) but is never added: prompts are the chat template alone.
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>",
        "pad_token": "<|endoftext|>", "add_bos_token": False, "add_eos_token": False, "legacy": False,
        "add_prefix_space": False,
    }), encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build(out: Path, *, preset: str = "tiny", arch: str = "llama", seed: int = 0,
          corpus_file: Path | None = None, tokenizer_kind: str = "bpe") -> Path:
    """Write a random-weight causal LM and its tokenizer to `out`, loadable with `from_pretrained(out)`.

    `tokenizer_kind="sentencepiece"` also writes `tokenizer.model`, which llama.cpp's GGUF converter needs.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if tokenizer_kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer_kind!r}; choose one of {list(TOKENIZERS)}")
    hidden, layers, heads, kv_heads, inter, vocab = PRESETS[preset]
    texts = _lines(corpus_file) if corpus_file else corpus()
    if tokenizer_kind == "sentencepiece":
        tokenizer = train_sentencepiece_tokenizer(vocab, texts, out)
    else:
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
    if tokenizer_kind == "sentencepiece":
        # transformers 5 saves neither flag nor the specials' table; llama.cpp's converter reads both: without the
        # table the ChatML tokens would be plain text to llama.cpp, not the single control tokens they are here.
        settings = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
        settings.update(add_bos_token=False, add_eos_token=False, added_tokens_decoder={
            str(tokenizer.convert_tokens_to_ids(token)): {"content": token, "lstrip": False, "normalized": False,
                                                          "rstrip": False, "single_word": False, "special": True}
            for token in CHATML_SPECIAL_TOKENS})
        (out / "tokenizer_config.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
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
