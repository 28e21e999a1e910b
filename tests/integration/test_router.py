"""The router over real HTTP: Forge's app on 127.0.0.1 in front of a fake OpenAI-compatible upstream, on Azurite."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import httpx
import openai
import pytest

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.services.capture import drain_once
from forge.storage.traces import TraceRepository
from tests.factories import make_model_version
from tests.fakes.chat_upstream import API_KEY, ChatUpstream, stream_chunks

TEACHER = "gpt-4.1"


@pytest.fixture(scope="module")
def upstream():
    fake = ChatUpstream(hang_s=30)
    with serving(fake.app) as url:
        yield fake, url


@pytest.fixture
def forge(settings, storage, upstream):
    routed = settings.model_copy(update={
        "teacher_base_url": f"{upstream[1]}/v1", "teacher_api_key": API_KEY, "teacher_model": TEACHER,
        "router_timeout_s": 20.0, "router_route_ttl_s": 0.2,
    })
    return bootstrap(routed, storage=storage)


@pytest.fixture
def key(forge, tenant):
    return forge.storage.keys.create(tenant, "router")[0]


@pytest.fixture
def url(forge):
    with serving(create_app(forge)) as base:
        yield base


@pytest.fixture
def call(url, key):
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        def post(content: str = "hello", **body):
            payload = {"model": "forge:coding", "messages": [{"role": "user", "content": content}], **body}
            return client.post("/v1/chat/completions", json=payload)
        post.client = client
        yield post


def route_to(forge, tenant, *, production=None, canary=None, percent=0.0, sticky_by="user"):
    """Register students served by the fake under these provider model names and point the route at them."""
    ids = {}
    for role, name in (("production", production), ("canary", canary)):
        if name:
            stage = "production" if role == "production" else "candidate"
            ids[role] = forge.storage.models.create(make_model_version(tenant, provider_model_id=name,
                                                                       stage=stage)).version_id
    route = forge.storage.routes.get(tenant, "coding").model_copy(update=dict(
        production_model=ids.get("production"), canary_model=ids.get("canary"), canary_percent=percent,
        sticky_by=sticky_by))
    forge.storage.routes.save(route)
    return ids


def router_traces(forge, tenant, expected, timeout_s=20.0):
    """The tenant's router traces once the capture queue is drained (as `forge worker` drains it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        drain_once(forge)
        found = [t for t in forge.storage.traces.scan(tenant, domain="coding") if t.source == "router"]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_domain_without_a_student_is_answered_by_the_teacher_and_the_call_is_recorded(forge, tenant, call):
    response = call("what is 2+2?", user="ada")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == f"{TEACHER}: what is 2+2?"
    assert response.headers["x-forge-route"] == "teacher"
    [trace] = router_traces(forge, tenant, 1)
    assert (trace.model, trace.user, trace.prompt_tokens, trace.metadata["route"]) == (TEACHER, "ada", 7, "teacher")
    assert trace.response["content"] == f"{TEACHER}: what is 2+2?" and trace.latency_ms > 0


def test_the_canary_share_over_1000_users_lies_within_3_points_of_its_weight(forge, tenant, url, key):
    ids = route_to(forge, tenant, production="ft:prod", canary="ft:canary", percent=20)

    async def run() -> list[str]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            async def one(i: int) -> str:
                async with limit:
                    body = {"model": "forge:coding", "user": f"user-{i}", "messages": [{"role": "user", "content": "hi"}]}
                    response = await client.post("/v1/chat/completions", json=body)
                    assert response.status_code == 200, response.text
                    return response.headers["x-forge-model"]
            return await asyncio.gather(*(one(i) for i in range(1000)))

    served = asyncio.run(run())
    share = served.count(ids["canary"]) / len(served) * 100
    assert 17 <= share <= 23, share
    assert set(served) == {ids["canary"], ids["production"]}


def test_a_user_always_lands_on_the_same_model_and_a_conversation_on_the_same_model(forge, tenant, call):
    route_to(forge, tenant, production="ft:prod", canary="ft:canary", percent=50)
    for user in ("ada", "grace", "linus"):
        assert len({call(f"turn {i}", user=user).headers["x-forge-model"] for i in range(8)}) == 1
    ids = route_to(forge, tenant, production="ft:prod", canary="ft:canary", percent=50, sticky_by="conversation")
    deadline = time.monotonic() + 10
    while call().headers["x-forge-model"] not in ids.values() and time.monotonic() < deadline:
        time.sleep(0.05)  # the new route reaches the router within two cache TTLs
    opening = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "plan a trip"}]
    models = set()
    for turn in range(6):  # each turn resends the history, which grows
        history = opening + [{"role": "assistant", "content": "ok"}, {"role": "user", "content": f"more {turn}"}]
        response = call.client.post("/v1/chat/completions", json={"model": "forge:coding", "messages": history})
        models.add(response.headers["x-forge-model"])
    assert len(models) == 1


