"""Packing without cross-contamination: packed rows give the logits each example gets alone."""

from __future__ import annotations

import json
import shutil

import torch
from transformers import AutoModelForCausalLM

from forge_trainer import attention, data
from forge_trainer.chat import CHATML_TEMPLATE, tokenize
from forge_trainer.config import load_config
from forge_trainer.modeling import load_tokenizer
from forge_trainer.tiny import synthetic_records


def examples(tokenizer, count):
    return [tokenize(tokenizer, r, i, 512) for i, r in enumerate(synthetic_records(count, seed=3), start=1)]


def test_packed_and_unpacked_logits_match_on_a_tiny_model(tiny_model, tokenizer):
    packed_model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=attention.register())
    plain_model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa")
    dataset = data.Dataset(examples(tokenizer, 4), 4)
    batch = data.collate(dataset, [0, 1, 2, 3], packing=True, pad_id=tokenizer.pad_token_id)
    assert batch.input_ids.shape[0] == 1 and batch.bounds[-1] == batch.input_ids.shape[1]
    with torch.no_grad():
        packed = packed_model(**batch.forward_kwargs()).logits[0]
        alone = torch.cat([plain_model(torch.tensor([e.input_ids])).logits[0] for e in dataset.examples])
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-5)
    # Without the boundaries the same row attends across examples, and the logits differ.
    with torch.no_grad():
        leaky = packed_model(input_ids=batch.input_ids, use_cache=False).logits[0]
    assert not torch.allclose(leaky, alone, atol=1e-3)


def test_right_padded_batches_match_the_examples_alone_too(tiny_model, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=attention.register())
    dataset = data.Dataset(examples(tokenizer, 3), 3)
    batch = data.collate(dataset, [0, 1, 2], packing=False, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(**batch.forward_kwargs()).logits
        for row, example in enumerate(dataset.examples):
            alone = model(input_ids=torch.tensor([example.input_ids]), use_cache=False).logits[0]
            torch.testing.assert_close(logits[row, : len(example.input_ids)], alone, rtol=1e-5, atol=1e-5)


def test_packing_fills_rows_up_to_the_token_budget_in_a_seeded_order(tokenizer):
    dataset = data.Dataset(examples(tokenizer, 30), 30)
    plan = data.plan_epoch(dataset, epoch=0, seed=5, batch_size=2, max_length=128, packing=True)
    assert sorted(i for g in plan.groups for i in g) == list(range(30))
    assert all(sum(len(dataset.examples[i].input_ids) for i in g) <= 256 for g in plan.groups)
    assert plan.groups == data.plan_epoch(dataset, 0, 5, 2, 128, True).groups
    assert plan.groups != data.plan_epoch(dataset, 1, 5, 2, 128, True).groups


def test_a_tokenizer_without_a_chat_template_gets_the_chatml_fallback(tiny_model, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    settings = json.loads((bare / "tokenizer_config.json").read_text())
    settings.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(settings))
    config = load_config(None, [f"model.name_or_path={bare}", "data.train=x.jsonl"])
    tokenizer = load_tokenizer(config.model)
    assert tokenizer.chat_template == CHATML_TEMPLATE
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") != tokenizer.unk_token_id
