"""Evaluation end to end against a fake OpenAI-compatible endpoint over real HTTP, on Azurite: the `evaluate`
stage (gates, baseline, judge, recording, idempotency) and `forge eval`."""

import pytest
from pydantic import SecretStr

from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import Dataset, JobStatus, ModelStage, Route
from forge.evaluation.benchmarks import load_benchmark
from forge.providers.inference import InferenceError
from forge.services.candidates import EvaluateRequest, evaluate
from tests.factories import chat_record, make_job, make_model_version
from tests.fakes.eval_upstream import API_KEY, EvalUpstream

HELD_OUT = [chat_record(i) for i in range(5)]


def known_answers() -> dict[str, str]:
    answers = {t.prompt: t.gold_answer for d in ("coding", "legal") for t in load_benchmark(d)}
    answers |= {r["messages"][1]["content"]: r["messages"][2]["content"] for r in HELD_OUT}
    return answers


@pytest.fixture(scope="module")
def upstream():
    fake = EvalUpstream(known_answers())
    with serving(fake.app) as url:
        yield fake, f"{url}/v1"


@pytest.fixture
def forge(settings, storage, upstream):
    wired = settings.model_copy(update={"teacher_base_url": upstream[1], "teacher_api_key": SecretStr(API_KEY)})
    return bootstrap(wired, storage=storage)


@pytest.fixture
def job(forge, tenant):
    dataset = forge.storage.datasets.create(Dataset(tenant=tenant, domain="coding"))
    forge.storage.datasets.write_file(tenant, dataset.dataset_id, "valid", HELD_OUT)
    return forge.storage.jobs.create(make_job(tenant, dataset_id=dataset.dataset_id))


def register(forge, tenant, model_id, **fields):
    return forge.storage.models.create(make_model_version(tenant, provider_model_id=model_id, **fields))


def request(job, **fields):
    return EvaluateRequest(tenant=job.tenant, domain=job.domain, job_id=job.job_id, **fields)


def test_a_student_that_answers_like_the_teacher_passes_and_the_verdict_is_recorded_once(forge, job, upstream):
    model = register(forge, job.tenant, "ft:gold")
    result = evaluate(forge, request(job, model_version_id=model.version_id))
    metrics = result.metrics
    assert (result.decision, result.error, result.baseline) == ("pass", None, None)
    assert (metrics.score, metrics.teacher_similarity) == (100.0, 100.0)
    assert (metrics.benchmark_tasks, metrics.validation_examples, metrics.errors) == (16, 5, 0)
    assert set(metrics.categories) == {"algorithms", "strings", "data-structures", "debugging", "parsing"}
    stored = forge.storage.jobs.get(job.tenant, job.job_id)
    assert stored.status == JobStatus.EVALUATING and stored.eval_metrics["decision"] == "pass"
    noted = forge.storage.models.get(job.tenant, "coding", model.version_id).metrics["evaluation"]
    assert (noted["jobId"], noted["decision"], noted["score"]) == (job.job_id, "pass", 100.0)
    events = forge.storage.events.list(job.job_id).items
    assert [e.type for e in events] == ["evaluation"] and events[0].message.startswith("pass: score 100.0")

    calls = len(upstream[0].calls)
    again = evaluate(forge, request(job, model_version_id=model.version_id))
    assert again == result and len(upstream[0].calls) == calls  # recorded, not evaluated again


@pytest.fixture
def judged(forge):
    """Forge with an LLM judge (the fake's `judge` model)."""
    return bootstrap(forge.settings.model_copy(update={"grader_model": "judge"}), storage=forge.storage)


def in_production(forge, tenant, model_id):
    production = register(forge, tenant, model_id, stage=ModelStage.PRODUCTION)
    forge.storage.routes.save(Route(tenant=tenant, domain="coding", production_model=production.version_id))
    return production


def test_a_student_worse_than_production_fails_with_reasons_and_loses_to_it_before_the_judge(judged, job, tenant):
    production = in_production(judged, tenant, "ft:gold-prod")
    candidate = register(judged, tenant, "ft:junk")
    result = evaluate(judged, request(job, model_version_id=candidate.version_id))
    assert result.decision == "fail" and result.baseline == production.version_id
    assert result.baseline_metrics.score == 100.0 and result.metrics.score < 10
    assert (result.judge.opponent, result.judge.losses, result.judge.wins) == (production.version_id, 21, 0)
    assert result.metrics.win_rate == 0.0
    failed = " ".join(result.reasons)
    assert "below the minimum 65" in failed and "regresses" in failed and "Judge win rate 0%" in failed


