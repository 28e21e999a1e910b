"""The canary on live evidence: a seeded simulation through the real router (HTTP, capture queue, Azurite) with a
fake upstream whose candidate is better, equal, worse or erroring, and the control loop on durabletask's engine."""

from __future__ import annotations

import re
import time

import pytest

from forge.bootstrap import bootstrap
from forge.domain.models import ModelStage, utcnow
from forge.services import canary, domains
from forge.services.capture import drain_once
from forge.storage.canaries import CanaryRepository
from forge.workflow import canary_loop
from forge.workflow.activities import build_activities
from forge.workflow.local import EngineClient, LocalEngine
from tests.factories import make_model_version
from tests.fakes.canary_upstream import body, wiring

PER_WINDOW = 20
POLICY = {"stages": [{"percent": 0, "min_requests": 12, "min_minutes": 0},
                     {"percent": 50, "min_requests": 12, "min_minutes": 0},
                     {"percent": 100, "min_requests": 12, "min_minutes": 0}],
          "margin": 0.05, "min_judged": 10, "judge_share": 1.0, "max_judged_per_window": 200,
          "error_spike": 0.05, "min_errors": 3, "interval_s": 0.01}


@pytest.fixture
def forge(settings, storage, canary_upstream):
    return bootstrap(settings.model_copy(update=wiring(canary_upstream[1])), storage=storage)


def canary_of(forge, tenant, candidate: str, policy=POLICY) -> str:
    domains.edit(forge, tenant, "coding", settings={"canary": policy})
    prod = forge.storage.models.create(make_model_version(tenant, provider_model_id="prod", stage="production"))
    cand = forge.storage.models.create(make_model_version(tenant, provider_model_id=candidate, stage="candidate"))
    route = forge.storage.routes.get(tenant, "coding").model_copy(update=dict(
        production_model=prod.version_id, canary_model=cand.version_id, canary_percent=10.0))
    forge.storage.routes.save(route)
    return cand.version_id


def traffic(forge, live_router, window: int) -> None:
    """One window's users, each a different seeded request; their traces written as `forge worker` would."""
    for i in range(window * PER_WINDOW, (window + 1) * PER_WINDOW):
        assert live_router.post("/v1/chat/completions", json=body(i)).status_code == 200
    drain_once(forge)


def simulate(forge, tenant, live_router, windows: int) -> list[dict]:
    canary.step(forge, tenant, "coding", utcnow())  # the loop's first look adopts the canary at stage 0 (shadow)
    decisions = []
    for window in range(windows):
        traffic(forge, live_router, window)
        time.sleep(0.02)  # the next decision window (interval_s is 10 ms)
        decisions.append(canary.step(forge, tenant, "coding", utcnow()))
        if decisions[-1]["action"] in ("promote", "rollback"):
            break
    return decisions


def test_a_better_candidate_advances_through_every_stage_to_production(forge, tenant, live_router):
    cand = canary_of(forge, tenant, "cand-better")
    actions = [d["action"] for d in simulate(forge, tenant, live_router, 8)]
    assert actions[0] == "advance", decisions_of(forge, tenant)
    assert actions[-1] == "promote" and "rollback" not in actions
    route = forge.storage.routes.get(tenant, "coding")
    assert route.production_model == cand and route.canary_model is None
    assert forge.storage.models.get(tenant, "coding", cand).stage == ModelStage.PRODUCTION


def test_an_equal_candidate_holds_in_shadow_within_the_configured_requests(forge, tenant, live_router):
    cand = canary_of(forge, tenant, "cand-equal")
    decisions = simulate(forge, tenant, live_router, 3)
    assert [d["action"] for d in decisions] == ["hold"] * 3
    assert any("lower bound" in reason for reason in decisions[-1]["reasons"])
    numbers = decisions[-1]["numbers"]
    assert numbers["winRateLower"] < 0.45 < numbers["winRateUpper"] and numbers["judged"] == 3 * PER_WINDOW
    route = forge.storage.routes.get(tenant, "coding")
    assert (route.canary_model, route.canary_percent) == (cand, 0.0)  # shadow: no caller is answered by it


def test_a_worse_candidate_is_rolled_back_once_the_bound_excludes_the_margin(forge, tenant, live_router):
    cand = canary_of(forge, tenant, "cand-worse")
    decisions = simulate(forge, tenant, live_router, 4)
    assert [d["action"] for d in decisions] == ["rollback"]
    assert decisions[0]["numbers"]["winRateUpper"] < 0.45 and "judged worse" in decisions[0]["reasons"][0]
    route = forge.storage.routes.get(tenant, "coding")
    assert route.canary_model is None and route.production_model != cand
    assert forge.storage.models.get(tenant, "coding", cand).stage == ModelStage.ARCHIVED
    shown = live_router.get("/api/v1/insights/overview").json()["alerts"]
    assert [(x["kind"], x["modelVersionId"]) for x in shown] == [("canary.rollback", cand)]
    assert "judged worse" in shown[0]["message"]


