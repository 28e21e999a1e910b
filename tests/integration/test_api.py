"""The HTTP API over a real server on 127.0.0.1, backed by Azurite."""

import pytest

from forge.bootstrap import bootstrap
from forge.domain.models import JobEvent, new_id
from tests.factories import chat_record, make_job


@pytest.fixture
def forge(settings, storage):
    return bootstrap(settings.model_copy(update={"api_max_body_bytes": 64 * 1024}), storage=storage)


def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_health_answers_without_a_key(api):
    response = api.get("/health")
    assert response.status_code == 200 and response.json()["storage"] == "ok"


@pytest.mark.parametrize("path", ["/api/v1/traces", "/api/v1/forge/jobs", "/api/v1/forge/jobs/x/events"])
def test_no_key_is_a_401_problem(api, path):
    response = api.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "X-API-Key" in response.json()["detail"]


def test_a_wrong_or_revoked_key_is_a_401(api, forge, tenant):
    key, record = forge.storage.keys.create(tenant, "soon revoked")
    assert api.get("/api/v1/traces", headers=auth(key)).status_code == 200
    forge.storage.keys.revoke(tenant, record.key_hash)
    assert api.get("/api/v1/traces", headers=auth(key)).status_code == 401
    assert api.get("/api/v1/traces", headers=auth("fk.x.yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy")).status_code == 401


def test_bearer_auth_works_like_x_api_key(api, key):
    assert api.get("/api/v1/traces", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_traces_posted_in_a_batch_are_listed_and_bad_records_are_reported(api, key):
    batch = {"traces": [chat_record(1, score=95), {"prompt": "p", "response": "r"}, {"messages": "nope"}]}
    response = api.post("/api/v1/traces", json=batch, headers=auth(key))
    assert response.status_code == 201
    body = response.json()
    assert body["imported"] == 2 and body["rejected"] == [
        {"index": 2, "reason": "no_messages", "detail": "'messages' must be a non-empty list"}]
    listed = api.get("/api/v1/traces", params={"domain": "coding"}, headers=auth(key)).json()["items"]
    assert sorted(t["id"] for t in listed) == sorted(body["ids"])
    assert {t["score"] for t in listed} == {95.0, None}


def test_a_batch_with_no_valid_record_is_a_422(api, key):
    response = api.post("/api/v1/traces", json={"traces": [{"x": 1}]}, headers=auth(key))
    assert response.status_code == 422 and response.json()["rejected"][0]["reason"] == "no_messages"


def test_listing_pages_with_a_continuation_token(api, key):
    api.post("/api/v1/traces", json={"traces": [chat_record(i) for i in range(7)]}, headers=auth(key))
    first = api.get("/api/v1/traces", params={"limit": 4}, headers=auth(key)).json()
    second = api.get("/api/v1/traces", params={"limit": 4, "continuation": first["continuation"]},
                     headers=auth(key)).json()
    assert len(first["items"]) == 4 and len(second["items"]) == 3 and second["continuation"] is None
    bad = api.get("/api/v1/traces", params={"continuation": "zzz"}, headers=auth(key))
    assert bad.status_code == 422 and "start over" in bad.json()["detail"]


def test_feedback_and_score_are_set_through_patch(api, key):
    trace_id = api.post("/api/v1/traces", json={"traces": [chat_record()]}, headers=auth(key)).json()["ids"][0]
    response = api.patch(f"/api/v1/traces/{trace_id}/feedback", json={"feedback": "approved", "score": 88},
                         headers=auth(key))
    assert response.status_code == 200 and (response.json()["feedback"], response.json()["score"]) == ("approved", 88)
    invalid = api.patch(f"/api/v1/traces/{trace_id}/feedback", json={"feedback": "great"}, headers=auth(key))
    assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"


def test_another_tenants_trace_and_job_are_404(api, forge, tenant, key):
    other_key = forge.storage.keys.create(tenant + "-b", "other")[0]
    trace_id = api.post("/api/v1/traces", json={"traces": [chat_record()]}, headers=auth(key)).json()["ids"][0]
    job = forge.storage.jobs.create(make_job(tenant))
    assert api.get(f"/api/v1/forge/jobs/{job.job_id}", headers=auth(key)).status_code == 200
    for method, path, body in [
        ("GET", f"/api/v1/forge/jobs/{job.job_id}", None),
        ("GET", f"/api/v1/forge/jobs/{job.job_id}/events", None),
        ("PATCH", f"/api/v1/traces/{trace_id}/feedback", {"feedback": "rejected"}),
    ]:
        response = api.request(method, path, json=body, headers=auth(other_key))
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    assert api.get("/api/v1/traces", headers=auth(other_key)).json()["items"] == []
    assert api.get("/api/v1/forge/jobs", headers=auth(other_key)).json()["items"] == []


def test_jobs_and_their_events_read_back_in_order(api, forge, tenant, key):
    job = forge.storage.jobs.create(make_job(tenant, dataset_size=12))
    forge.storage.events.append(job.job_id, *[JobEvent(job_id=job.job_id, type="loss", data={"loss": 2 - i / 10})
                                              for i in range(5)])
    listed = api.get("/api/v1/forge/jobs", headers=auth(key)).json()["items"]
    assert [(j["jobId"], j["datasetSize"], j["status"]) for j in listed] == [(job.job_id, 12, "COLLECTING")]
    events = api.get(f"/api/v1/forge/jobs/{job.job_id}/events", params={"after": 2}, headers=auth(key)).json()
    assert [e["seq"] for e in events["items"]] == [3, 4, 5]
    assert api.get(f"/api/v1/forge/jobs/{new_id()}", headers=auth(key)).status_code == 404


def test_a_read_only_key_cannot_write(api, forge, tenant):
    reader = forge.storage.keys.create(tenant, "dashboard", ["read"])[0]
    assert api.get("/api/v1/traces", headers=auth(reader)).status_code == 200
    response = api.post("/api/v1/traces", json={"traces": [chat_record()]}, headers=auth(reader))
    assert response.status_code == 403 and "write" in response.json()["detail"]


def test_an_oversized_body_is_refused_with_413_and_nothing_is_stored(api, key):
    huge = {"traces": [chat_record(i, metadata={"pad": "x" * 2000}) for i in range(60)]}
    response = api.post("/api/v1/traces", json=huge, headers=auth(key))
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
    chunked = api.post("/api/v1/traces", content=iter([b'{"traces": [', b" " * 70_000, b"]}"]),
                       headers={**auth(key), "content-type": "application/json"})
    assert chunked.status_code == 413
    assert api.get("/api/v1/traces", headers=auth(key)).json()["items"] == []


def test_openapi_documents_the_routes(api):
    spec = api.get("/openapi.json").json()
    assert {"/api/v1/traces", "/api/v1/forge/jobs/{job_id}/events", "/health"} <= set(spec["paths"])
    assert api.get("/docs").status_code == 200
