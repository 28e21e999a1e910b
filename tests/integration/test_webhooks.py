"""Completion webhooks over real HTTP: the API on 127.0.0.1, jobs in Azurite, the OpenAI fake for job metadata, and
durabletask's engine running `distill` for the wake-up."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import new_id
from forge.domain.webhooks import RUN_STATUS_CHANGED, VALIDATION_EVENT, sign
from forge.providers.registry import training_provider
from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations
from tests.factories import chat_record, make_job, make_training_request
from tests.fakes.openai_server import API_KEY, running

SECRET = "whsec_" + base64.b64encode(b"forge-webhook-secret-for-tests!!").decode()
GRID_KEY = "eg-key-123"


@pytest.fixture(scope="module")
def fake():
    with running(step_s=0.05) as server:
        yield server


@pytest.fixture
def forge(settings, storage, fake):
    return bootstrap(settings.model_copy(update={
        "openai_base_url": f"{fake.url}/v1", "openai_api_key": SecretStr(API_KEY),
        "openai_webhook_secret": SecretStr(SECRET), "eventgrid_webhook_key": SecretStr(GRID_KEY)}), storage=storage)


def api(forge, engine=None):
    return serving(create_app(forge, orchestrations=engine))


@pytest.fixture
def job(forge, tenant):
    return forge.storage.jobs.create(make_job(tenant, provider="openai"))


@pytest.fixture
def ftjob(forge, job) -> str:
    """A fine-tuning job the `openai` provider started at the fake for `job`."""
    dataset = new_id()
    forge.storage.datasets.write_file(job.tenant, dataset, "train", [chat_record(i) for i in range(10)])
    provider = training_provider(forge, "openai")
    provider.file_poll_s = 0.02
    request = make_training_request(job.tenant, dataset, "gpt-4.1-mini-2025-04-14")
    request = type(request)(**{**request.__dict__, "job_id": job.job_id})
    return provider.start(request, provider.prepare(request))


def openai_delivery(ftjob: str, *, webhook_id: str | None = None, at: int | None = None, secret: str = SECRET,
                    kind: str = "fine_tuning.job.succeeded") -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": f"evt_{new_id()}", "object": "event", "created_at": int(time.time()), "type": kind,
                       "data": {"id": ftjob}}).encode()
    webhook_id = webhook_id or f"wh_{new_id()}"
    at = int(time.time()) if at is None else at
    return body, {"webhook-id": webhook_id, "webhook-timestamp": str(at),
                  "webhook-signature": sign(secret, webhook_id, at, body), "content-type": "application/json"}


def webhook_events(forge, job) -> list[Any]:
    return [e for e in forge.storage.events.list(job.job_id).items if e.type == "training.webhook"]


def run_event(job, event_id: str, *, tenant_tag: bool = True) -> dict[str, Any]:
    tags = {"forge_job_id": job.job_id, **({"forge_tenant": job.tenant} if tenant_tag else {})}
    return {"id": event_id, "eventType": RUN_STATUS_CHANGED, "subject": "experiments/x/runs/r1",
            "eventTime": "2026-11-01T00:00:00Z", "dataVersion": "2", "metadataVersion": "1",
            "data": {"runId": "r1", "runStatus": "Completed", "runTags": tags}}


def test_a_signed_openai_webhook_wakes_the_jobs_run_at_once_and_is_recorded_on_the_job(forge, job, ftjob):
    calls: list[str] = []

    def activity(name: str, result: dict[str, Any]):
        def run(payload: dict[str, Any]) -> dict[str, Any]:
            calls.append(name)
            return result
        return run

    script = {"gather": activity("gather", {"cutoff": "2026-11-01T00:00:00Z"}),
              "curate": activity("curate", {"dataset_id": "ds"}), "upload": activity("upload", {"train": "file"}),
              "train": activity("train", {"provider_job_id": ftjob}),
              "poll": activity("poll", {"state": "succeeded", "result_model": "ft:x"}),
              "evaluate": activity("evaluate", {"model_version_id": "mv", "decision": "pass"}),
              "promote": activity("promote", {"outcome": "candidate"}), "cancel_training": activity("cancel", {}),
              "notify": activity("notify", {"status": "COMPLETED"})}
    with LocalEngine(script) as engine:
        client = EngineClient(engine.client)
        # A poll interval of an hour: only the webhook can end the wait within this test.
        assert client.start({"tenant": job.tenant, "domain": job.domain, "job_id": job.job_id, "provider": "openai",
                             "poll_interval_s": 3600, "max_training_s": 7200, "retry_first_s": 0.05})
        deadline = time.monotonic() + 30
        while "train" not in calls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "train" in calls and "poll" not in calls
        body, headers = openai_delivery(ftjob)
        with api(forge, LocalOrchestrations(client)) as url:
            response = httpx.post(f"{url}/api/v1/webhooks/openai", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "accepted", "jobId": job.job_id, "raised": True}
        state = client.wait(job.job_id, 30)
        assert state.runtime_status.name == "COMPLETED" and calls.count("poll") == 1
    [event] = webhook_events(forge, job)
    assert event.data["source"] == "openai" and event.data["provider_job_id"] == ftjob
    assert event.data["event"] == "fine_tuning.job.succeeded" and event.data["delivery"] == headers["webhook-id"]


def test_a_wrong_signature_a_stale_timestamp_or_no_signature_is_rejected_and_changes_nothing(forge, job, ftjob):
    other = "whsec_" + base64.b64encode(b"not-the-configured-secret").decode()
    stale_body, stale = openai_delivery(ftjob, at=int(time.time()) - 600)
    forged_body, forged = openai_delivery(ftjob, secret=other)
    with api(forge) as url:
        for body, headers in ((forged_body, forged), (stale_body, stale), (forged_body, {})):
            response = httpx.post(f"{url}/api/v1/webhooks/openai", content=body, headers=headers)
            assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
        assert "stale or replayed" in httpx.post(f"{url}/api/v1/webhooks/openai", content=stale_body,
                                                 headers=stale).json()["detail"]
    assert webhook_events(forge, job) == []


def test_a_replayed_openai_delivery_is_rejected_and_records_nothing_more(forge, job, ftjob):
    body, headers = openai_delivery(ftjob)
    with api(forge) as url:
        first = httpx.post(f"{url}/api/v1/webhooks/openai", content=body, headers=headers)
        replay = httpx.post(f"{url}/api/v1/webhooks/openai", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["raised"] is False  # no engine attached: recorded only
    assert replay.status_code == 409 and "nothing changed" in replay.json()["detail"]
    assert len(webhook_events(forge, job)) == 1


def test_an_openai_event_for_a_job_forge_did_not_start_or_of_another_kind_is_acknowledged_and_ignored(forge, fake):
    client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key=API_KEY)
    train = client.files.create(file=("x.jsonl", b"\n".join(json.dumps(chat_record(i)).encode() for i in range(10))),
                                purpose="fine-tune")
    client.files.wait_for_processing(train.id, poll_interval=0.02)
    stranger = client.fine_tuning.jobs.create(model="gpt-4.1-mini-2025-04-14", training_file=train.id)
    with api(forge) as url:
        for body, headers in (openai_delivery(stranger.id), openai_delivery("ftjob-x", kind="batch.completed")):
            response = httpx.post(f"{url}/api/v1/webhooks/openai", content=body, headers=headers)
            assert response.status_code == 200 and response.json()["status"] == "ignored"


def test_without_a_secret_the_openai_webhook_says_what_to_configure(settings, storage, job, ftjob):
    bare = bootstrap(settings, storage=storage)
    body, headers = openai_delivery(ftjob)
    with api(bare) as url:
        response = httpx.post(f"{url}/api/v1/webhooks/openai", content=body, headers=headers)
    assert response.status_code == 503 and "FORGE_OPENAI_WEBHOOK_SECRET" in response.json()["detail"]


def test_the_event_grid_validation_handshake_is_answered_only_with_the_key(forge):
    handshake = [{"id": "v1", "eventType": VALIDATION_EVENT, "subject": "", "dataVersion": "1",
                  "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]
    with api(forge) as url:
        answered = httpx.post(f"{url}/api/v1/webhooks/eventgrid", params={"code": GRID_KEY}, json=handshake,
                              headers={"aeg-event-type": "SubscriptionValidation"})
        refused = httpx.post(f"{url}/api/v1/webhooks/eventgrid", params={"code": "guess"}, json=handshake)
        unkeyed = httpx.post(f"{url}/api/v1/webhooks/eventgrid", json=handshake)
    assert answered.status_code == 200
    assert answered.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert (refused.status_code, unkeyed.status_code) == (401, 401)
    assert "X-Forge-Webhook-Key" in unkeyed.json()["detail"]


def test_the_cloudevents_options_handshake_allows_the_requesting_origin(forge):
    with api(forge) as url:
        response = httpx.options(f"{url}/api/v1/webhooks/eventgrid", params={"code": GRID_KEY},
                                 headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
        refused = httpx.options(f"{url}/api/v1/webhooks/eventgrid",
                                headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert response.status_code == 200 and response.headers["webhook-allowed-origin"] == "eventgrid.azure.net"
    assert refused.status_code == 401


def test_an_azure_ml_run_event_is_recorded_once_however_often_event_grid_delivers_it(forge, job):
    forge.storage.keys.create(job.tenant, "tenant is known")  # found without a tenant tag, among known tenants
    delivery = [run_event(job, "eg-1", tenant_tag=False), {"id": "eg-2", "eventType": "Other.Event", "data": {}}]
    with api(forge) as url:
        first = httpx.post(f"{url}/api/v1/webhooks/eventgrid", json=delivery,
                           headers={"X-Forge-Webhook-Key": GRID_KEY})
        again = httpx.post(f"{url}/api/v1/webhooks/eventgrid", json=delivery,
                           headers={"X-Forge-Webhook-Key": GRID_KEY})
        cloud = httpx.post(f"{url}/api/v1/webhooks/eventgrid", params={"code": GRID_KEY},
                           json={"specversion": "1.0", "id": "eg-3", "type": RUN_STATUS_CHANGED,
                                 "source": "/subscriptions/x", "data": run_event(job, "eg-3")["data"]},
                           headers={"content-type": "application/cloudevents+json"})
    assert first.json() == {"accepted": 1, "duplicates": 0, "ignored": 1}
    assert again.json() == {"accepted": 0, "duplicates": 1, "ignored": 1}
    assert cloud.json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    events = webhook_events(forge, job)
    assert [(e.data["delivery"], e.data["run_status"]) for e in events] == [("eg-1", "Completed"),
                                                                             ("eg-3", "Completed")]


class FailingOnce:
    """An engine whose first raise fails, as a gRPC hiccup would."""

    def __init__(self):
        self.raised: list[str] = []

    async def start(self, job_input):
        return True

    async def raise_event(self, instance_id, name, data=None):
        self.raised.append(instance_id)
        if len(self.raised) == 1:
            raise RuntimeError("engine unreachable")
        return True


def test_a_delivery_that_failed_midway_is_handled_afresh_when_the_sender_retries(forge, job):
    engine = FailingOnce()
    delivery = [run_event(job, "eg-retry")]
    with api(forge, engine) as url:
        failed = httpx.post(f"{url}/api/v1/webhooks/eventgrid", params={"code": GRID_KEY}, json=delivery)
        retried = httpx.post(f"{url}/api/v1/webhooks/eventgrid", params={"code": GRID_KEY}, json=delivery)
    assert failed.status_code == 500 and retried.json()["accepted"] == 1
    assert engine.raised == [job.job_id, job.job_id] and len(webhook_events(forge, job)) == 1
