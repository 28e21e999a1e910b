"""A domain without tasks of its own evaluates on an eval set carved from its golden traffic: stratified, frozen,
grown by later runs and never trained on; its answers are checked by the task's rule, and every gate that cannot be
measured fails closed. A fake OpenAI-compatible endpoint over real HTTP; Azurite."""

from __future__ import annotations

import asyncio
import io
import json
import pytest
from pydantic import SecretStr

from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import DistillationJob, ModelStage, Route, utcnow
from forge.domain.tenant_domains import parse_file
from forge.providers.inference import InferenceError
from forge.providers.judge import JudgeFailed
from forge.services import domains, runs
from forge.services.candidates import EvaluateRequest, evaluate, results
from forge.services.promotion import PromoteRequest, promote
from forge.services.traces import import_jsonl
from forge.stages import curate as curate_stage
from tests import support_task
from tests.factories import make_model_version
from tests.fakes.eval_upstream import API_KEY, EvalUpstream

TRAFFIC = support_task.records(120, seed=1, numbered=True) + support_task.records(60, seed=2, start=120, numbered=True)


@pytest.fixture(scope="module")
def upstream():
    fake = EvalUpstream(support_task.answers(TRAFFIC))
    with serving(fake.app) as url:
        yield fake, f"{url}/v1"


@pytest.fixture
def forge(settings, storage, upstream):
    wired = settings.model_copy(update={"teacher_base_url": upstream[1], "teacher_api_key": SecretStr(API_KEY)})
    return bootstrap(wired, storage=storage)


def judged(forge, grader="judge"):
    return bootstrap(forge.settings.model_copy(update={"grader_model": grader}), storage=forge.storage)


def create_support(forge, tenant, **gates):
    config = parse_file(support_task.DOMAIN_FILE, "support").model_dump(mode="json")
    config["gates"].update(gates)
    return domains.create(forge, tenant, "support", config=config, actor="test")


def import_traffic(forge, tenant, records):
    data = "\n".join(json.dumps(r) for r in records).encode()
    import_jsonl(forge.storage, io.BytesIO(data), tenant=tenant, domain="support",
                 known_domains=domains.known(forge, tenant, "support"))


def curated_job(forge, tenant):
    """A run's job through its curate stage, as the orchestrator calls it (the cut-off: now)."""
    version = domains.resolve(forge, tenant, "support").version
    job = forge.storage.jobs.create(DistillationJob(tenant=tenant, domain="support", domain_version=version))
    until = utcnow()
    result = curate_stage.run(forge, curate_stage.Request(tenant=tenant, domain="support", job_id=job.job_id,
                                                          until=until))
    return forge.storage.jobs.get(tenant, job.job_id), result


def dataset_tickets(forge, tenant, dataset_id):
    tickets = set()
    for name in ("train", "valid"):
        for record in forge.storage.datasets.read_file(tenant, dataset_id, name):
            tickets.add(next(m["content"] for m in record["messages"] if m["role"] == "user"))
    return tickets


def held_tickets(forge, tenant, version=None):
    found, items = __import__("forge.services.evalsets", fromlist=["items"]).items(forge, tenant, "support", version)
    return found, [i.messages[-1]["content"] for i in items], items


def test_a_run_carves_a_stratified_eval_set_first_and_trains_on_none_of_its_conversations(forge, tenant):
    create_support(forge, tenant)
    import_traffic(forge, tenant, TRAFFIC[:120])
    job, result = curated_job(forge, tenant)
    eval_set, tickets, items = held_tickets(forge, tenant)
    assert (eval_set.version, eval_set.size, eval_set.job_id) == (1, 30, job.job_id)  # a quarter of 120
    assert eval_set.strata == {"billing": 10, "shipping": 10, "account": 10}
    assert job.state.eval_set == 1 and job.domain_version == 1
    dataset = forge.storage.datasets.get(tenant, result["dataset_id"])
    assert dataset.dropped["eval_set"] == 30 and result["train"] + result["valid"] == 90
    assert not set(tickets) & dataset_tickets(forge, tenant, result["dataset_id"])
    assert all(i.reference.startswith("team: ") and i.messages[0]["role"] == "system" for i in items)
    again = curate_stage.run(forge, curate_stage.Request(tenant=tenant, domain="support", job_id=job.job_id))
    assert again["dataset_id"] == result["dataset_id"] and forge.storage.evaluations.latest(tenant, "support").version == 1


