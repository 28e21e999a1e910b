"""Drift on live traffic: the real router (HTTP, capture queue, Azurite) in front of a production student trained on
English questions about caches and queues; a fake upstream plays the student, the teacher and the judge. Traffic
that moves (another language, longer, other topics), a student that keeps failing over, or one the judge finds worse
raises an alert — a job event, a notification, and a queued run the reconciler starts — once per window."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from forge.bootstrap import bootstrap
from forge.domain.models import JobStatus, new_id, utcnow
from forge.services import domains, drift
from forge.services.capture import drain_once
from forge.services.reconcile import reconcile
from forge.storage.drift import DriftRepository
from forge.storage.outbox import Outbox
from forge.workflow.activities import build_activities
from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations
from tests.factories import make_model_version
from tests.fakes.canary_upstream import wiring

TOPICS = ["cache", "queue", "retry", "buffer", "stream", "index", "socket", "thread"]
POLICY = {"check_minutes": 0.0005, "window_hours": 1, "min_requests": 10, "judge_share": 1.0,
          "max_judged_per_check": 100, "min_judged": 10, "max_fallback_share": 0.2, "min_win_rate": 0.3}


def english(i: int) -> str:
    rng = random.Random(i)
    a, b = rng.sample(TOPICS, 2)
    return f"How do I use a {a} with a {b} in this service? It is for item {i}."


def spanish(i: int) -> str:
    rng = random.Random(i)
    words = " ".join(rng.choice(["factura", "cliente", "pedido", "envío", "devolución", "tarjeta"]) for _ in range(30))
    return (f"Hola, necesito ayuda con la factura del cliente y el pedido que no llegó. ¿Qué pasa con el envío "
            f"y la devolución de la tarjeta? Es para el caso {i}: {words}")


@pytest.fixture
def forge(settings, storage, canary_upstream):
    unreachable = "http://127.0.0.1:9/unreachable"  # notifications stay in the outbox, visible
    wired = settings.model_copy(update={**wiring(canary_upstream[1]), "notify_url": unreachable})
    return bootstrap(wired, storage=storage)


def student(forge, tenant, served_as: str = "prod", **policy) -> str:
    """A production student trained on 200 English questions (its dataset in Blob), with the domain's policy."""
    domains.edit(forge, tenant, "coding", settings={"drift": {**POLICY, **policy}})
    dataset_id = new_id()
    forge.storage.datasets.write_file(tenant, dataset_id, "train", (
        {"messages": [{"role": "user", "content": english(i)}, {"role": "assistant", "content": "ok"}]}
        for i in range(200)))
    model = forge.storage.models.create(make_model_version(tenant, provider_model_id=served_as, stage="production",
                                                           dataset_id=dataset_id, job_id=new_id()))
    route = forge.storage.routes.get(tenant, "coding").model_copy(update={"production_model": model.version_id})
    forge.storage.routes.save(route)
    return model.version_id


def traffic(forge, live_router, ask, count: int = 30) -> None:
    for i in range(1000, 1000 + count):
        sent = live_router.post("/v1/chat/completions", json={"model": "forge:coding", "user": f"u{i}",
                                                         "messages": [{"role": "user", "content": ask(i)}]})
        assert sent.status_code == 200, sent.text
    drain_once(forge)


def check(forge, tenant) -> dict:
    time.sleep(0.04)  # the next window (check_minutes is 30 ms)
    return drift.step(forge, tenant, "coding", utcnow())


def alerts_sent(forge, tenant, job_id):
    return [n for n in Outbox(forge.storage.account).for_job(tenant, job_id) if n.type == "forge.drift.alert"]


def test_traffic_like_the_training_set_raises_nothing(forge, tenant, live_router):
    model = student(forge, tenant)
    traffic(forge, live_router, english)
    done = check(forge, tenant)
    assert done["action"] == "ok" and done["alerts"] == []
    latest = drift.history(forge, tenant, "coding", days=1, now=utcnow())["latest"]
    m = latest["measures"]
    assert latest["model"] == model and m["requests"] == 30 and m["fallback_share"] == 0
    assert m["language_shift"] < 0.05 and m["length_shift"] < 0.2 and m["ngram_novelty"] < 0.5
    assert m["judged"] == 30 and m["win_rate"]["upper"] > 0.3


def test_inputs_that_moved_raise_one_alert_with_its_numbers_and_queue_a_run_the_reconciler_starts(
        forge, tenant, live_router):
    model = student(forge, tenant, start_run=True)
    traffic(forge, live_router, spanish)
    at = utcnow()
    done = drift.step(forge, tenant, "coding", at)
    assert done["action"] == "alert"
    said = " | ".join(done["alerts"])
    assert "language: the mix moved" in said and "es 100%" in said
    assert "length: the median input is" in said and "topics: 100%" in said and "(ayuda, ayuda con, caso, cliente" in said
    job_id = forge.storage.models.get(tenant, 'coding', model).job_id
    events = [e for e in forge.storage.events.list(job_id).items if e.type == "drift.alert"]
    assert len(events) == 1 and events[0].data["model"] == model
    assert len(alerts_sent(forge, tenant, job_id)) == 1  # the webhook's, pending in the outbox
    shown = live_router.get("/api/v1/insights/overview").json()["alerts"]  # the dashboard's overview says it too
    assert [(x["kind"], x["domain"]) for x in shown] == [("drift.alert", "coding")] and "es 100%" in shown[0]["message"]

    again = drift.step(forge, tenant, "coding", at)  # a retried activity, or a replay after a restart
    assert again["repeat"] and again["runJob"] == done["runJob"]
    assert [e.type for e in forge.storage.events.list(job_id).items].count("drift.alert") == 1

    queued = forge.storage.jobs.get(tenant, done["runJob"])
    assert queued.trigger == "drift" and queued.state.queued and queued.status == JobStatus.COLLECTING
    shown = live_router.get(f"/api/v1/forge/jobs/{queued.job_id}")  # an id the API (and the dataset's name) takes
    assert shown.status_code == 200 and shown.json()["trigger"] == "drift"
    with LocalEngine(build_activities(forge)) as engine:
        engine_client = LocalOrchestrations(EngineClient(engine.client))
        passed = asyncio.run(reconcile(forge, engine_client, [tenant], utcnow()))
        assert passed.started == [queued.job_id]
        assert asyncio.run(engine_client.state(queued.job_id)) is not None
        asyncio.run(engine_client.terminate(queued.job_id, "test over"))
    assert not forge.storage.jobs.get(tenant, queued.job_id).state.queued

    traffic(forge, live_router, spanish, count=12)
    later = check(forge, tenant)  # still drifting, but drift started a run within the cool-down
    assert later["action"] == "alert" and later["runJob"] is None
    assert "no run queued" in drift.history(forge, tenant, "coding", days=1, now=utcnow())["latest"]["note"]


