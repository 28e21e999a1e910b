"""Tenant isolation over real HTTP: tenant B's key on tenant A's objects is a 404 that changes nothing, and an id
that is not of its format is a 422 before any route code or storage sees it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import Forge, bootstrap
from forge.config import load_settings
from forge.domain.models import JobEvent, new_id
from tests.factories import make_job, make_model_version, unique_name, varied_lines, varied_record


@dataclass
class World:
    """Tenant A's objects, and a key for A and for B (who has nothing)."""

    forge: Forge
    api: httpx.Client
    a: str
    b: str
    key_a: str
    key_b: str
    trace_id: str
    dataset_id: str
    imported_job_id: str
    job_id: str
    model_id: str

    def as_a(self) -> dict[str, str]:
        return {"X-API-Key": self.key_a}

    def as_b(self) -> dict[str, str]:
        return {"X-API-Key": self.key_b}


@pytest.fixture(scope="module")
def world(azurite, storage, tmp_path_factory) -> Any:
    # Module scope: the setup (two curations) is the slow part, and no test here changes A's objects on success.
    with pytest.MonkeyPatch.context() as env:
        for name in [k for k in os.environ if k.startswith("FORGE_")]:
            env.delenv(name)
        settings = load_settings(storage_connection=azurite.connection_string,
                                 home=tmp_path_factory.mktemp("isolation") / "forge-home")
    forge = bootstrap(settings, storage=storage)
    a, b = unique_name("ta"), unique_name("tb")
    key_a, key_b = storage.keys.create(a, "a")[0], storage.keys.create(b, "b")[0]
    with serving(create_app(forge)) as url, httpx.Client(base_url=url, timeout=60) as api:  # no engine attached
        auth = {"X-API-Key": key_a}
        ingested = api.post("/api/v1/traces", json={"traces": [varied_record(i) for i in range(12)]}, headers=auth)
        assert ingested.status_code == 201, ingested.text
        uploaded = api.post("/api/v1/datasets", params={"format": "jsonl"}, content="\n".join(varied_lines(12)),
                            headers=auth)
        assert uploaded.status_code == 201, uploaded.text
        imported_job_id = new_id()
        imported = api.post("/api/v1/datasets/import-from-traces", json={"jobId": imported_job_id, "validShare": 0},
                            headers=auth)
        assert imported.status_code == 201, imported.text
        job = storage.jobs.create(make_job(a))
        storage.events.append(job.job_id, *[JobEvent(job_id=job.job_id, type="loss", data={"loss": i})
                                            for i in range(3)])
        model = storage.models.create(make_model_version(a))
        yield World(forge, api, a, b, key_a, key_b, trace_id=ingested.json()["ids"][0],
                    dataset_id=uploaded.json()["datasetId"], imported_job_id=imported_job_id, job_id=job.job_id,
                    model_id=model.version_id)


def snapshot(w: World) -> dict[str, Any]:
    """Everything of A's that a cross-tenant call could change, ETags included (any write changes them)."""
    s = w.forge.storage
    dataset, job = s.datasets.get(w.a, w.dataset_id), s.jobs.get(w.a, w.job_id)
    model, trace = s.models.find(w.a, w.model_id), s.traces.get(w.a, w.trace_id)
    route = s.routes.get(w.a, "coding")  # a fresh, unsaved one (no ETag) until a promotion stores it
    return {
        "dataset": (dataset.etag, dataset.public()),
        "datasets": sorted(d.dataset_id for d in s.datasets.scan(w.a)),
        "job": (job.etag, job.public()),
        "events": [e.public() for e in s.events.list(w.job_id).items],
        "model": (model.etag, model.public()),
        "route": (route.etag, route.public()) if route.etag else None,
        "trace": (trace.etag, trace.public()),
        "keys": [(k.etag, k.public()) for k in s.keys.list(w.a).items],
    }


