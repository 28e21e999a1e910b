"""The model registry through the API, the CLI and the promote stage, on Azurite."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from forge.domain.models import Dataset, ModelStage, new_id
from forge.services.promotion import PromoteRequest, promote
from tests.factories import make_job, make_model_version, make_trace


@pytest.fixture
def api(keyed_api):
    return keyed_api


def stages(forge, tenant) -> dict[str, str]:
    return {m.version_id: m.stage.value for m in forge.storage.models.list(tenant, limit=100).items}


def test_models_are_listed_by_domain_and_found_by_id_alone_but_never_across_tenants(forge, tenant, api):
    coding = forge.storage.models.create(make_model_version(tenant))
    legal = forge.storage.models.create(make_model_version(tenant, "legal"))
    forge.storage.models.create(make_model_version(tenant + "-other", "legal"))
    assert [m["versionId"] for m in api.get("/api/v1/models", params={"domain": "legal"}).json()["items"]] == [
        legal.version_id]
    assert len(api.get("/api/v1/models").json()["items"]) == 2
    shown = api.get(f"/api/v1/models/{legal.version_id}").json()
    assert (shown["domain"], shown["stage"], shown["role"]) == ("legal", "staging", None)
    other = forge.storage.keys.create(tenant + "-other", "x")[0]
    response = api.get(f"/api/v1/models/{coding.version_id}", headers={"X-API-Key": other})
    assert response.status_code == 404 and "forge models list" in response.json()["detail"]


def test_show_gives_lineage_role_and_usage_with_the_saving_against_the_teacher(forge, tenant, api):
    parent = forge.storage.datasets.create(Dataset(tenant=tenant, domain="coding"))
    dataset = forge.storage.datasets.create(Dataset(tenant=tenant, domain="coding", version=2,
                                                    parent_id=parent.dataset_id, sha256="ab" * 32))
    job = forge.storage.jobs.create(make_job(tenant))
    model = forge.storage.models.create(make_model_version(
        tenant, job_id=job.job_id, dataset_id=dataset.dataset_id, created_at=datetime.now(timezone.utc) - timedelta(days=3)))
    now = datetime.now(timezone.utc)
    forge.storage.traces.add(
        [make_trace(tenant, model=model.version_id, source="router", prompt_tokens=1000, completion_tokens=500,
                    latency_ms=float(ms), created_at=now - timedelta(minutes=i)) for i, ms in enumerate(range(10, 110, 10))]
        + [make_trace(tenant, model="gpt-4.1", source="router", prompt_tokens=10, completion_tokens=10, latency_ms=9.0),
           make_trace(tenant, model=model.version_id, source="import", prompt_tokens=99)])  # not a router call
    api.post(f"/api/v1/models/{model.version_id}/promote", json={"stage": "production"})
    shown = api.get(f"/api/v1/models/{model.version_id}", params={"days": 30}).json()
    assert shown["role"] == "production"
    lineage = shown["lineage"]
    assert lineage["job"]["jobId"] == job.job_id and lineage["dataset"]["version"] == 2
    assert lineage["datasetAncestors"] == [parent.dataset_id] and lineage["baseModel"] == model.base_model
    usage = shown["usage"]
    assert (usage["requests"], usage["promptTokens"], usage["completionTokens"]) == (10, 10_000, 5000)
    assert (usage["latencyP50Ms"], usage["latencyP95Ms"]) == (50, 100)
    teacher_cost = (10_000 * 2.0 + 5000 * 8.0) / 1e6  # the default prices of Settings
    assert usage["teacherCostUsd"] == pytest.approx(teacher_cost) and usage["savingPercent"] == 60.0
    assert usage["projectedMonthlySavingUsd"] == pytest.approx(round(teacher_cost * 0.6 * 10, 2), abs=0.01)


def test_promote_makes_a_canary_at_the_domains_share_then_production_and_refuses_wrong_moves(forge, tenant, api):
    old = forge.storage.models.create(make_model_version(tenant)).version_id
    new = forge.storage.models.create(make_model_version(tenant)).version_id
    assert api.post(f"/api/v1/models/{old}/promote", json={"stage": "production"}).status_code == 200
    canary = api.post(f"/api/v1/models/{new}/promote").json()
    assert (canary["model"]["stage"], canary["route"]["canaryModel"], canary["route"]["canaryPercent"]) == (
        "candidate", new, 10.0)  # the coding domain's configured share
    assert canary["role"] == "canary 10%"
    conflict = api.post(f"/api/v1/models/{old}/archive")
    assert conflict.status_code == 409 and "roll it back or promote another" in conflict.json()["detail"]
    assert api.post(f"/api/v1/models/{new}/rollback").status_code == 409
    bad = api.post(f"/api/v1/models/{new}/promote", json={"canaryPercent": 150})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    promoted = api.post(f"/api/v1/models/{new}/promote").json()
    assert (promoted["route"]["productionModel"], promoted["route"]["previousProductionModel"]) == (new, old)
    assert stages(forge, tenant) == {old: "archived", new: "production"}
    assert api.post(f"/api/v1/models/{old}/archive").json()["route"]["previousProductionModel"] is None
    assert api.post(f"/api/v1/models/{new_id()}/promote").status_code == 404


def test_the_promote_stage_sends_the_first_student_to_production_later_ones_to_canary_and_failures_to_archive(
        forge, tenant):
    def run(decision: str, reasons=()) -> tuple:
        job = forge.storage.jobs.create(make_job(tenant))
        model = forge.storage.models.create(make_model_version(tenant, job_id=job.job_id))
        request = PromoteRequest(tenant=tenant, domain="coding", job_id=job.job_id, provider="local",
                                 model_version_id=model.version_id, decision=decision, reasons=list(reasons))
        return job, model, request, promote(forge, request)

    _, first, _, result = run("pass")
    assert (result.outcome, result.replaced) == ("production", None)
    job, second, request, result = run("pass")
    assert (result.outcome, result.canary_percent) == ("canary", 10.0)
    assert promote(forge, request) == result  # a retried activity changes nothing twice
    assert [e.type for e in forge.storage.events.list(job.job_id).items] == ["promotion"]
    job, third, _, result = run("fail", ["score 71 < 80", "win rate 0.31 < 0.5"])
    assert result.outcome == "archived"
    recorded = forge.storage.jobs.get(tenant, job.job_id)
    assert recorded.promotion["outcome"] == "archived" and recorded.resulting_model_id == third.version_id
    archived = forge.storage.models.get(tenant, "coding", third.version_id)
    assert archived.metrics["promotion"]["reasons"] == ["score 71 < 80", "win rate 0.31 < 0.5"]
    assert stages(forge, tenant) == {first.version_id: "production", second.version_id: "candidate",
                                     third.version_id: "archived"}


def test_the_models_commands_promote_roll_back_and_archive(forge_cli, tenant, storage):
    cli = forge_cli
    a = storage.models.create(make_model_version(tenant, provider_model_id="ft:a")).version_id
    b = storage.models.create(make_model_version(tenant, provider_model_id="ft:b")).version_id
    code, out, _ = cli("models", "list")
    assert code == 0 and a in out and "ft:b" in out
    assert cli("models", "promote", a, "--to", "production")[0] == 0
    code, out, _ = cli("models", "promote", b, "--canary-percent", "25")
    assert code == 0 and "canary" in out and "25%" in out
    assert cli("models", "promote", b)[0] == 0
    code, out, _ = cli("models", "rollback", "--domain", "coding")
    assert code == 0 and f"{a} in production" in out
    assert json.loads(cli("models", "show", a)[1])["role"] == "production"
    code, _, err = cli("models", "archive", a)
    assert code == 1 and "roll it back" in err
    code, _, err = cli("models", "promote", b, "--to", "archived")
    assert code == 2 and "candidate' or 'production" in err
    assert {m.version_id: m.stage for m in storage.models.list(tenant).items} == {
        a: ModelStage.PRODUCTION, b: ModelStage.ARCHIVED}


def test_the_promotion_note_on_the_model_is_reapplied_over_a_concurrent_write_and_both_stand(forge, tenant):
    job = forge.storage.jobs.create(make_job(tenant))
    model = forge.storage.models.create(make_model_version(tenant, job_id=job.job_id))
    models, interrupted = forge.storage.models, []

    class Interrupting:
        """The store, with another writer saving the model just before the promotion note is first saved."""

        def __getattr__(self, name):
            return getattr(models, name)

        def save(self, version):
            if "promotion" in version.metrics and not interrupted:
                other = models.get(tenant, "coding", version.version_id)
                other.metrics["reviewer"] = "ana"
                interrupted.append(models.save(other))
            return models.save(version)

    forge.storage.models = Interrupting()
    try:
        promote(forge, PromoteRequest(tenant=tenant, domain="coding", job_id=job.job_id, provider="local",
                                      model_version_id=model.version_id, decision="fail", reasons=["score 50 < 80"]))
    finally:
        forge.storage.models = models
    stored = models.get(tenant, "coding", model.version_id)
    assert interrupted and stored.metrics["reviewer"] == "ana"
    assert stored.metrics["promotion"]["outcome"] == "archived"
    assert stored.metrics["promotion"]["reasons"] == ["score 50 < 80"]
