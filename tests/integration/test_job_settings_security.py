"""A job's settings are a typed schema: a caller cannot smuggle the stages' state, trainer options or a provider
the operator did not open to them, and the public view of a job never shows internal locations."""

from datetime import datetime, timezone

import pytest

from forge.bootstrap import bootstrap
from forge.config import load_settings
from forge.domain.errors import Forbidden
from forge.domain.job_settings import JobSettings
from forge.domain.models import DistillationJob, JobStatus
from forge.services.runs import check_request

SMUGGLED = {
    "prepared (train on another tenant's files)": {"config": {"prepared": {"train": "/srv/forge/runs/x/train.jsonl"}}},
    "golden_new and cutoff (skip the threshold)": {"config": {"golden_new": 10**6, "cutoff": "2100-01-01T00:00:00"}},
    "event_cursor": {"settings": {"event_cursor": "99"}},
    "model.trust_remote_code": {"config": {"hyperparameters": {"model.trust_remote_code": True}}},
    "model.chat_template as a path": {"config": {"hyperparameters": {"model.chat_template": "/etc/passwd"}}},
    "model.name_or_path": {"config": {"hyperparameters": {"model.name_or_path": "/srv/other-tenant/merged"}}},
    "output.upload_url": {"config": {"hyperparameters": {"output.upload_url": "https://attacker.example/c"}}},
    "state at the top level": {"domain": "legal", "state": {"cutoff": "2100-01-01T00:00:00"}},
}
NAMED = {"prepared": "prepared", "golden_new": "golden_new", "event_cursor": "event_cursor", "model.": "model.",
         "output.": "output.upload_url", "state": "state"}


@pytest.fixture
def api(engine_api):
    return engine_api


@pytest.mark.parametrize("body", SMUGGLED.values(), ids=SMUGGLED.keys())
def test_internal_state_and_trainer_options_in_a_trigger_are_refused_and_no_job_is_created(api, body):
    response = api.post("/api/v1/forge/jobs/trigger", json={"domain": "legal", **body})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert any(word in detail for word in NAMED.values()), detail
    assert api.get("/api/v1/forge/jobs").json()["items"] == []


def test_an_unknown_setting_is_named_and_the_allowed_ones_are_listed(api):
    response = api.post("/api/v1/forge/jobs/trigger", json={"settings": {"prepared": {}}})
    detail = response.json()["detail"]
    assert response.status_code == 422 and "'prepared'" in detail
    assert all(name in detail for name in ("base_model", "hyperparameters", "trigger_threshold", "valid_share"))


def test_a_local_model_folder_from_an_api_caller_is_refused(api, tmp_path):
    response = api.post("/api/v1/forge/jobs/trigger", json={"settings": {"base_model": str(tmp_path)}})
    assert response.status_code == 422 and "FORGE_STUDENT_BASE_MODEL" in response.json()["detail"]
    assert api.get("/api/v1/forge/jobs").json()["items"] == []


def test_lora_hyperparameters_on_a_hosted_provider_are_refused_before_anything_is_stored(settings, storage):
    forge = bootstrap(load_settings(storage_connection=settings.storage_connection.get_secret_value(),
                                    home=settings.home, allowed_providers="openai"), storage=storage)
    with pytest.raises(Exception, match="remove lora_r"):
        check_request(forge, "openai", JobSettings(hyperparameters={"lora_r": 8}), by_operator=False)


def test_a_provider_the_operator_did_not_allow_is_a_403_naming_the_allowed_ones(api):
    response = api.post("/api/v1/forge/jobs/trigger", json={"domain": "legal", "provider": "openai"})
    assert response.status_code == 403
    assert "allowed: local" in response.json()["detail"] and "FORGE_ALLOWED_PROVIDERS" in response.json()["detail"]
    assert api.get("/api/v1/forge/jobs").json()["items"] == []


def test_allowed_providers_open_more_than_the_default_and_the_operator_is_not_bound(settings, storage):
    opened = bootstrap(load_settings(storage_connection=settings.storage_connection.get_secret_value(),
                                     home=settings.home, allowed_providers="local, openai"), storage=storage)
    check_request(opened, "openai", JobSettings(), by_operator=False)
    closed = bootstrap(settings, storage=storage)
    with pytest.raises(Forbidden):
        check_request(closed, "azureml", JobSettings(), by_operator=False)
    check_request(closed, "azureml", JobSettings(), by_operator=True)