def test_a_later_run_grows_the_set_from_new_traffic_only_and_keeps_every_earlier_item_as_it_was(forge, tenant):
    create_support(forge, tenant)
    import_traffic(forge, tenant, TRAFFIC[:120])
    curated_job(forge, tenant)
    first, first_tickets, first_items = held_tickets(forge, tenant)
    import_traffic(forge, tenant, TRAFFIC[120:])
    _, result = curated_job(forge, tenant)
    grown, tickets, items = held_tickets(forge, tenant)
    assert (grown.version, grown.size, grown.added) == (2, 45, 15)  # a quarter of the 60 new conversations
    assert items[:30] == first_items  # frozen: the first version's items, unchanged
    new = set(tickets) - set(first_tickets)
    assert new <= {r["messages"][1]["content"] for r in TRAFFIC[120:]}
    assert not set(tickets) & dataset_tickets(forge, tenant, result["dataset_id"])
    assert held_tickets(forge, tenant, 1)[1] == first_tickets  # version 1 can still be read as it was


def test_a_full_set_stays_frozen(forge, tenant):
    create_support(forge, tenant)
    domains.edit(forge, tenant, "support", settings={"eval_set.size": 20})
    import_traffic(forge, tenant, TRAFFIC[:120])
    curated_job(forge, tenant)
    import_traffic(forge, tenant, TRAFFIC[120:])
    curated_job(forge, tenant)
    assert [s.size for s in forge.storage.evaluations.versions(tenant, "support")] == [20]


@pytest.fixture
def carved(forge, tenant):
    create_support(forge, tenant)
    import_traffic(forge, tenant, TRAFFIC[:120])
    job, _ = curated_job(forge, tenant)
    return job


def register(forge, tenant, model_id, **fields):
    return forge.storage.models.create(make_model_version(tenant, "support", provider_model_id=model_id, **fields))


def in_production(forge, tenant, model_id):
    model = register(forge, tenant, model_id, stage=ModelStage.PRODUCTION)
    forge.storage.routes.save(Route(tenant=tenant, domain="support", production_model=model.version_id))
    return model


def request(job, **fields):
    return EvaluateRequest(tenant=job.tenant, domain="support", job_id=job.job_id, **fields)


def test_a_student_that_routes_like_the_teacher_passes_on_the_eval_set_measured_by_exact_match(forge, carved):
    model = register(forge, carved.tenant, "ft:gold")
    result = evaluate(forge, request(carved, model_version_id=model.version_id))
    assert result.decision == "pass", result.reasons
    assert (result.eval_set_version, result.domain_version) == (1, 1)
    metrics = result.metrics
    assert (metrics.benchmark_tasks, metrics.validation_examples, metrics.score) == (0, 30, 100.0)
    assert metrics.task_metrics == {"exact_match": 1.0, "macro_f1": 1.0}
    assert metrics.categories == {"account": 100.0, "billing": 100.0, "shipping": 100.0}
    assert result.comparisons["teacher"].mean == 0.0
    assert any(r.startswith("Held-out score 100.0 meets") for r in result.reasons)
    assert any(r.startswith("Not applied: the judge's win-rate gate") for r in result.reasons)
    shown = results(forge, carved.tenant, carved.job_id)
    assert len(shown["items"]) == 30 and shown["evaluation"]["decision"] == "pass"
    assert {i["category"] for i in shown["items"]} == {"billing", "shipping", "account"}
    assert all(i["kind"] == "held_out" and i["score"] == 100.0 and i["value"] in support_task.TEAMS
               for i in shown["items"])


def test_a_student_far_from_the_teacher_fails_naming_the_gap_and_each_missed_label(forge, carved):
    model = register(forge, carved.tenant, "ft:junk")
    result = evaluate(forge, request(carved, model_version_id=model.version_id))
    assert result.decision == "fail" and result.metrics.task_metrics["exact_match"] == 0.0
    assert any("100.0 points per example below the teacher's held-out answers" in r for r in result.reasons)
    assert results(forge, carved.tenant, carved.job_id)["items"][0]["failed"] == ["no label found"]


