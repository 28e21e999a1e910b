"""The loss mask: only assistant turns with weight 1 carry loss, tool calls included; user tokens never do."""

from __future__ import annotations

import pytest

from forge_trainer.chat import CHATML_TEMPLATE, DataError, tokenize
from forge_trainer.tiny import synthetic_records, train_tokenizer

TOOL_RECORD = {
    "messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "assistant", "content": "It rains in Oslo."},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
}


def trained_text(tokenizer, example) -> str:
    return tokenizer.decode([t for t in example.targets if t != -100])


def test_only_the_assistant_answer_and_its_end_token_carry_loss(tokenizer):
    record = {"messages": [{"role": "user", "content": "What colour is the river?"},
                           {"role": "assistant", "content": "The river is blue."}]}
    example = tokenize(tokenizer, record, 1, 512)
    assert trained_text(tokenizer, example) == "The river is blue.<|im_end|>\n"
    assert "river?" not in trained_text(tokenizer, example)


def test_a_weight_zero_turn_is_context_but_not_learned(tokenizer):
    record = synthetic_records(2, seed=0)[1]  # the second record has a weight-0 first answer
    first, second = record["messages"][2], record["messages"][4]
    assert first["weight"] == 0
    text = trained_text(tokenizer, tokenize(tokenizer, record, 1, 512))
    assert text == second["content"] + "<|im_end|>\n"
    assert first["content"] in tokenizer.decode(tokenize(tokenizer, record, 1, 512).input_ids)


def test_tool_calls_and_the_answer_after_a_tool_result_are_learned_but_the_tool_result_is_not(tokenizer):
    text = trained_text(tokenizer, tokenize(tokenizer, TOOL_RECORD, 1, 512))
    assert text == ('<tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call><|im_end|>\n'
                    "It rains in Oslo.<|im_end|>\n")


def test_targets_are_shifted_so_each_position_predicts_the_next_token(tokenizer):
    example = tokenize(tokenizer, synthetic_records(1)[0], 1, 512)
    for i, target in enumerate(example.targets):
        assert target == -100 or target == example.input_ids[i + 1]
    assert example.targets[-1] == -100


def test_an_example_whose_every_token_is_masked_is_rejected_with_its_line(tokenizer):
    record = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 0}]}
    with pytest.raises(DataError, match="line 7: no assistant message with weight 1"):
        tokenize(tokenizer, record, 7, 512)


def test_truncation_that_cuts_every_answer_token_drops_the_example(tokenizer):
    assert tokenize(tokenizer, synthetic_records(1)[0], 1, 8) is None


def test_a_template_that_rewrites_earlier_turns_is_refused_with_a_remedy(tokenizer):
    tokenizer = train_tokenizer(300, ["a b c"] * 10)
    tokenizer.chat_template = "{% for m in messages %}{{ m.content }}|{{ messages | length }}{% endfor %}"
    record = {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    with pytest.raises(DataError, match="model.chat_template"):
        tokenize(tokenizer, record, 1, 64)


def test_the_chatml_fallback_is_the_tiny_models_template(tokenizer):
    assert tokenizer.chat_template == CHATML_TEMPLATE
