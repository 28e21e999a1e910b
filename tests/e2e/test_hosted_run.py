"""`forge run --provider openai` as a user runs it, against the OpenAI contract fake over HTTP: traces in, a
fine-tuned student (or the provider's refusal) out, with the cost estimate and the loss curve on the job."""

from __future__ import annotations

import re

import pytest

from forge.bootstrap import bootstrap
from forge.config import load_settings
from tests.factories import varied_lines
from tests.fakes.openai_server import API_KEY, running


@pytest.fixture
def fake():
    with running(step_s=0.05, steps=4) as server:
        yield server


@pytest.fixture
def hosted(forge_cli, fake, monkeypatch, tmp_path):
    """The CLI wired to the fake for training (provider openai) and for serving the student in evaluation."""
    for name, value in {"FORGE_OPENAI_BASE_URL": f"{fake.url}/v1", "FORGE_OPENAI_API_KEY": API_KEY,
                        "FORGE_TEACHER_BASE_URL": f"{fake.url}/v1", "FORGE_TEACHER_API_KEY": API_KEY}.items():
        monkeypatch.setenv(name, value)
    traces = tmp_path / "traces.jsonl"
    traces.write_text("\n".join(varied_lines(24)) + "\n", encoding="utf-8")
    code, _, err = forge_cli("traces", "import", str(traces), "--domain", "coding")
    assert code == 0, err
    return forge_cli


def run(forge_cli):
    code, out, err = forge_cli("run", "--provider", "openai", "--domain", "coding", "--threshold", "10",
                               "--set", "poll_interval_s=0.2", "--set", "retry_first_s=0.05")
    job_id = re.search(r"job (\S+) started", out).group(1)
    return code, out, err, job_id


def stored_job(tenant, job_id):
    forge = bootstrap(load_settings())
    return forge.storage.jobs.get(tenant, job_id), forge.storage.events.list(job_id, limit=1000).items


def test_a_hosted_run_trains_a_student_at_the_provider_and_records_cost_and_loss_on_the_job(hosted, fake, tenant):
    code, out, err, job_id = run(hosted)
    job, events = stored_job(tenant, job_id)
    assert job.status.value == "COMPLETED", (out, err, job.error)
    assert job.provider == "openai" and job.provider_job_id in fake.jobs
    assert fake.calls("POST", "/fine_tuning/jobs") == 1 and fake.jobs[job.provider_job_id]["status"] == "succeeded"
    estimate = job.cost["estimate"]
    assert estimate["model"] == "gpt-4.1-mini-2025-04-14" and estimate["examples"] == job.dataset_size
    assert estimate["billed_tokens"] == estimate["dataset_tokens"] * estimate["epochs"] > 0
    assert any(e.type == "cost" and "billed tokens" in e.message for e in events)
    losses = [e.data["loss"] for e in events if e.type == "training.metrics"]
    assert len(losses) == 4 and losses == sorted(losses, reverse=True)
    assert "step 1: loss" in out and job.resulting_model_id


def test_a_request_the_provider_refuses_fails_the_job_with_the_providers_own_words(hosted, fake, tenant):
    fake.fail("POST", "/fine_tuning/jobs", 400,
              message="Invalid file format: training file file-x does not look like chat fine-tuning data")
    code, out, err, job_id = run(hosted)
    job, _ = stored_job(tenant, job_id)
    assert code == 1 and job.status.value == "FAILED"
    assert "openai refused to start training" in job.error
    assert "does not look like chat fine-tuning data" in job.error and "does not look like" in out
    assert not fake.jobs