def test_when_the_production_model_fails_the_evaluation_fails_and_records_nothing(forge, carved):
    in_production(forge, carved.tenant, "ft:broken-prod")
    candidate = register(forge, carved.tenant, "ft:gold")
    with pytest.raises(InferenceError, match="calls to the production model .* failed .* no verdict was recorded"):
        evaluate(forge, request(carved, model_version_id=candidate.version_id))
    assert forge.storage.jobs.get(carved.tenant, carved.job_id).eval_metrics == {}


def test_a_production_model_nothing_can_serve_fails_the_evaluation_instead_of_skipping_the_comparison(forge, carved):
    unservable = register(forge, carved.tenant, None, stage=ModelStage.PRODUCTION)
    forge.storage.routes.save(Route(tenant=carved.tenant, domain="support", production_model=unservable.version_id))
    candidate = register(forge, carved.tenant, "ft:gold")
    with pytest.raises(InferenceError, match="production model .* cannot be served"):
        evaluate(forge, request(carved, model_version_id=candidate.version_id))
    assert forge.storage.jobs.get(carved.tenant, carved.job_id).eval_metrics == {}


@pytest.mark.parametrize("grader,message", [("judge-broken", "The judge failed"),
                                            ("judge-mute", "The judge gave no verdict on 30 of 30 pairs")])
def test_when_the_judge_fails_the_evaluation_fails_and_records_nothing(forge, carved, grader, message):
    candidate = register(forge, carved.tenant, "ft:gold")
    with pytest.raises(JudgeFailed, match=message):
        evaluate(judged(forge, grader), request(carved, model_version_id=candidate.version_id))
    assert forge.storage.jobs.get(carved.tenant, carved.job_id).eval_metrics == {}


def test_the_judge_is_checked_against_peoples_labels_and_its_model_and_prompt_version_are_recorded(forge, carved):
    tenant = carved.tenant
    for trace in forge.storage.traces.scan(tenant, domain="support"):
        if trace.metadata.get("team") == "billing":
            forge.storage.traces.set_feedback(tenant, trace.id, "approved")
    bad = [{**r, "messages": r["messages"][:2] + [{"role": "assistant", "content": "I am not sure, sorry."}],
            "conversation_id": f"bad-{i}", "score": None, "feedback": "rejected"} for i, r in enumerate(TRAFFIC[:6])]
    import_traffic(forge, tenant, bad)
    candidate = register(forge, tenant, "ft:gold")
    result = evaluate(judged(forge), request(carved, model_version_id=candidate.version_id))
    judge = result.judge
    assert (judge.model, judge.prompt_version, judge.opponent) == ("judge", "pairwise-both-orders-v1+alignment-v1",
                                                                   "reference")
    assert (judge.agreement.items, judge.agreement.agreed, judge.agreement.rate) == (40, 40, 1.0)
    assert result.decision == "pass" and any("against the teacher's answers meets" in r for r in result.reasons)


def test_a_domain_that_requires_a_judge_holds_its_student_in_staging_instead_of_promoting_it(forge, carved):
    domains.edit(forge, carved.tenant, "support", settings={"gates.require_judge": True})
    job = forge.storage.jobs.save(carved.model_copy(update={"domain_version": 2}))
    candidate = register(forge, carved.tenant, "ft:gold", job_id=job.job_id)
    result = evaluate(forge, request(job, model_version_id=candidate.version_id))
    assert result.decision == "wait" and result.reasons[0].startswith("Waiting: this domain requires a judge")
    promoted = promote(forge, PromoteRequest(tenant=job.tenant, domain="support", job_id=job.job_id,
                                             model_version_id=candidate.version_id, decision=result.decision,
                                             reasons=result.reasons))
    assert promoted.outcome == "held"
    assert forge.storage.models.get(job.tenant, "support", candidate.version_id).stage == ModelStage.STAGING
    assert forge.storage.routes.get(job.tenant, "support").production_model is None


def test_a_domain_with_uploaded_tasks_is_evaluated_on_them_task_by_task(forge, tenant):
    create_support(forge, tenant)
    tasks = [{"id": f"t{i}", "category": team, "prompt": r["messages"][1]["content"], "gold_answer": f"team: {team}",
              "format": "text", "checks": {"regex": [f"team:\\s*{team}"]}}
             for i, (r, team) in enumerate((r, r["metadata"]["team"]) for r in TRAFFIC[:20])]
    domains.upload_benchmark(forge, tenant, "support", "\n".join(json.dumps(t) for t in tasks))
    job = forge.storage.jobs.create(DistillationJob(tenant=tenant, domain="support", domain_version=2))
    model = register(forge, tenant, "ft:gold")
    result = evaluate(forge, request(job, model_version_id=model.version_id))
    assert (result.metrics.benchmark_tasks, result.eval_set_version) == (20, None)
    items = results(forge, tenant, job.job_id)["items"]
    assert [i["id"] for i in items] == [f"t{i}" for i in range(20)] and all(i["kind"] == "task" for i in items)
    assert all(i["failed"] == [] and i["score"] > 90 for i in items)


