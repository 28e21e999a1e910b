"""Evaluation asks every task and held-out example at once, the candidate and the production model side by side,
with one bound on calls in flight per endpoint, and decides exactly as it does one call at a time."""

import pytest
from pydantic import SecretStr

from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import Dataset
from forge.services.candidates import evaluate
from tests.factories import make_job
from tests.fakes.eval_upstream import API_KEY, EvalUpstream
from tests.integration.test_evaluation import HELD_OUT, in_production, known_answers, register, request


@pytest.fixture(scope="module")
def slow_upstream():
    fake = EvalUpstream(known_answers(), latency_s=0.03)  # long enough for calls to overlap
    with serving(fake.app) as url:
        yield fake, f"{url}/v1"


def wired(settings, storage, url, concurrency):
    return bootstrap(settings.model_copy(update={
        "teacher_base_url": url, "teacher_api_key": SecretStr(API_KEY), "grader_model": "judge",
        "inference_concurrency": concurrency}), storage=storage)


def evaluate_once(forge, tenant):
    dataset = forge.storage.datasets.create(Dataset(tenant=tenant, domain="coding"))
    forge.storage.datasets.write_file(tenant, dataset.dataset_id, "valid", HELD_OUT)
    job = forge.storage.jobs.create(make_job(tenant, dataset_id=dataset.dataset_id))
    candidate = register(forge, tenant, "ft:gold-new")
    result = evaluate(forge, request(job, model_version_id=candidate.version_id))
    items = forge.storage.evaluations.results(tenant, job.job_id)["items"]
    return result.model_dump(exclude={"job_id", "model_version_id", "model", "evaluated_at"}), items


def test_one_call_at_a_time_and_four_at_once_reach_the_same_verdict_and_never_pass_the_endpoints_bound(
        settings, storage, tenant, slow_upstream):
    fake, url = slow_upstream
    serial = wired(settings, storage, url, 1)
    in_production(serial, tenant, "ft:gold-prod")  # candidate, production model and judge: one endpoint
    fake.max_in_flight = 0
    one_at_a_time, serial_items = evaluate_once(serial, tenant)
    assert fake.max_in_flight == 1

    fake.max_in_flight = 0
    four, parallel_items = evaluate_once(wired(settings, storage, url, 4), tenant)
    assert fake.max_in_flight == 4  # asked together, candidate and production sharing the endpoint's four
    assert four == one_at_a_time and four["decision"] == "pass"
    assert parallel_items == serial_items and len(serial_items) == 21  # every task's and example's score and verdict
