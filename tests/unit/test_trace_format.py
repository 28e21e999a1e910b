import json
from datetime import datetime, timezone

import pytest

from forge.domain.traces import InvalidTrace, new_trace_id, parse_line, split_trace_id
from tests.factories import chat_line

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def parse(line: str, domain: str = "coding"):
    return parse_line(line, tenant="acme", domain=domain, source="import", now=NOW)


def test_a_chat_line_becomes_prompt_messages_and_the_final_assistant_answer():
    trace = parse(chat_line(3, score=95, feedback="approved", model="gpt-4.1", conversation_id="c1"))
    assert [m["role"] for m in trace.messages] == ["system", "user"]
    assert trace.response["role"] == "assistant" and "3 ** 2" in trace.response["content"]
    assert (trace.score, trace.feedback, trace.model, trace.conversation_id) == (95.0, "approved", "gpt-4.1", "c1")


def test_a_prompt_response_pair_is_accepted_with_an_optional_system_prompt():
    trace = parse(json.dumps({"prompt": "Hi?", "response": "Hello.", "system": "Be brief."}))
    assert trace.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    assert trace.response == {"role": "assistant", "content": "Hello."}


def test_the_trace_id_encodes_domain_and_time_so_it_locates_the_trace():
    trace = parse(chat_line(created_at="2026-10-05T08:30:00.123Z"), domain="legal")
    domain, moment = split_trace_id(trace.id)
    assert domain == "legal"
    assert moment == datetime(2026, 10, 5, 8, 30, 0, 123000, tzinfo=timezone.utc)


def test_a_line_without_a_time_gets_the_import_time():
    assert parse(chat_line()).created_at == NOW


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"messages": [', "invalid_json"),
        ("[1, 2]", "not_an_object"),
        ('{"foo": 1}', "no_messages"),
        ('{"messages": []}', "no_messages"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "no_assistant_response"),
        ('{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}', "bad_message"),
        ('{"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]}', "bad_message"),
        ('{"prompt": "hi", "response": ""}', "no_assistant_response"),
        (chat_line(score=101), "bad_score"),
        (chat_line(score="high"), "bad_score"),
        (chat_line(feedback="good"), "bad_feedback"),
        (chat_line(created_at="yesterday"), "bad_field"),
        (chat_line(domain="Not A Name"), "bad_field"),
        (chat_line(metadata=[1]), "bad_field"),
    ],
)
def test_a_bad_line_is_rejected_with_a_reason(line, reason):
    with pytest.raises(InvalidTrace) as caught:
        parse(line)
    assert caught.value.reason == reason


def test_tool_calls_usage_and_tools_are_kept():
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function",
                                                                  "function": {"name": "w", "arguments": "{}"}}]},
        ],
        "tools": [{"type": "function", "function": {"name": "w"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3},
    }
    trace = parse(json.dumps(record))
    assert trace.response["tool_calls"][0]["function"]["name"] == "w"
    assert trace.tools and (trace.prompt_tokens, trace.completion_tokens) == (12, 3)


def test_something_that_is_not_a_trace_id_is_refused():
    with pytest.raises(InvalidTrace):
        split_trace_id("not-an-id")
    assert split_trace_id(new_trace_id("coding", NOW))[0] == "coding"
