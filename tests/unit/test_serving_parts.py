"""The router's in-memory parts: the TTL cache, request checks, stream assembly (the trace recorder, which talks to
the capture queue, is tested against Azurite: tests/integration/test_capture_put.py)."""

import asyncio

import pytest

from forge.serving.cache import TtlCache
from forge.serving.errors import RouterError, parse_body
from forge.serving.streams import Assembler


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_serves_a_recently_expired_value_while_reloading_and_reloads_an_old_one_first():
    async def scenario() -> list:
        clock, version = Clock(), [1]
        cache = TtlCache(lambda key: f"{key}-v{version[0]}", 2.0, clock=clock)
        seen = [await cache.get("r")]
        version[0], clock.now = 2, 2.5  # expired less than a TTL ago: old value now, new one loading
        seen.append(await cache.get("r"))
        await asyncio.sleep(0.05)
        seen.append(await cache.get("r"))
        version[0], clock.now = 3, 10.0  # long expired: reloaded before answering
        seen.append(await cache.get("r"))
        return seen

    assert asyncio.run(scenario()) == ["r-v1", "r-v1", "r-v2", "r-v3"]


def test_a_failing_loader_keeps_the_last_value_or_uses_the_fallback_or_raises():
    async def scenario() -> list:
        clock, broken = Clock(), [False]

        def load(key: str) -> str:
            if broken[0]:
                raise ConnectionError("storage down")
            return "fresh"

        cache = TtlCache(load, 1.0, clock=clock)
        first = await cache.get("k")
        broken[0], clock.now = True, 5.0
        kept = await cache.get("k")
        with_fallback = await TtlCache(load, 1.0, fallback=lambda key: "teacher").get("other")
        with pytest.raises(ConnectionError):
            await TtlCache(load, 1.0).get("other")
        return [first, kept, with_fallback]

    assert asyncio.run(scenario()) == ["fresh", "fresh", "teacher"]


@pytest.mark.parametrize("raw,param", [
    (b"{oops", None), (b'"text"', None), (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
    (b'{"model": "forge:coding", "messages": []}', "messages"),
    (b'{"model": "forge:coding", "messages": ["hi"]}', "messages.[0]"),
    (b'{"model": "forge:coding", "messages": [{"content": "x"}]}', "messages.[0].role"),
    (b'{"model": "forge:coding", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
])
def test_a_malformed_body_is_a_400_naming_the_field(raw, param):
    with pytest.raises(RouterError) as caught:
        parse_body(raw)
    assert caught.value.status == 400 and caught.value.param == param


def test_chunks_are_assembled_into_the_assistant_message_with_tool_calls_and_usage():
    assembler = Assembler()
    for chunk in [
        {"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}, {"index": 1, "delta": {"content": "ignored"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get", "arguments": '{"a"'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    ]:
        assembler.add(chunk)
    assert assembler.message() == {"role": "assistant", "content": "Hello", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get", "arguments": '{"a": 1}'}}]}
    assert (assembler.usage["prompt_tokens"], assembler.finish_reason, assembler.model) == (5, "tool_calls", "m")