CROSS_TENANT = {
    "trace feedback": ("PATCH", "/api/v1/traces/{trace_id}/feedback", {"feedback": "rejected"}),
    "trace score": ("PATCH", "/api/v1/traces/{trace_id}/feedback", {"score": 1}),
    "dataset get": ("GET", "/api/v1/datasets/{dataset_id}", None),
    "dataset validate": ("POST", "/api/v1/datasets/{dataset_id}/validate", None),
    "dataset delete": ("DELETE", "/api/v1/datasets/{dataset_id}", None),
    "dataset estimate": ("POST", "/api/v1/forge/jobs/estimate-cost", {"datasetId": "{dataset_id}"}),
    "job get": ("GET", "/api/v1/forge/jobs/{job_id}", None),
    "job events": ("GET", "/api/v1/forge/jobs/{job_id}/events", None),
    "job cancel": ("POST", "/api/v1/forge/jobs/{job_id}/cancel", None),
    "job sync": ("POST", "/api/v1/forge/jobs/{job_id}/sync", None),
    "model get": ("GET", "/api/v1/models/{model_id}", None),
    "model promote": ("POST", "/api/v1/models/{model_id}/promote", {"stage": "production"}),
    "model rollback": ("POST", "/api/v1/models/{model_id}/rollback", None),
    "model archive": ("POST", "/api/v1/models/{model_id}/archive", None),
    "dataset update": ("PUT", "/api/v1/datasets/{dataset_id}", {"name": "mine now"}),
    "job update": ("PUT", "/api/v1/forge/jobs/{job_id}", {"tags": ["mine"]}),
    "job from dataset": ("POST", "/api/v1/forge/jobs", {"datasetId": "{dataset_id}"}),
    "model update": ("PUT", "/api/v1/models/{model_id}", {"description": "mine now"}),
    "model delete": ("DELETE", "/api/v1/models/{model_id}", None),
    "model deploy": ("POST", "/api/v1/models/{model_id}/deploy", {"domain": "legal"}),
    "model export": ("POST", "/api/v1/models/{model_id}/export", {"format": "peft"}),
}


def _fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    return template


def _without(detail: str, ids: dict[str, str]) -> str:
    for value in ids.values():
        detail = detail.replace(value, "<id>")
    return detail


@pytest.mark.parametrize("route", CROSS_TENANT)
def test_another_tenants_key_on_a_tenants_object_is_a_404_and_changes_nothing(world, route):
    method, path, body = CROSS_TENANT[route]
    real = {"trace_id": world.trace_id, "dataset_id": world.dataset_id, "job_id": world.job_id,
            "model_id": world.model_id}
    before = snapshot(world)
    response = world.api.request(method, _fill(path, real), json=_fill(body, real), headers=world.as_b())
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert snapshot(world) == before  # which also shows the object is still there for A
    # B learns nothing: the answer reads as for an id no one holds
    nobody = {"trace_id": f"coding.{new_id()}", "dataset_id": new_id(), "job_id": new_id(), "model_id": new_id()}
    missing = world.api.request(method, _fill(path, nobody), json=_fill(body, nobody), headers=world.as_b())
    assert _without(response.json()["detail"], real) == _without(missing.json()["detail"], nobody)
    if method == "GET":
        assert world.api.get(_fill(path, real), headers=world.as_a()).status_code == 200


def test_another_tenant_importing_with_a_tenants_job_id_gets_none_of_its_dataset_or_traces(world):
    before = snapshot(world)
    response = world.api.post("/api/v1/datasets/import-from-traces",
                              json={"jobId": world.imported_job_id, "validShare": 0}, headers=world.as_b())
    assert response.status_code == 409 and "more are needed" in response.json()["detail"]  # B has no traces
    assert world.api.get("/api/v1/datasets", params={"include_deleted": True}, headers=world.as_b()).json() == {
        "items": [], "continuation": None}
    assert snapshot(world) == before