class Engine:
    """The orchestration engine's client, recording the runs it started (an instance id starts once)."""

    def __init__(self):
        self.started: list[dict] = []

    async def start(self, job_input):
        if any(s["job_id"] == job_input["job_id"] for s in self.started):
            return False
        self.started.append(job_input)
        return True

    async def raise_event(self, instance_id, name, data=None):
        return False


def test_the_nightly_run_covers_every_enabled_domain_of_every_tenant_each_by_its_own_threshold(forge, tenant):
    create_support(forge, tenant)  # its threshold: 10 golden traces
    import_traffic(forge, tenant, TRAFFIC[:12])
    quiet = parse_file(support_task.DOMAIN_FILE, "quiet").model_dump(mode="json") | {"trigger_threshold": 50}
    domains.create(forge, tenant, "quiet", config=quiet)
    off = parse_file(support_task.DOMAIN_FILE, "off").model_dump(mode="json")
    domains.create(forge, tenant, "off", config=off)
    for name in ("quiet", "off"):
        data = "\n".join(json.dumps(r) for r in support_task.records(12, seed=5)).encode()
        import_jsonl(forge.storage, io.BytesIO(data), tenant=tenant, domain=name,
                     known_domains=domains.known(forge, tenant, name))
    domains.set_enabled(forge, tenant, "off", False)
    assert tenant in runs.tenants(forge)  # a tenant with domains of its own is covered, keys or not
    engine, moment = Engine(), utcnow()
    started = asyncio.run(runs.nightly(forge, engine, [tenant], moment))
    assert started == [runs.nightly_id(tenant, "support", moment)]
    assert asyncio.run(runs.nightly(forge, engine, [tenant], moment)) == []  # the fire is a singleton per day
    job = forge.storage.jobs.get(tenant, started[0])
    assert (job.trigger, job.domain_version) == ("nightly", 1)


def test_forge_eval_scores_a_model_on_the_eval_set_and_prints_the_tasks_measures(carved, forge_cli, monkeypatch,
                                                                                  upstream):
    monkeypatch.setenv("FORGE_TEACHER_BASE_URL", upstream[1])
    monkeypatch.setenv("FORGE_TEACHER_API_KEY", API_KEY)
    code, out, err = forge_cli("eval", "--model", "gold", "--domain", "support", "--no-baseline")
    assert code == 0, err
    assert "gold on support: 0 benchmark tasks, 30 eval set v1" in out
    assert "exact_match 1.000  macro_f1 1.000" in out and "gap to the teacher: +0.0 points per example over 30" in out
    assert "Decision: PASS" in out
    shown = json.loads(forge_cli("eval", "--model", "junk", "--domain", "support", "--no-baseline", "--json")[1])
    assert shown["decision"] == "fail" and len(shown["items"]) == 30
    assert shown["items"][0]["failed"] == ["no label found"]


def test_a_run_keeps_to_the_domain_version_it_started_with_even_a_templates(forge, tenant):
    engine = Engine()
    on_template, _ = asyncio.run(runs.trigger(forge, engine, tenant=tenant, domain="legal", by_operator=True))
    domains.edit(forge, tenant, "legal", settings={"gates.min_score": 90})  # the tenant's own legal now
    mine, _ = asyncio.run(runs.trigger(forge, engine, tenant=tenant, domain="legal", by_operator=True))
    domains.edit(forge, tenant, "legal", settings={"gates.min_score": 95})
    assert (on_template.domain_version, mine.domain_version) == (0, 2)
    assert domains.domain_for(forge, tenant, "legal", on_template.domain_version).gates.min_score == 60
    assert domains.domain_for(forge, tenant, "legal", mine.domain_version).gates.min_score == 90
    assert domains.domain_for(forge, tenant, "legal").gates.min_score == 95
