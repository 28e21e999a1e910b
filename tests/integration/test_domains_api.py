"""A tenant's own domains over the real API on Azurite: created from a template or settings, versioned, validated
field by field, exported, disabled, deleted with care, isolated per tenant, and served by the router."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import Route
from tests.factories import chat_record, make_model_version
from tests.fakes.chat_upstream import API_KEY, ChatUpstream

SUPPORT = {
    "description": "Support tickets routed to a team",
    "system_prompt": "Route the ticket. Answer 'team: NAME'.",
    "task": {"type": "classification", "parse": r"team:\s*(\w+)", "labels": ["billing", "shipping", "account"]},
    "gates": {"min_eval_examples": 15, "max_gap_to_teacher": 20},
    "filters": {"min_response_chars": 5},
}
TASK = '{"id": "t1", "category": "billing", "prompt": "I was charged twice.", "gold_answer": "team: billing", ' \
       '"format": "text", "checks": {"regex": ["team:\\\\s*billing"]}}'


@pytest.fixture(scope="module")
def upstream():
    fake = ChatUpstream()
    with serving(fake.app) as url:
        yield fake, f"{url}/v1"


@pytest.fixture
def forge(settings, storage, upstream):
    routed = settings.model_copy(update={"teacher_base_url": upstream[1], "teacher_api_key": API_KEY,
                                         "teacher_model": "gpt-4.1", "router_route_ttl_s": 0.2})
    return bootstrap(routed, storage=storage)


def create(api, name="support", **body):
    return api.post("/api/v1/domains", json={"name": name, **(body or {"config": SUPPORT})})


def test_a_domain_created_from_settings_is_version_1_and_listed_beside_the_templates(keyed_api):
    response = create(keyed_api)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["name"], created["version"], created["enabled"], created["source"]) == ("support", 1, True, "api")
    assert created["config"]["task"]["labels"] == ["billing", "shipping", "account"]
    assert created["config"]["model_prefix"] == "forge-support" and created["actor"] == "api key test"
    listed = {row["name"]: row for row in keyed_api.get("/api/v1/domains").json()["items"]}
    assert listed["support"]["kind"] == "tenant" and listed["support"]["task"] == "classification"
    assert listed["coding"]["kind"] == "template" and listed["coding"]["version"] is None
    assert create(keyed_api).status_code == 409  # a second create does not overwrite


def test_a_template_copy_carries_its_tasks_and_the_template_is_unchanged_for_everyone(keyed_api, forge):
    copied = create(keyed_api, "mylegal", **{"from": "legal"}).json()
    assert copied["source"] == "template:legal" and copied["benchmark"]["tasks"] >= 15
    assert copied["config"]["model_prefix"] == "forge-mylegal"
    keyed_api.patch("/api/v1/domains/mylegal", json={"set": {"gates.min_score": 80}})
    assert forge.domains["legal"].gates.min_score == 60  # the packaged template is read-only
    assert keyed_api.get("/api/v1/domains/legal").json()["config"]["gates"]["min_score"] == 60


def test_every_change_is_a_new_version_saying_when_what_and_who_and_no_change_makes_none(keyed_api):
    create(keyed_api)
    edited = keyed_api.patch("/api/v1/domains/support", json={"set": {"gates.min_score": 70, "trigger_threshold": 50}})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    assert edited.json()["change"] == ["gates.min_score: 60.0 → 70.0", "trigger_threshold: unset → 50"]
    whole = {**SUPPORT, "description": "Tickets"}
    replaced = keyed_api.put("/api/v1/domains/support", json=whole).json()
    assert replaced["version"] == 3 and replaced["config"]["gates"]["min_score"] == 60  # PUT replaces every setting
    assert keyed_api.put("/api/v1/domains/support", json=whole).json()["version"] == 3
    versions = keyed_api.get("/api/v1/domains/support/versions").json()["items"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["source"] for v in versions] == ["api", "edit", "edit"]
    assert all(v["updatedAt"] and v["actor"] == "api key test" for v in versions)
    assert versions[1]["config"]["gates"]["min_score"] == 70  # each version keeps the settings it had


@pytest.mark.parametrize("config,named", [
    ({**SUPPORT, "colour": "blue"}, "domain: unknown key 'colour'; allowed:"),
    ({**SUPPORT, "gates": {"min_score": "high"}}, "gates.min_score: Input should be a valid number"),
    ({**SUPPORT, "scoring": {"structure": 0.9}}, "scoring: scoring weights must add up to 1"),
    ({**SUPPORT, "task": {"type": "classification", "parse": "(team"}}, "task.parse: regex '(team' does not compile"),
])
def test_a_bad_field_is_a_422_naming_it_and_nothing_is_stored(keyed_api, config, named):
    response = create(keyed_api, config=config)
    assert response.status_code == 422 and named in response.json()["detail"]
    assert keyed_api.get("/api/v1/domains/support").status_code == 404
    create(keyed_api)
    assert keyed_api.put("/api/v1/domains/support", json=config).status_code == 422
    assert keyed_api.get("/api/v1/domains/support").json()["version"] == 1


def test_benchmark_tasks_are_checked_line_by_line_and_a_bad_one_stores_nothing(keyed_api):
    create(keyed_api)
    bad = keyed_api.put("/api/v1/domains/support/benchmark", content=TASK + "\n{oops\n")
    assert bad.status_code == 422 and "line 2 is not valid JSON" in bad.json()["detail"]
    assert keyed_api.get("/api/v1/domains/support").json()["benchmark"] is None
    bad_regex = TASK.replace("team:", "(team:")
    assert "does not compile" in keyed_api.put("/api/v1/domains/support/benchmark", content=bad_regex).json()["detail"]
    good = keyed_api.put("/api/v1/domains/support/benchmark", content=TASK + "\n")
    assert good.status_code == 200 and good.json()["benchmark"]["tasks"] == 1 and good.json()["version"] == 2
    removed = keyed_api.delete("/api/v1/domains/support/benchmark").json()
    assert removed["benchmark"] is None and removed["version"] == 3


def test_an_export_creates_the_same_domain_again(keyed_api):
    create(keyed_api)
    toml = keyed_api.get("/api/v1/domains/support/export")
    assert toml.status_code == 200 and toml.headers["content-type"].startswith("application/toml")
    assert 'type = "classification"' in toml.text
    as_json = keyed_api.get("/api/v1/domains/support/export", params={"format": "json"}).json()
    as_json.pop("name")
    copy = create(keyed_api, "support-copy", config=as_json).json()
    original = keyed_api.get("/api/v1/domains/support").json()["config"]
    assert {**copy["config"], "name": "support", "model_prefix": "forge-support"} == original


def test_deleting_a_domain_that_serves_traffic_asks_for_force_and_says_what_it_stops(keyed_api, forge, tenant):
    create(keyed_api)
    student = forge.storage.models.create(make_model_version(tenant, "support", stage="production"))
    forge.storage.routes.save(Route(tenant=tenant, domain="support", production_model=student.version_id))
    refused = keyed_api.delete("/api/v1/domains/support")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert f"student {student.version_id} in production" in detail and "forge:support on the router" in detail
    assert "--force" in detail and "force=true" in detail
    assert keyed_api.get("/api/v1/domains/support").status_code == 200  # still there
    deleted = keyed_api.delete("/api/v1/domains/support", params={"force": "true"})
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert keyed_api.get("/api/v1/domains/support").status_code == 404
    assert [v["version"] for v in keyed_api.get("/api/v1/domains/support/versions").json()["items"]] == [1, 2]
    recreated = create(keyed_api).json()
    assert recreated["version"] == 3  # the name's history goes on


def test_a_domain_without_traffic_is_deleted_without_force_and_a_template_cannot_be(keyed_api):
    create(keyed_api)
    assert keyed_api.delete("/api/v1/domains/support").status_code == 200
    refused = keyed_api.delete("/api/v1/domains/coding")
    assert refused.status_code == 422 and "packaged template, which is read-only" in refused.json()["detail"]


def test_a_disabled_domain_takes_no_traces_or_routed_calls_until_enabled(keyed_api, key, api):
    create(keyed_api)
    assert keyed_api.post("/api/v1/domains/support/disable").json()["enabled"] is False
    ingest = keyed_api.post("/api/v1/traces", json={"domain": "support", "traces": [chat_record(1)]})
    assert ingest.status_code == 409 and "forge domain enable support" in ingest.json()["detail"]
    client = openai.OpenAI(base_url=f"{api.base_url}/v1", api_key=key, max_retries=0)
    assert "forge:support" not in [m.id for m in client.models.list()]
    with pytest.raises(openai.NotFoundError, match="forge:support"):
        client.chat.completions.create(model="forge:support", messages=[{"role": "user", "content": "hi"}])
    keyed_api.post("/api/v1/domains/support/enable")
    assert keyed_api.post("/api/v1/traces", json={"domain": "support", "traces": [chat_record(1)]}).status_code == 201
    reply = client.chat.completions.create(model="forge:support", messages=[{"role": "user", "content": "refund?"}])
    assert reply.choices[0].message.content == "gpt-4.1: refund?"  # the teacher answers until a student is promoted


def test_another_tenants_domains_are_invisible_and_untouched(keyed_api, forge, api):
    create(keyed_api)
    other = forge.storage.keys.create("other-tenant", "test")[0]
    headers = {"X-API-Key": other}
    assert api.get("/api/v1/domains/support", headers=headers).status_code == 404
    assert "support" not in [r["name"] for r in api.get("/api/v1/domains", headers=headers).json()["items"]]
    for method, path, body in (("PATCH", "", {"set": {"gates.min_score": 1}}), ("DELETE", "", None),
                               ("POST", "/disable", None), ("PUT", "/benchmark", None)):
        response = api.request(method, f"/api/v1/domains/support{path}", headers=headers, json=body,
                               content=TASK if path == "/benchmark" else None)
        assert response.status_code in (404, 422), (method, path, response.text)
    mine = keyed_api.get("/api/v1/domains/support").json()
    assert (mine["version"], mine["enabled"], mine["config"]["gates"]["min_score"]) == (1, True, 60)
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(base_url=f"{api.base_url}/v1", api_key=other, max_retries=0).chat.completions.create(
            model="forge:support", messages=[{"role": "user", "content": "hi"}])


def test_a_tenants_record_of_a_templates_name_overrides_it_for_that_tenant_only(keyed_api, forge, api):
    keyed_api.patch("/api/v1/domains/legal", json={"set": {"gates.min_score": 75}})  # copies the template first
    versions = keyed_api.get("/api/v1/domains/legal/versions").json()["items"]
    assert [(v["version"], v["source"]) for v in versions] == [(1, "template:legal"), (2, "edit")]
    other = {"X-API-Key": forge.storage.keys.create("another-tenant", "test")[0]}
    assert api.get("/api/v1/domains/legal", headers=other).json()["config"]["gates"]["min_score"] == 60
    assert api.get("/api/v1/domains/legal", headers=other).json()["kind"] == "template"


def test_concurrent_edits_each_get_their_own_version_and_none_is_lost(keyed_api, forge, tenant):
    from forge.services import domains

    create(keyed_api)
    start = threading.Barrier(4)

    def edit(i: int) -> None:
        start.wait()
        domains.edit(forge, tenant, "support", settings={"task.labels": ["billing", "shipping", "account", f"x{i}"]}
                     if i == 0 else {"gates.min_score": 60 + i}, actor=f"writer {i}")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = keyed_api.get("/api/v1/domains/support/versions").json()["items"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4, 5]
    assert sorted(v["actor"] for v in versions[1:]) == ["writer 0", "writer 1", "writer 2", "writer 3"]
    assert keyed_api.get("/api/v1/domains/support").json()["config"]["task"]["labels"][-1] == "x0"


def test_bad_domain_names_are_a_422_naming_the_parameter(keyed_api):
    assert keyed_api.get("/api/v1/domains/Bad..Name").status_code == 422
    response = keyed_api.post("/api/v1/domains", json={"name": "../x", "config": SUPPORT})
    assert response.status_code == 422 and "name" in response.json()["detail"]
    assert keyed_api.post("/api/v1/domains", json={"name": "x", "from": "coding", "config": SUPPORT}).status_code == 422


def test_the_router_lists_and_serves_a_created_domain_as_forge_name(keyed_api, key, api):
    before = httpx.get(f"{api.base_url}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    assert "forge:support" not in [m["id"] for m in before]
    create(keyed_api)
    client = openai.OpenAI(base_url=f"{api.base_url}/v1", api_key=key, max_retries=0)
    assert "forge:support" in [m.id for m in client.models.list()]
    assert client.chat.completions.create(model="forge:support", messages=[{"role": "user", "content": "x"}]) \
        .choices[0].message.content == "gpt-4.1: x"