def test_a_student_that_keeps_failing_over_to_the_teacher_raises_a_fallback_alert(forge, tenant, live_router):
    student(forge, tenant, served_as="cand-broken")
    traffic(forge, live_router, english, count=12)
    done = check(forge, tenant)
    assert done["action"] == "alert" and done["runJob"] is None  # start_run is off by default
    assert any(a.startswith("fallbacks: 12 of 12 calls (100.0%)") for a in done["alerts"])


def test_a_student_the_judge_finds_worse_than_the_teacher_raises_a_quality_alert(forge, tenant, live_router):
    student(forge, tenant, served_as="cand-worse")
    traffic(forge, live_router, english, count=20)
    done = check(forge, tenant)
    quality = [a for a in done["alerts"] if a.startswith("quality:")]
    assert quality and "20 pairs" in quality[0]
    assert not any(a.startswith(("language", "length", "topics")) for a in done["alerts"])


def test_too_few_calls_raise_nothing_and_say_so(forge, tenant, live_router):
    student(forge, tenant, min_requests=50)
    traffic(forge, live_router, spanish, count=5)
    assert check(forge, tenant)["alerts"] == []
    assert "5 of 50 student calls" in drift.history(forge, tenant, "coding", days=1, now=utcnow())["latest"]["note"]


def test_a_check_claimed_but_never_told_is_told_by_the_next_step(forge, tenant, live_router):
    model = student(forge, tenant)
    traffic(forge, live_router, spanish, count=12)
    repo = DriftRepository(forge.storage.account)
    at = utcnow()
    policy = domains.domain_for(forge, tenant, "coding").drift
    claimed = asyncio.run(drift.measure(forge, repo, tenant, "coding", policy, at))
    claimed.window = drift.window_start(at, policy.check_minutes * 60)
    repo.claim(claimed)  # …and the worker died before telling anyone
    done = drift.step(forge, tenant, "coding", at)
    assert done["repeat"] and done["alerts"]
    job_id = forge.storage.models.get(tenant, "coding", model).job_id
    assert [e.type for e in forge.storage.events.list(job_id).items].count("drift.alert") == 1
    assert repo.check(tenant, "coding", claimed.window).status == "told"


def test_the_control_loop_checks_drift_each_window_on_the_engine(forge, tenant, live_router):
    student(forge, tenant)
    traffic(forge, live_router, spanish, count=12)
    repo = DriftRepository(forge.storage.account)
    with LocalEngine(build_activities(forge)) as engine:
        assert EngineClient(engine.client).ensure_loop({"tenant": tenant, "domain": "coding"})
        deadline = time.monotonic() + 20
        while len(list(repo.history(tenant, "coding"))) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    checks = list(repo.history(tenant, "coding"))
    assert all(c.status == "told" and c.alerts for c in checks)
    assert len({c.window for c in checks}) == len(checks)


def test_the_api_and_the_cli_show_the_checks(forge, tenant, live_router, forge_cli):
    student(forge, tenant)
    traffic(forge, live_router, spanish, count=12)
    check(forge, tenant)
    shown = live_router.get("/api/v1/drift/coding").json()
    assert shown["policy"]["min_requests"] == 10 and shown["latest"]["alerts"]
    assert live_router.get("/api/v1/drift/coding", params={"days": 0}).status_code == 422
    assert live_router.get("/api/v1/drift/no..domain").status_code == 422
    code, out, _ = forge_cli("drift", "show", "coding")
    assert code == 0 and "language: the mix moved" in out and "calls 12" in out


def test_a_check_reads_only_the_newest_calls_up_to_its_limit(forge, tenant, live_router):
    student(forge, tenant, max_traces=10, min_requests=5)
    traffic(forge, live_router, english, count=20)
    traffic(forge, live_router, spanish, count=10)  # the newest ten
    done = check(forge, tenant)
    measures = drift.history(forge, tenant, "coding", days=1, now=utcnow())["latest"]["measures"]
    assert measures["requests"] == 10 and measures["traffic"]["languages"] == {"es": 1.0}
    assert any(a.startswith("language:") for a in done["alerts"])


def test_a_run_that_cannot_be_queued_is_said_on_the_check_and_the_alert_still_goes_out(forge, tenant, live_router):
    student(forge, tenant, start_run=True)
    traffic(forge, live_router, spanish, count=12)
    domains.set_enabled(forge, tenant, "coding", False)  # a disabled domain starts no runs
    done = check(forge, tenant)
    assert done["action"] == "alert" and done["runJob"] is None
    note = drift.history(forge, tenant, "coding", days=1, now=utcnow())["latest"]["note"]
    assert note.startswith("no run queued:") and "disabled" in note
