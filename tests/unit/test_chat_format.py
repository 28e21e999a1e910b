"""The OpenAI chat format: examples built from traces, OpenAI's checks by name, and token accounting."""

import pytest

from forge.domain import chat_format
from tests.factories import make_trace


def codes(example):
    return [p.code for p in chat_format.validate(example)]


@pytest.mark.parametrize("example, code", [
    ([{"role": "user"}], "data_type"),
    ({"prompt": "x"}, "missing_messages_list"),
    ({"messages": []}, "missing_messages_list"),
    ({"messages": [{"content": "hi"}, {"role": "assistant", "content": "a"}]}, "message_missing_key"),
    ({"messages": [{"role": "user", "content": "q", "mood": "x"}, {"role": "assistant", "content": "a"}]},
     "message_unrecognized_key"),
    ({"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}, "unrecognized_role"),
    ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "a"}]}, "missing_content"),
    ({"messages": [{"role": "user", "content": 7}, {"role": "assistant", "content": "a"}]}, "missing_content"),
    ({"messages": [{"role": "user", "content": "q"}]}, "example_missing_assistant_message"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]},
     "invalid_weight"),
    ({"messages": [{"role": "user", "content": "q", "name": 5}, {"role": "assistant", "content": "a"}]},
     "invalid_name"),
])
def test_each_openai_format_error_is_named(example, code):
    assert code in codes(example)


def test_a_trace_becomes_a_valid_example_with_the_domains_system_prompt_and_its_tools():
    trace = make_trace("t", messages=[{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "q"}],
                       response={"role": "assistant", "content": None,
                                 "tool_calls": [{"id": "c1", "type": "function",
                                                 "function": {"name": "f", "arguments": "{}"}}]},
                       tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    example = chat_format.to_example(trace, "You help.")
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]  # developer → system
    assert example["messages"][0]["content"] == "Be terse."  # the trace's own system prompt wins
    assert example["tools"] and example["messages"][-1]["tool_calls"][0]["id"] == "c1"
    assert chat_format.validate(example) == []
    bare = chat_format.to_example(make_trace("t"), "You help.")
    assert bare["messages"][0] == {"role": "system", "content": "You help."}


def test_names_and_weights_are_kept():
    trace = make_trace("t", messages=[{"role": "user", "content": "q", "name": "ann"},
                                      {"role": "assistant", "content": "draft", "weight": 0},
                                      {"role": "user", "content": "again"}])
    example = chat_format.to_example(trace)
    assert example["messages"][0]["name"] == "ann" and example["messages"][1]["weight"] == 0


def test_tokens_are_counted_as_openai_counts_a_chat():
    example = {"messages": [{"role": "user", "content": "a b", "name": "x"}, {"role": "assistant", "content": "c"}]}
    total, per_role = chat_format.count_example_tokens(example, lambda text: len(text.split()))
    # 3 priming + (3 + 2 + name 1 + 1) + (3 + 1)
    assert total == 3 + 7 + 4
    assert per_role == {"user": 4, "assistant": 1}


def test_a_name_that_is_not_text_is_not_counted_as_one():
    example = {"messages": [{"role": "user", "content": "a b", "name": 5}, {"role": "assistant", "content": "c"}]}
    total, _ = chat_format.count_example_tokens(example, lambda text: len(text.split()))
    assert total == 3 + 5 + 4
