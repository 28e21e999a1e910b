"""The operations people reach for after a run, over HTTP: name and tag things, stats, delete a model (never one that
serves), deploy a model to a route (another domain's too), jobs from a dataset, and the contract's 405s."""

from __future__ import annotations

import io

from forge.domain.models import ModelStage, Route, new_id
from forge.services import datasets
from tests.factories import chat_line, make_job, make_model_version


def upload(forge, tenant: str, domain: str = "coding") -> str:
    lines = "\n".join(chat_line(i) for i in range(30)).encode()
    return datasets.upload(forge, tenant, domain, io.BytesIO(lines), "jsonl").dataset_id


def serve(forge, tenant: str, model, **route) -> None:
    forge.storage.routes.save(Route(tenant=tenant, domain=model.domain, **route))


def test_a_model_that_serves_traffic_is_not_deleted_and_the_answer_says_what_to_do(keyed_api, forge, tenant):
    model = forge.storage.models.create(make_model_version(tenant, stage=ModelStage.PRODUCTION))
    serve(forge, tenant, model, production_model=model.version_id)
    response = keyed_api.delete(f"/api/v1/models/{model.version_id}")
    assert response.status_code == 409 and "roll it back" in response.json()["detail"]
    assert keyed_api.get(f"/api/v1/models/{model.version_id}").status_code == 200


def test_a_rollback_target_is_deleted_and_the_route_no_longer_names_it(keyed_api, forge, tenant):
    old = forge.storage.models.create(make_model_version(tenant, stage=ModelStage.ARCHIVED))
    new = forge.storage.models.create(make_model_version(tenant, stage=ModelStage.PRODUCTION))
    serve(forge, tenant, new, production_model=new.version_id, previous_production_model=old.version_id)
    assert keyed_api.delete(f"/api/v1/models/{old.version_id}").status_code == 200
    assert keyed_api.get(f"/api/v1/models/{old.version_id}").status_code == 404
    route = forge.storage.routes.get(tenant, "coding")
    assert (route.production_model, route.previous_production_model) == (new.version_id, None)


def test_a_model_is_deployed_to_another_domains_route_as_a_canary_through_one_version_there(keyed_api, forge,
                                                                                            tenant):
    model = forge.storage.models.create(make_model_version(tenant, "coding"))
    body = {"domain": "legal", "stage": "canary", "percent": 30}
    first = keyed_api.post(f"/api/v1/models/{model.version_id}/deploy", json=body).json()
    again = keyed_api.post(f"/api/v1/models/{model.version_id}/deploy", json=body).json()
    assert first["model"]["versionId"] == again["model"]["versionId"] != model.version_id
    assert first["model"]["deployedFrom"] == model.version_id and first["model"]["domain"] == "legal"
    assert (first["route"]["canaryModel"], first["route"]["canaryPercent"]) == (first["model"]["versionId"], 30)
    assert forge.storage.routes.get(tenant, "coding").canary_model is None  # its own route is untouched
    refused = keyed_api.post(f"/api/v1/models/{model.version_id}/deploy", json={"stage": "production", "percent": 5})
    assert refused.status_code == 422 and "canary" in refused.json()["detail"]


def test_stats_count_datasets_and_models_by_state_and_what_serves(keyed_api, forge, tenant):
    kept, gone = upload(forge, tenant), upload(forge, tenant)
    keyed_api.delete(f"/api/v1/datasets/{gone}")
    forge.storage.jobs.create(make_job(tenant, dataset_id=kept))
    serving = forge.storage.models.create(make_model_version(tenant, stage=ModelStage.PRODUCTION, dataset_id=kept))
    forge.storage.models.create(make_model_version(tenant))
    serve(forge, tenant, serving, production_model=serving.version_id)
    shown = keyed_api.get("/api/v1/datasets/stats").json()
    assert shown["byState"] == {"active": 1, "deleted": 1} and shown["usage"] == {"jobs": 1, "models": 1,
                                                                                  "unused": 0}
    assert shown["examples"]["train"] > 0 and shown["tokens"]["billed"] > 0
    models = keyed_api.get("/api/v1/models/stats").json()
    assert models["byStage"]["production"] == 1 and models["byStage"]["staging"] == 1
    assert models["serving"] == {"production": 1, "canary": 0}


def test_names_descriptions_and_tags_change_only_as_sent_and_a_bad_tag_changes_nothing(keyed_api, forge, tenant):
    dataset_id = upload(forge, tenant)
    url = f"/api/v1/datasets/{dataset_id}"
    assert keyed_api.put(url, json={"name": "support v1", "tags": ["gold", "2026"]}).status_code == 200
    assert keyed_api.put(url, json={"description": "first export"}).json()["tags"] == ["gold", "2026"]
    refused = keyed_api.put(url, json={"tags": ["gold", "gold"]})
    assert refused.status_code == 422 and keyed_api.get(url).json()["tags"] == ["gold", "2026"]
    cleared = keyed_api.put(url, json={"name": None, "tags": []}).json()
    assert (cleared["name"], cleared["tags"], cleared["description"]) == (None, [], "first export")


def test_a_job_on_a_dataset_the_tenant_does_not_hold_is_a_404_and_creates_no_job(engine_api, forge, tenant):
    other = upload(forge, tenant + "-other")
    response = engine_api.post("/api/v1/forge/jobs", json={"datasetId": other})
    assert response.status_code == 404 and engine_api.get("/api/v1/forge/jobs").json()["items"] == []
    both = engine_api.post("/api/v1/forge/jobs", json={"datasetId": other, "baseModel": "gpt-4.1-mini",
                                                        "settings": {"base_model": "gpt-4.1-mini"}})
    assert both.status_code == 422 and "once" in both.json()["detail"]


def test_a_method_a_path_does_not_take_is_a_405_listing_the_ones_it_does(keyed_api):
    assert keyed_api.request("PUT", "/api/v1/datasets/stats").headers["allow"] == "GET"
    for method, path, allowed in (("TRACE", "/api/v1/models/stats", "GET"),
                                  ("DELETE", "/api/v1/forge/jobs", "GET, POST"),
                                  ("POST", f"/api/v1/models/{new_id()}", "GET, PUT, DELETE")):
        response = keyed_api.request(method, path)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