def test_an_erroring_candidate_is_rolled_back_on_its_error_spike(forge, tenant, live_router):
    cand = canary_of(forge, tenant, "cand-broken")
    decisions = simulate(forge, tenant, live_router, 4)
    assert [d["action"] for d in decisions] == ["rollback"] and "errors spiked" in decisions[0]["reasons"][0]
    assert forge.storage.routes.get(tenant, "coding").canary_model is None
    events = [e.type for e in forge.storage.events.list(f"canary-{cand}").items]
    assert events == ["canary.start", "canary.hold", "canary.rollback"]  # adopted, no traffic yet, rolled back


def test_a_window_is_decided_once_however_often_its_step_runs(forge, tenant, live_router):
    cand = canary_of(forge, tenant, "cand-better")
    canary.step(forge, tenant, "coding", utcnow())
    traffic(forge, live_router, 0)
    at = utcnow()
    first = canary.step(forge, tenant, "coding", at)
    again = canary.step(forge, tenant, "coding", at)  # a retried activity, or a replay after a restart
    assert first["action"] == again["action"] == "advance" and again["repeat"] is True
    assert CanaryRepository(forge.storage.account).get(tenant, "coding").stage == 1
    assert [e.type for e in forge.storage.events.list(f"canary-{cand}").items].count("canary.advance") == 1


def test_a_person_can_pin_pause_and_skip_a_stage(forge, tenant, live_router):
    cand = canary_of(forge, tenant, "cand-better")
    canary.step(forge, tenant, "coding", utcnow())
    canary.control(forge, tenant, "coding", "pin")
    traffic(forge, live_router, 0)
    assert canary.step(forge, tenant, "coding", utcnow())["reasons"] == ["pinned by a person to this stage"]
    canary.control(forge, tenant, "coding", "pause")
    assert canary.step(forge, tenant, "coding", utcnow())["action"] == "paused"
    state = canary.control(forge, tenant, "coding", "skip")
    assert state.stage == 1 and forge.storage.routes.get(tenant, "coding").canary_percent == 50.0
    assert "canary.paused" in [e.type for e in forge.storage.events.list(f"canary-{cand}").items]


def test_a_worker_restarted_mid_stage_takes_no_decision_twice(forge, tenant, live_router):
    policy = {**POLICY, "interval_s": 0.3}
    cand = canary_of(forge, tenant, "cand-better", policy)
    repo = CanaryRepository(forge.storage.account)
    canary.step(forge, tenant, "coding", utcnow())
    traffic(forge, live_router, 0)
    loop = {"tenant": tenant, "domain": "coding"}

    def run_until(done, timeout_s=20.0):
        with LocalEngine(build_activities(forge)) as engine:
            assert EngineClient(engine.client).ensure_loop(loop)
            assert not EngineClient(engine.client).ensure_loop(loop)  # one loop per domain
            deadline = time.monotonic() + timeout_s
            while not done(repo.get(tenant, "coding")):
                assert time.monotonic() < deadline, repo.get(tenant, "coding").decisions[-3:]
                time.sleep(0.05)

    # The first worker advances to stage 1 and holds there (no new traffic); then it is stopped mid-stage.
    run_until(lambda s: s.stage == 1 and sum(d["action"] == "hold" for d in s.decisions) >= 2)
    before = repo.get(tenant, "coding").decisions
    run_until(lambda s: len(s.decisions) >= len(before) + 2)  # a new worker, a new loop, the same canary
    after = repo.get(tenant, "coding").decisions
    assert after[:len(before)] == before
    windows = [d["window"] for d in after if d["action"] not in ("start",)]
    assert len(windows) == len(set(windows)) and windows == sorted(windows)
    assert [d["action"] for d in after].count("advance") == 1 and repo.get(tenant, "coding").stage == 1
    assert [e.type for e in forge.storage.events.list(f"canary-{cand}").items].count("canary.advance") == 1
    assert canary_loop.instance_id(tenant, "coding") == f"canary-{tenant}-coding"


def decisions_of(forge, tenant):
    return CanaryRepository(forge.storage.account).get(tenant, "coding").decisions


def test_a_person_pins_the_canary_through_the_api_and_a_wrong_action_is_refused(forge, tenant, live_router):
    canary_of(forge, tenant, "cand-better")
    canary.step(forge, tenant, "coding", utcnow())
    refused = live_router.post("/api/v1/canary/coding/control", json={"action": "promote-now"})
    assert refused.status_code == 422
    assert live_router.post("/api/v1/canary/coding/control", json={"action": "pin"}).json()["control"] == "pinned"
    shown = live_router.get("/api/v1/canary/coding").json()
    assert shown["state"]["control"] == "pinned" and shown["latest"]["action"] == "pin"
    assert shown["policy"]["margin"] == 0.05


