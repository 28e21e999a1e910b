"""`forge.client` against a live Forge on 127.0.0.1: it covers every operation the API publishes, pages to the end,
raises the server's problem details, retries 429 and 503 as `Retry-After` says, and drives the CLI's remote mode."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.responses import JSONResponse

from forge.api.server import serving
from forge.api.version import API_VERSION, VERSION_HEADER
from forge.client import ForgeClient, InvalidRequest, NotFound, Unavailable
from forge.client.core import OPERATIONS, Call, Retry
from forge.domain.models import new_id
from tests.factories import make_job

# Called by providers or the dashboard's page, not by a client: webhooks are signed by their sender, the session is
# the dashboard's cookie login.
NOT_FOR_CLIENTS = {"POST /api/v1/webhooks/openai", "POST /api/v1/webhooks/eventgrid",
                   "OPTIONS /api/v1/webhooks/eventgrid", "GET /api/v1/session", "POST /api/v1/session",
                   "DELETE /api/v1/session"}


@pytest.fixture
def client(api, key):
    with ForgeClient(str(api.base_url), key) as forge:
        yield forge


def test_every_operation_the_api_publishes_has_an_sdk_method_and_every_sdk_method_calls_one(api):
    document = api.get("/openapi.json").json()
    operations = {f"{m.upper()} {p}" for p, methods in document["paths"].items() for m in methods}
    missing = sorted(operations - NOT_FOR_CLIENTS - set(OPERATIONS))
    assert not missing, f"operations without an SDK method (src/forge/client/): {missing}"
    assert not sorted(set(OPERATIONS) - operations), "SDK methods calling operations the API does not have"


def test_the_api_says_its_version_in_the_document_and_on_every_answer(api, client):
    assert api.get("/openapi.json").json()["info"]["version"] == API_VERSION
    assert api.get("/api/v1/forge/jobs").headers[VERSION_HEADER] == API_VERSION  # a 401 too
    assert client.api_version() == API_VERSION


def test_a_list_is_iterated_page_by_page_to_its_end(client, forge, tenant):
    created = [forge.storage.jobs.create(make_job(tenant)).job_id for _ in range(5)]
    assert [j.job_id for j in client.jobs.iter(page_size=2)] == created
    first = client.jobs.list(limit=2)
    assert len(first.items) == 2 and client.jobs.list(limit=2, continuation=first.continuation).items[0].job_id \
        == created[2]


def test_a_job_is_named_described_and_tagged_and_only_what_is_sent_changes(client, forge, tenant):
    job_id = forge.storage.jobs.create(make_job(tenant)).job_id
    client.jobs.update(job_id, name="baseline", tags=["nightly", "v2"])
    changed = client.jobs.update(job_id, description="the first try")
    assert (changed.name, changed.description, changed.tags) == ("baseline", "the first try", ["nightly", "v2"])
    assert client.jobs.get(job_id).tags == ["nightly", "v2"]


def test_an_error_carries_the_servers_problem_details(client, forge, tenant):
    with pytest.raises(NotFound) as missing:
        client.jobs.get(new_id())
    assert missing.value.status == 404 and "forge jobs list" in missing.value.detail
    job_id = forge.storage.jobs.create(make_job(tenant)).job_id
    with pytest.raises(InvalidRequest) as invalid:  # past the SDK's own check, as another client would send it
        client.transport.send(Call("PUT", f"/api/v1/forge/jobs/{job_id}", json={"tags": ["has space"]}))
    assert invalid.value.status == 422 and invalid.value.errors[0]["field"].startswith("body.tags")


def flaky(statuses: list[tuple[int, dict[str, str]]]) -> FastAPI:
    """A server answering `statuses` in turn (with their headers), then 200."""
    app, answers = FastAPI(), list(statuses)

    @app.get("/health")
    def health() -> JSONResponse:
        if answers:
            status, headers = answers.pop(0)
            return JSONResponse({"type": "about:blank", "title": "Busy", "status": status, "detail": "later"},
                                status_code=status, headers=headers)
        return JSONResponse({"status": "ok"})

    return app


def test_429_and_503_are_retried_after_the_wait_the_server_asks_for():
    waits: list[float] = []
    with serving(flaky([(503, {"Retry-After": "3"}), (429, {"Retry-After": "1"})])) as url, \
            ForgeClient(url) as forge:
        forge.transport.sleep = waits.append
        assert forge.health() == {"status": "ok"}
    assert waits == [3.0, 1.0]


def test_past_its_retries_a_503_is_raised_with_the_wait_the_server_asked_for():
    waits: list[float] = []
    with serving(flaky([(503, {"Retry-After": "7"})] * 3)) as url, ForgeClient(url, retry=Retry(attempts=2)) as forge:
        forge.transport.sleep = waits.append
        with pytest.raises(Unavailable) as down:
            forge.health()
    assert waits == [7.0, 7.0] and down.value.retry_after_s == 7.0 and down.value.detail == "later"


def test_the_cli_works_against_a_deployed_forge_with_url_and_key(api, key, forge, tenant, forge_cli):
    job_id = forge.storage.jobs.create(make_job(tenant)).job_id
    remote = ["--url", str(api.base_url), "--key", key]
    code, out, err = forge_cli(*remote, "jobs", "update", job_id, "--name", "remote", "--tag", "cli")
    assert code == 0, err
    assert f"{job_id}: name remote, tags cli" in out
    code, out, _ = forge_cli(*remote, "jobs", "list")
    assert code == 0 and job_id in out
    assert forge.storage.jobs.get(tenant, job_id).name == "remote"
    code, _, err = forge_cli(*remote, "jobs", "show", new_id())
    assert code == 1 and "(404)" in err
    code, _, err = forge_cli(*remote, "keys", "list")
    assert code != 0 and "without --url" in err
    code, _, err = forge_cli("--url", str(api.base_url), "--key", "fk.nobody.x", "jobs", "list")
    assert code == 1 and "(401)" in err
