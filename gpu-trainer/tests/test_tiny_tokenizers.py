"""`tiny-model --tokenizer sentencepiece`: a tokenizer llama.cpp's GGUF converter reads, which transformers and
sentencepiece split alike, with the ChatML specials as single tokens and no BOS added."""

from __future__ import annotations

import json

import sentencepiece as spm
from transformers import AutoTokenizer

from forge_trainer import tiny
from forge_trainer.chat import CHATML_SPECIAL_TOKENS

TEXTS = ["What colour is the river?", "def f(x):\n    return x[::-1]  é 漢", "a  b\n\tc 12345"]


def test_a_sentencepiece_tiny_model_tokenizes_as_sentencepiece_does_and_keeps_what_the_converter_reads(tmp_path):
    out = tiny.build(tmp_path / "m", tokenizer_kind="sentencepiece")
    tokenizer = AutoTokenizer.from_pretrained(out)
    pieces = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids == pieces.encode(text) and tokenizer.decode(ids) == text
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(chat, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>") and tokenizer.eos_token == "<|im_end|>"
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is False
    assert {v["content"] for v in config["added_tokens_decoder"].values() if v["special"]} == set(CHATML_SPECIAL_TOKENS)


def test_the_default_tokenizer_is_still_byte_level_bpe(tmp_path):
    out = tiny.build(tmp_path / "m")
    assert not (out / "tokenizer.model").exists()
    assert json.loads((out / "tokenizer.json").read_text())["model"]["type"] == "BPE"
