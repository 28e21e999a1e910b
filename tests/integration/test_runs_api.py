"""Runs through the HTTP API on a local engine with the real stages: trigger (202), status URL, cancel, sync."""

import time

import httpx
import pytest

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import new_id


@pytest.fixture
def api(engine_api):
    return engine_api


def wait_finished(api, url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(url).json()
        if job["status"] in ("COMPLETED", "SKIPPED", "FAILED", "CANCELLED"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job did not finish: {job}")


def test_a_trigger_is_accepted_with_a_status_url_and_too_few_traces_skip_the_run(api):
    response = api.post("/api/v1/forge/jobs/trigger", json={"domain": "legal"})
    assert response.status_code == 202
    body = response.json()
    assert body["started"] is True and response.headers["location"] == body["statusUrl"]
    job = wait_finished(api, body["statusUrl"])
    assert job["status"] == "SKIPPED" and "0 new golden traces" in job["reason"]
    events = api.get(f"/api/v1/forge/jobs/{job['jobId']}/events").json()["items"]
    assert [e["type"] for e in events] == ["gather", "job.finished"]


def test_a_finished_job_cannot_be_cancelled_or_synced_and_an_unknown_one_is_404(api):
    job_id = api.post("/api/v1/forge/jobs/trigger", json={"domain": "legal"}).json()["jobId"]
    wait_finished(api, f"/api/v1/forge/jobs/{job_id}")
    for action in ("cancel", "sync"):
        response = api.post(f"/api/v1/forge/jobs/{job_id}/{action}")
        assert response.status_code == 409 and "already ended" in response.json()["detail"]
        assert api.post(f"/api/v1/forge/jobs/{new_id()}/{action}").status_code == 404


def test_an_unknown_domain_is_refused_before_any_job_is_created(api):
    response = api.post("/api/v1/forge/jobs/trigger", json={"domain": "astrology"})
    assert response.status_code == 404 and "astrology" in response.json()["detail"]
    assert api.get("/api/v1/forge/jobs").json()["items"] == []


def test_without_an_engine_a_trigger_is_a_503_that_says_what_to_run(settings, storage, tenant):
    forge = bootstrap(settings, storage=storage)
    key = storage.keys.create(tenant, "no engine")[0]
    with serving(create_app(forge)) as url:
        response = httpx.post(f"{url}/api/v1/forge/jobs/trigger", json={}, headers={"X-API-Key": key})
    assert response.status_code == 503 and "forge worker" in response.json()["detail"]