def test_another_tenant_cannot_revoke_a_tenants_key_from_the_cli(world, forge_cli):
    key_id = world.forge.storage.keys.authenticate(world.key_a).key_hash[:12]
    before = snapshot(world)
    code, _, err = forge_cli("keys", "revoke", key_id, "--tenant", world.b)
    assert code != 0 and "0 keys" in err
    assert snapshot(world) == before
    assert world.api.get("/api/v1/traces", headers=world.as_a()).status_code == 200


BAD = ["x", "01nosuchjob", "..%5C..%5Calice%5Cx", "a" * 300]
ID_PATHS = {
    "job_id": ["GET /api/v1/forge/jobs/{}", "GET /api/v1/forge/jobs/{}/events", "POST /api/v1/forge/jobs/{}/cancel",
               "POST /api/v1/forge/jobs/{}/sync", "PUT /api/v1/forge/jobs/{}"],
    "dataset_id": ["GET /api/v1/datasets/{}", "POST /api/v1/datasets/{}/validate", "DELETE /api/v1/datasets/{}",
                   "PUT /api/v1/datasets/{}"],
    "version_id": ["GET /api/v1/models/{}", "POST /api/v1/models/{}/promote", "POST /api/v1/models/{}/rollback",
                   "POST /api/v1/models/{}/archive", "PUT /api/v1/models/{}", "DELETE /api/v1/models/{}",
                   "POST /api/v1/models/{}/deploy", "POST /api/v1/models/{}/export",
                   "GET /api/v1/models/{}/exports/peft/adapter/adapter_config.json"],
    "trace_id": ["PATCH /api/v1/traces/{}/feedback"],
}


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("param,route", [(p, r) for p, routes in ID_PATHS.items() for r in routes])
def test_an_id_of_the_wrong_format_in_the_path_is_a_422_naming_the_parameter(world, param, route, bad):
    method, path = route.split(" ")
    response = world.api.request(method, path.format(bad), json={} if method == "PATCH" else None,
                                 headers=world.as_a())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f"path.{param}: not a " in response.json()["detail"]


BAD_BODIES = [
    ("POST /api/v1/datasets/import-from-traces", {"jobId": "../../alice/x"}, "body.jobId: not a job id"),
    ("POST /api/v1/datasets/import-from-traces", {"jobId": "ds-01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "body.jobId"),
    ("POST /api/v1/datasets/import-from-traces", {"domain": "../coding"}, "body.domain: not a domain name"),
    ("POST /api/v1/forge/jobs/estimate-cost", {"datasetId": "../../alice/x"}, "body.datasetId: not a dataset id"),
    ("POST /api/v1/traces", {"traces": [{"prompt": "p", "response": "r"}], "domain": "A/B"}, "body.domain"),
]


@pytest.mark.parametrize("route,body,named", BAD_BODIES)
def test_an_id_of_the_wrong_format_in_a_body_is_a_422_naming_the_field(world, route, body, named):
    method, path = route.split(" ")
    before = snapshot(world)
    response = world.api.request(method, path, json=body, headers=world.as_a())
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]
    assert snapshot(world) == before


@pytest.mark.parametrize("method,path", [("GET", "/api/v1/traces"), ("GET", "/api/v1/models"),
                                         ("POST", "/api/v1/datasets")])
def test_a_domain_query_parameter_of_the_wrong_format_is_a_422(world, method, path):
    response = world.api.request(method, path, params={"domain": "../x"}, headers=world.as_a())
    assert response.status_code == 422 and "query.domain: not a domain name" in response.json()["detail"]


def test_the_id_formats_are_in_the_openapi_document(world):
    spec = world.api.get("/openapi.json").json()
    (param,) = [p for p in spec["paths"]["/api/v1/forge/jobs/{job_id}"]["get"]["parameters"] if p["name"] == "job_id"]
    assert param["schema"]["pattern"].startswith("^") and "nightly-" in param["schema"]["pattern"]