def test_a_failing_student_falls_back_to_the_teacher(forge, tenant, call):
    ids = route_to(forge, tenant, production="ft:broken")
    response = call("still there?")
    assert response.status_code == 200 and response.headers["x-forge-route"] == "fallback"
    assert response.json()["choices"][0]["message"]["content"] == f"{TEACHER}: still there?"
    [trace] = router_traces(forge, tenant, 1)
    assert trace.model == TEACHER and trace.metadata["fallbackFrom"] == ids["production"]
    assert "500" in trace.metadata["fallbackReason"]


def test_a_hanging_student_times_out_then_the_teacher_answers_plain_and_streaming(forge, tenant, key):
    route_to(forge, tenant, production="ft:slow")
    impatient = bootstrap(forge.settings.model_copy(update={"router_timeout_s": 0.5}), storage=forge.storage)
    with serving(create_app(impatient)) as base, \
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        body = {"model": "forge:coding", "messages": [{"role": "user", "content": "anyone?"}]}
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200 and response.headers["x-forge-route"] == "fallback"
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as streamed:
            assert streamed.headers["x-forge-route"] == "fallback"
            assert sse_payloads(streamed)[-1] == "[DONE]"
    assert "within 0.5s" in router_traces(forge, tenant, 2)[0].metadata["fallbackReason"]