def test_the_public_view_of_a_job_shows_settings_and_outcome_never_paths_urls_or_provider_ids(api, storage, tenant):
    job = DistillationJob(tenant=tenant, domain="coding", provider="azureml", provider_job_id="forge-job-01XYZ",
                          settings=JobSettings(base_model="/home/operator/models/tiny-llama", trigger_threshold=5),
                          status=JobStatus.TRAINING)
    job.state = job.state.model_copy(update={
        "prepared": {"train": "/home/operator/.forge/runs/01XYZ/data/train.jsonl",
                     "train_uri": "https://acct.blob.core.windows.net/datasets/t/d/train.jsonl?sv=1&sig=SECRET"},
        "cutoff": datetime(2026, 11, 1, tzinfo=timezone.utc).isoformat(), "golden_new": 42, "event_cursor": "7",
        "training": {"state": "running", "progress": 0.5, "trained_tokens": 100, "loss": 1.25}})
    storage.jobs.create(job)
    response = api.get(f"/api/v1/forge/jobs/{job.job_id}")
    assert response.status_code == 200
    text = response.text
    for secret in ("/home/operator", "blob.core.windows.net", "sig=", "forge-job-01XYZ", "event_cursor", "prepared"):
        assert secret not in text, secret
    body = response.json()
    assert body["settings"]["base_model"] == "local:tiny-llama" and body["settings"]["trigger_threshold"] == 5
    assert body["training"]["loss"] == 1.25 and body["goldenNew"] == 42
    listed = api.get("/api/v1/forge/jobs").json()["items"]
    assert "/home/operator" not in str(listed) and "sig=" not in str(listed)


def test_a_job_stored_with_one_config_keeps_its_watermark_and_settings_when_read(storage, tenant):
    legacy = {"tenant": tenant, "domain": "coding", "status": "COMPLETED",
              "config": {"trigger_threshold": 3, "hyperparameters": {"n_epochs": 2}, "cutoff": "2026-11-01T00:00:00",
                         "golden_new": 9, "prepared": {"train": "x"}, "reason": "done"}}
    job = DistillationJob.model_validate(legacy)
    assert job.settings.trigger_threshold == 3 and job.settings.hyperparameters.n_epochs == 2
    assert job.state.cutoff == "2026-11-01T00:00:00" and job.state.prepared == {"train": "x"}
    assert job.reason == "done"


def test_the_cli_refuses_an_unknown_setting_naming_it(forge_cli):
    code, out, err = forge_cli("run", "--domain", "legal", "--set", "prepared=/etc/passwd")
    assert code == 2 and "prepared" in err and "allowed" in err


def test_a_model_version_and_a_dataset_estimate_name_models_without_paths_or_storage_urls(keyed_api, storage, tenant):
    from forge.domain.models import Dataset, ModelVersion

    model = storage.models.create(ModelVersion(
        tenant=tenant, domain="coding", base_model="/home/operator/models/tiny-llama",
        adapter_uri="https://acct.blob.core.windows.net/models/t/job/adapter?sv=1&sig=SECRET"))
    dataset = storage.datasets.create(Dataset(tenant=tenant, domain="coding",
                                              estimate={"model": "/home/operator/models/tiny-llama", "cost": None}))
    shown = keyed_api.get(f"/api/v1/models/{model.version_id}")
    listed = keyed_api.get("/api/v1/models", params={"domain": "coding"})
    data = keyed_api.get(f"/api/v1/datasets/{dataset.dataset_id}")
    for response in (shown, listed, data):
        assert response.status_code == 200, response.text
        assert "/home/operator" not in response.text and "blob.core" not in response.text and "sig=" not in response.text
    assert shown.json()["baseModel"] == "local:tiny-llama" and shown.json()["adapterUri"] == "stored:adapter"
    assert data.json()["estimate"]["model"] == "local:tiny-llama"