def test_a_student_as_good_as_production_ties_before_the_judge_and_passes(judged, job, tenant):
    in_production(judged, tenant, "ft:gold-prod")
    candidate = register(judged, tenant, "ft:gold-new")
    result = evaluate(judged, request(job, model_version_id=candidate.version_id))
    assert result.decision == "pass" and (result.judge.ties, result.metrics.win_rate) == (21, 0.5)


def test_the_training_result_is_registered_once_as_a_staging_version(forge, job):
    first = evaluate(forge, request(job, result_model="ft:gold-trained", max_tasks=3, max_examples=2))
    model = forge.storage.models.get(job.tenant, "coding", first.model_version_id)
    assert (model.stage, model.provider_model_id, model.job_id) == (ModelStage.STAGING, "ft:gold-trained", job.job_id)
    assert model.dataset_id == job.dataset_id
    assert forge.storage.jobs.get(job.tenant, job.job_id).resulting_model_id == model.version_id
    assert evaluate(forge, request(job, result_model="ft:gold-trained")).model_version_id == model.version_id
    # Few examples: 3 tasks + 2 traces is under the coding gates' 20.
    assert first.decision == "fail" and first.reasons[0].startswith("Only 5 examples were evaluated")


def test_an_endpoint_that_is_down_gives_no_verdict_so_the_activity_is_retried(forge, job):
    model = register(forge, job.tenant, "ft:broken")
    with pytest.raises(InferenceError, match=r"calls to .* failed .*500: the model fell over"):
        evaluate(forge, request(job, model_version_id=model.version_id, max_tasks=2, max_examples=0))
    assert forge.storage.jobs.get(job.tenant, job.job_id).eval_metrics == {}


def test_a_model_nothing_can_serve_is_an_error_result_not_a_verdict(forge, job):
    unservable = forge.storage.models.create(make_model_version(job.tenant, provider_model_id=None))
    result = evaluate(forge, request(job, model_version_id=unservable.version_id))
    assert result.error and "neither an adapter nor a provider model id" in result.error
    assert forge.storage.jobs.get(job.tenant, job.job_id).eval_metrics == {}


@pytest.fixture
def cli(forge_cli, monkeypatch, upstream):
    monkeypatch.setenv("FORGE_TEACHER_BASE_URL", upstream[1])
    monkeypatch.setenv("FORGE_TEACHER_API_KEY", API_KEY)
    return forge_cli


def test_forge_eval_prints_scores_per_category_and_the_decision(cli):
    code, out, _ = cli("eval", "--model", "gold", "--domain", "coding", "--no-baseline")
    assert code == 0
    assert "gold on coding: 16 benchmark tasks, 0 held-out traces" in out
    assert any(line.split() == ["algorithms", "100.0"] for line in out.splitlines())
    assert "Decision: FAIL" in out and "Only 16 examples were evaluated" in out  # no held-out traces given
    code, out, _ = cli("eval", "--model", "junk", "--domain", "legal", "--tasks", "3")
    assert code == 0 and "Decision: FAIL" in out and "below the minimum 60" in out and "weak: legal-" in out


def test_forge_eval_names_the_bad_line_of_a_users_benchmark(cli, tmp_path):
    folder = tmp_path / "forge-home" / "benchmarks"
    folder.mkdir(parents=True)
    (folder / "coding.jsonl").write_text('{"id": "a", "category": "c", "prompt": "p", "gold_answer": "g"}\n{oops\n')
    code, _, err = cli("eval", "--model", "gold", "--domain", "coding")
    assert code == 1 and "coding.jsonl line 2 is not valid JSON" in err


def test_forge_eval_refuses_a_bad_option_with_a_usage_message(cli):
    code, _, err = cli("eval", "--model", "gold", "--max-tokens", "8")
    assert code == 2 and "Invalid value for '--max-tokens'" in err
