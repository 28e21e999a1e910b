"""The OpenAI-compatible client over real HTTP: answers, streams, retries, timeouts and its concurrency bound."""

import asyncio
import socket

import pytest

from forge.api.server import serving
from forge.providers.inference import InferenceError, answer_text
from forge.providers.openai_compat import OpenAICompatClient
from tests.fakes import chat_upstream
from tests.fakes.eval_upstream import API_KEY, EvalUpstream


@pytest.fixture(scope="module")
def fake():
    upstream = EvalUpstream({"2+2?": "4"}, latency_s=0.05)
    with serving(upstream.app) as url:
        yield upstream, f"{url}/v1"


@pytest.fixture(scope="module")
def hanging():
    upstream = chat_upstream.ChatUpstream(hang_s=1)
    with serving(upstream.app) as url:
        yield f"{url}/v1"


def run(coro):
    return asyncio.run(coro)


async def using(client, action):
    try:
        return await action(client)
    finally:
        await client.aclose()


def ask(text="2+2?"):
    return {"model": "ignored", "messages": [{"role": "user", "content": text}]}


def test_a_completion_is_asked_of_the_configured_model_whatever_the_body_names(fake):
    upstream, url = fake
    client = OpenAICompatClient(url, model="deploy-gold", api_key=API_KEY)
    completion = run(using(client, lambda c: c.complete(ask())))
    assert answer_text(completion) == "4" and upstream.calls[-1]["model"] == "deploy-gold"
    assert upstream.calls[-1]["stream"] is False


def test_a_stream_yields_every_chunk_until_done(fake):
    _, url = fake
    client = OpenAICompatClient(url, model="gold", api_key=API_KEY)

    async def collect(c):
        return [chunk async for chunk in c.stream(ask())]

    chunks = run(using(client, collect))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks) == "4"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_429_is_retried_after_the_time_retry_after_names(fake):
    upstream, url = fake
    before = upstream.calls_to("flaky")
    client = OpenAICompatClient(url, model="gold-flaky", api_key=API_KEY, max_retries=2)
    assert answer_text(run(using(client, lambda c: c.complete(ask())))) == "4"
    assert upstream.calls_to("flaky") - before == 2


def test_a_5xx_is_retried_then_reported_with_the_upstreams_words(fake):
    upstream, url = fake
    before = upstream.calls_to("broken")
    client = OpenAICompatClient(url, model="broken", api_key=API_KEY, max_retries=1)
    with pytest.raises(InferenceError) as caught:
        run(using(client, lambda c: c.complete(ask())))
    assert caught.value.upstream_status == 500 and "the model fell over" in str(caught.value)
    assert upstream.calls_to("broken") - before == 2


def test_a_4xx_is_not_retried(fake, hanging):
    client = OpenAICompatClient(hanging, model="reject-me", api_key=chat_upstream.API_KEY, max_retries=3)
    with pytest.raises(InferenceError) as caught:
        run(using(client, lambda c: c.complete(ask())))
    assert caught.value.upstream_status == 400 and "rejects the request" in str(caught.value)
    wrong_key = OpenAICompatClient(fake[1], model="gold", api_key="sk-wrong")
    with pytest.raises(InferenceError, match="401: bad key"):
        run(using(wrong_key, lambda c: c.complete(ask())))


def test_an_upstream_that_hangs_times_out_without_a_retry(hanging):
    client = OpenAICompatClient(hanging, model="slow", api_key=chat_upstream.API_KEY, timeout_s=0.3)
    with pytest.raises(InferenceError) as caught:
        run(using(client, lambda c: c.complete(ask())))
    assert caught.value.timed_out and "did not answer within 0.3s" in str(caught.value)


def test_a_stream_broken_midway_is_an_inference_error(hanging):
    client = OpenAICompatClient(hanging, model="midstream", api_key=chat_upstream.API_KEY)

    async def drain(c):
        return [chunk async for chunk in c.stream(ask("hello there"))]

    with pytest.raises(InferenceError):
        run(using(client, drain))


def test_an_unreachable_endpoint_is_an_inference_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        client = OpenAICompatClient(f"http://127.0.0.1:{port}/v1", model="m", max_retries=1)
        with pytest.raises(InferenceError, match="unreachable"):
            run(using(client, lambda c: c.complete(ask())))


def test_calls_in_flight_never_exceed_the_concurrency_bound(fake):
    upstream, url = fake
    upstream.max_in_flight = 0
    client = OpenAICompatClient(url, model="gold", api_key=API_KEY, concurrency=2)

    async def many(c):
        return await asyncio.gather(*(c.complete(ask()) for _ in range(8)))

    assert len(run(using(client, many))) == 8
    assert upstream.max_in_flight == 2


def test_an_entra_token_provider_is_asked_for_each_call(fake):
    upstream, url = fake
    tokens = iter(["entra-1", "entra-2"])

    async def token():
        return next(tokens)

    client = OpenAICompatClient(url, model="gold", token_provider=token)

    async def twice(c):
        await c.complete(ask())
        await c.complete(ask())

    run(using(client, twice))
    assert upstream.auth[-2:] == ["Bearer entra-1", "Bearer entra-2"]
