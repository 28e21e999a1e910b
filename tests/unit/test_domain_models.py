from datetime import datetime, timezone

from forge.domain.models import DistillationJob, JobStatus, is_golden


def test_golden_means_approved_or_scored_high_and_never_rejected():
    assert is_golden(95, None, 90)
    assert is_golden(90, None, 90)
    assert not is_golden(89.9, None, 90)
    assert is_golden(None, "approved", 90)
    assert is_golden(10, "approved", 90)
    assert not is_golden(100, "rejected", 90)
    assert not is_golden(None, None, 90)


def test_a_job_speaks_the_seed_field_names_on_the_wire():
    job = DistillationJob(tenant="acme", domain="coding", dataset_size=120, resulting_model_id="m1")
    public = job.public()
    assert public["jobId"] == job.job_id and public["datasetSize"] == 120 and public["resultingModelId"] == "m1"
    assert "etag" not in public
    assert DistillationJob.model_validate(public).job_id == job.job_id


def test_advancing_a_job_stamps_the_stage_and_keeps_earlier_stamps():
    job = DistillationJob(tenant="acme", domain="coding")
    t1, t2 = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)
    job.advance(JobStatus.CURATING, at=t1)
    job.advance(JobStatus.FAILED, at=t2, error="provider said no")
    assert job.stage_times == {"CURATING": t1, "FAILED": t2}
    assert job.status.finished and job.error == "provider said no"


def test_every_job_setting_and_hyperparameter_is_documented_in_docs_jobs():
    from pathlib import Path

    from forge.domain.job_settings import Hyperparameters, JobSettings

    doc = (Path(__file__).parents[2] / "docs" / "jobs.md").read_text(encoding="utf-8")
    missing = [name for name in [*JobSettings.model_fields, *Hyperparameters.model_fields] if f"`{name}`" not in doc]
    assert not missing, f"document these in docs/jobs.md: {missing}"