def sse_payloads(response: httpx.Response) -> list:
    out = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_chunks_pass_through_intact_and_the_stream_is_recorded(forge, tenant, call, include_usage):
    ids = route_to(forge, tenant, production="ft:prod")
    body = {"model": "forge:coding", "stream": True, "user": "ada", "messages": [{"role": "user", "content": "a b c"}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with call.client.stream("POST", "/v1/chat/completions", json=body) as streamed:
        assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
        received = sse_payloads(streamed)
    usage = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    assert received == stream_chunks("ft:prod", "ft:prod: a b c", usage if include_usage else None) + ["[DONE]"]
    [trace] = router_traces(forge, tenant, 1)
    assert trace.model == ids["production"] and trace.response == {"role": "assistant", "content": "ft:prod: a b c"}
    assert (trace.prompt_tokens, trace.completion_tokens) == (7, 4)  # asked upstream even when the caller did not


def test_a_stream_that_breaks_after_its_first_chunk_ends_with_an_error_event(forge, tenant, call):
    route_to(forge, tenant, production="ft:midstream")
    with call.client.stream("POST", "/v1/chat/completions", json={
            "model": "forge:coding", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as streamed:
        received = sse_payloads(streamed)
    assert received[0]["choices"][0]["delta"]["role"] == "assistant"
    assert received[-1]["error"]["code"] == "upstream_error"


def test_an_unreachable_capture_queue_does_not_break_calls_and_its_traces_are_held_until_it_is_back(forge, key,
                                                                                                    tenant):
    from azure.storage.queue import QueueServiceClient

    from forge.api.server import free_port

    working = forge.storage.account
    dead = QueueServiceClient(f"http://127.0.0.1:{free_port()}/devstoreaccount1", credential=working.queues.credential)
    broken = dataclasses.replace(forge.storage, account=dataclasses.replace(working, queues=dead))
    app = create_app(bootstrap(forge.settings, storage=broken))
    with serving(app) as base, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        for i in range(5):
            response = client.post("/v1/chat/completions", json={
                "model": "forge:coding", "messages": [{"role": "user", "content": f"q{i}"}]})
            assert response.status_code == 200
        recorder = app.state.chat_router.recorder
        deadline = time.monotonic() + 20  # each capture runs once its answer is sent
        while recorder.stats.deferred < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (recorder.stats.captured, recorder.stats.deferred, recorder.stats.waiting) == (0, 5, 5)
        recorder._storage = forge.storage  # the queue is back
        deadline = time.monotonic() + 20
        while recorder.stats.waiting and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(router_traces(forge, tenant, 5)) == 5


def test_an_unknown_alias_is_a_404_and_a_malformed_body_a_400_in_openai_shape(call):
    unknown = call(model="forge:astrology")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert "forge:coding" in unknown.json()["error"]["message"]
    assert call(model="gpt-4.1").status_code == 404  # a bare model name is not an alias ...
    assert call.client.post("/v1/chat/completions", headers={"X-Forge-Domain": "coding"}, json={
        "model": "anything", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200  # ... unless a header names the domain
    for raw, param in [(b"{not json", None), (b"[1, 2]", None), (b'{"model": "forge:coding"}', "messages"),
                       (b'{"model": "forge:coding", "messages": [{"role": "wizard", "content": "x"}]}',
                        "messages.[0].role"), (b'{"messages": [{"role": "user", "content": "x"}]}', "model")]:
        response = call.client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
        error = response.json()["error"]
        assert response.status_code == 400 and error["type"] == "invalid_request_error" and error["param"] == param
        assert set(error) == {"message", "type", "param", "code"}


def test_no_key_or_a_read_only_key_is_refused_in_openai_shape(url, forge, tenant):
    body = {"model": "forge:coding", "messages": [{"role": "user", "content": "hi"}]}
    anonymous = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    reader = forge.storage.keys.create(tenant, "dashboard", ["read"])[0]
    refused = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403 and "write" in refused.json()["error"]["message"]


def test_the_official_openai_sdk_works_plain_and_streaming(url, key):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": "one two"}]
    completion = client.chat.completions.create(model="forge:coding", messages=messages, user="ada")
    assert completion.choices[0].message.content == f"{TEACHER}: one two" and completion.usage.prompt_tokens == 7
    pieces = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(model="forge:coding", messages=messages, stream=True) if c.choices]
    assert "".join(pieces) == f"{TEACHER}: one two"
    assert "forge:coding" in {m.id for m in client.models.list()}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="forge:astrology", messages=messages)


def test_a_promotion_then_a_rollback_through_the_api_leaves_the_previous_production_model_serving(forge, tenant, call):
    old = route_to(forge, tenant, production="ft:old")["production"]
    new = forge.storage.models.create(make_model_version(tenant, provider_model_id="ft:new")).version_id
    api = call.client

    def served_becomes(expected: str) -> bool:
        deadline = time.monotonic() + 10
        while call("who?").headers["x-forge-model"] != expected:  # within the route cache's TTL, no restart
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    assert served_becomes(old)
    promoted = api.post(f"/api/v1/models/{new}/promote", json={"stage": "production"})
    assert promoted.status_code == 200 and promoted.json()["route"]["productionModel"] == new
    assert served_becomes(new)
    rolled = api.post(f"/api/v1/models/{new}/rollback")
    assert rolled.status_code == 200 and rolled.json()["restored"]["versionId"] == old
    assert served_becomes(old)
    stages = {m["versionId"]: m["stage"] for m in api.get("/api/v1/models").json()["items"]}
    assert stages == {old: "production", new: "archived"}


def test_a_students_own_answers_never_become_its_training_data(forge, tenant, call, tmp_path):
    from forge.domain_templates import load_domains
    from forge.curation import sources as trace_sources
    from forge.curation.curator import Curator, CurationOptions

    assert call("question for the teacher", user="gil").headers["x-forge-route"] == "teacher"
    ids = route_to(forge, tenant, production="ft:prod", canary="ft:canary", percent=50)
    calls, deadline = 1, time.monotonic() + 10
    while call(user="ada").headers["x-forge-model"] not in ids.values() and time.monotonic() < deadline:
        calls += 1  # the new route reaches the router within two cache TTLs
    for user in ("bob", "cy", "dee", "eve", "fay"):
        assert call(f"question from {user}", user=user).status_code == 200
    recorded = router_traces(forge, tenant, calls + 6)
    assert {t.metadata["route"] for t in recorded} == {"production", "canary", "teacher"}
    curator = Curator(CurationOptions(domain=load_domains()["coding"], model="gpt-4.1-mini-2025-04-14"), tmp_path,
                      count=lambda text: len(text.split()))
    curator.run(trace_sources.stored(forge.storage, tenant, "coding", None, None)())
    reasons = {json.loads(line)["id"]: json.loads(line)["reason"]
               for line in (tmp_path / "rejects.jsonl").read_text().splitlines()}
    for trace in recorded:
        assert (reasons[trace.id] == "student_answer") == (trace.metadata["route"] != "teacher"), trace.metadata