def test_an_earlier_candidates_shadow_report_stays_readable_after_the_next_canary_starts(forge, tenant, live_router,
                                                                                        forge_cli, monkeypatch):
    worse = canary_of(forge, tenant, "cand-worse")
    assert [d["action"] for d in simulate(forge, tenant, live_router, 4)] == ["rollback"]
    better = canary_of(forge, tenant, "cand-better")
    canary.step(forge, tenant, "coding", utcnow())  # the next canary is adopted: the state is about it now

    now = live_router.get("/api/v1/canary/coding").json()
    assert (now["candidate"], now["current"], [row["judged"] for row in now["judged"]]) == (better, True, [0])
    earlier = live_router.get("/api/v1/canary/coding", params={"candidate": worse}).json()
    assert (earlier["candidate"], earlier["current"], earlier["latest"]["action"]) == (worse, False, "rollback")
    [shadow] = earlier["judged"]
    assert (shadow["stage"], shadow["percent"], shadow["judged"]) == (0, 0, PER_WINDOW)
    assert (shadow["wins"], shadow["ties"], shadow["losses"]) == (0, 0, PER_WINDOW)  # it always answers worse
    assert shadow["winRate"]["upper"] < 0.45 and shadow["meanSimilarity"] is not None
    assert shadow["candidate"]["requests"] == PER_WINDOW and shadow["candidate"]["p95LatencyMs"] > 0
    assert shadow["candidate"]["costPerRequestUsd"] > 0
    assert shadow["production"]["requests"] == PER_WINDOW and shadow["production"]["costPerRequestUsd"] > 0

    unknown = live_router.get("/api/v1/canary/coding", params={"candidate": "01JZZZZZZZZZZZZZZZZZZZZZZZ"})
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
    assert live_router.get("/api/v1/canary/coding", params={"candidate": "../x"}).status_code == 422

    monkeypatch.setenv("FORGE_HOME", str(forge.settings.home))
    code, out, _ = forge_cli("canary", "report", "coding", "--candidate", worse)
    assert code == 0 and f"candidate {worse} (earlier)" in out
    assert re.search(rf"^  0 \(0%\) +{PER_WINDOW} +0/ *0/ *{PER_WINDOW} +0\.000 \[", out, re.MULTILINE), out
    code, _, err = forge_cli("canary", "show", "coding", "--candidate", "not-an-id")
    assert code == 1 and "model version id" in err


@pytest.mark.parametrize("replayed", ["student", "teacher"])
def test_a_tiny_cost_budget_limits_the_pairs_judged_per_window(forge, tenant, live_router, replayed):
    # One replay costs exactly a cent at the replayed model's prices (the fake counts 10 prompt tokens; output is
    # free), the other side's tokens cost nothing: 2.5 cents a window buys three pairs, at the right prices only.
    cent, free = {"price_input": 1000.0, "price_output": 0.0}, {"price_input": 0.0, "price_output": 0.0}
    prices = {f"{arm}_{k}": v for arm in ("student", "teacher")
              for k, v in (cent if arm == replayed else free).items()}
    priced = bootstrap(forge.settings.model_copy(update=prices), storage=forge.storage)
    policy = {**POLICY, "max_shadow_cost_usd_per_window": 0.025}
    if replayed == "student":  # shadow: the candidate replays production's answers
        canary_of(priced, tenant, "cand-equal", policy)
    else:  # 50%, with the teacher in production: the candidate's answers are replayed on the teacher
        canary_of(priced, tenant, "cand-equal", {**policy, "stages": POLICY["stages"][1:]})
        route = priced.storage.routes.get(tenant, "coding")
        priced.storage.routes.save(route.model_copy(update={"production_model": None}))
    decisions = simulate(priced, tenant, live_router, 2)
    assert [d["action"] for d in decisions] == ["hold", "hold"]
    assert [d["numbers"]["judged"] for d in decisions] == [3, 6]


@pytest.mark.parametrize("candidate, outcome, reason", [
    ("cand-better", "promoted", "every measure passed"), ("cand-equal", "active", "lower bound"),
    ("cand-worse", "rolled_back", "judged worse"), ("cand-broken", "rolled_back", "errors spiked")])
def test_the_control_loop_on_the_engine_takes_each_candidate_to_its_outcome(forge, tenant, live_router, candidate,
                                                                            outcome, reason):
    """The same simulation with nobody calling the step: the domain's loop on durabletask decides each window."""
    cand = canary_of(forge, tenant, candidate, {**POLICY, "interval_s": 0.2})
    repo = CanaryRepository(forge.storage.account)
    with LocalEngine(build_activities(forge)) as engine:
        assert EngineClient(engine.client).ensure_loop({"tenant": tenant, "domain": "coding"})
        deadline = time.monotonic() + 20
        while repo.get(tenant, "coding").candidate != cand:  # the loop's first look adopts the canary
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for window in range(6):
            traffic(forge, live_router, window)
            time.sleep(0.6)  # two windows or more
            if repo.get(tenant, "coding").status != "active":
                break
        deadline = time.monotonic() + (20 if outcome != "active" else 0)  # a slow machine: the last windows' turn
        while repo.get(tenant, "coding").status == "active" and time.monotonic() < deadline:
            time.sleep(0.1)
    state = repo.get(tenant, "coding")
    assert state.status == outcome, state.decisions[-3:]
    assert any(reason in r for d in state.decisions for r in d.get("reasons") or [])
    if outcome == "active":  # as good as production: it never leaves shadow within these requests
        assert state.stage == 0 and "advance" not in [d["action"] for d in state.decisions]
