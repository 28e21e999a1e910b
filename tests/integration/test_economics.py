"""Economics in view over a real server and the CLI: per domain and day, what the routed traffic would have cost on
the teacher, what it cost (student and teacher calls, a fallback among them), the saving, and the quality (people's
verdicts on the student's answers, judged pairs); a LoRA server's hourly cost shared among domains."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.config import load_settings
from forge.domain.models import utcnow
from forge.storage.canaries import JudgedPair
from forge.storage.drift import DriftRepository
from tests.factories import make_model_version, make_trace

TEACHER = "gpt-4.1"  # the default FORGE_TEACHER_MODEL; default prices: teacher 2/8, student 0.8/3.2 USD per 1M tokens


def routed(tenant: str, at: datetime, route: str, model: str, prompt: int, completion: int, domain: str = "coding",
           **fields):
    metadata = {"route": route, **({"fallbackFrom": fields.pop("fallback_from")} if "fallback_from" in fields else {})}
    return make_trace(tenant, domain, created_at=at, source="router", model=model, metadata=metadata,
                      prompt_tokens=prompt, completion_tokens=completion, **fields)


def pair(tenant: str, candidate: str, at: datetime, outcome: str | None, n: int) -> JudgedPair:
    return JudgedPair(tenant=tenant, domain="coding", candidate=candidate, trace_id=f"coding.pair{n}", stage=-1,
                      arm="drift", outcome=outcome, created_at=at)


def seed(forge, tenant: str) -> tuple[str, str]:
    """Two days of coding traffic; returns the two days (YYYY-MM-DD)."""
    now = utcnow()
    first = (now - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    second = (now - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    production = forge.storage.models.create(make_model_version(tenant, stage="production")).version_id
    canary = forge.storage.models.create(make_model_version(tenant, stage="candidate")).version_id

    def at(day: datetime, minute: int) -> datetime:
        return day + timedelta(minutes=minute)

    forge.storage.traces.add([
        # First day: two student answers (approved), a teacher answer (rejected: not the student's quality), and a
        # fallback the teacher answered after the student failed; an imported trace is not routed traffic.
        routed(tenant, at(first, 1), "production", production, 1000, 500, feedback="approved"),
        routed(tenant, at(first, 2), "production", production, 1000, 500, feedback="approved"),
        routed(tenant, at(first, 3), "teacher", TEACHER, 1000, 500, feedback="rejected"),
        routed(tenant, at(first, 4), "fallback", TEACHER, 2000, 1000, fallback_from=production),
        make_trace(tenant, created_at=at(first, 5), source="import", model=TEACHER, prompt_tokens=5000,
                   completion_tokens=5000),
        # Second day: the canary's answer (rejected) and production's (approved).
        routed(tenant, at(second, 1), "canary", canary, 1000, 500, feedback="rejected"),
        routed(tenant, at(second, 2), "production", production, 1000, 500, feedback="approved"),
    ])
    pairs = DriftRepository(forge.storage.account)  # the production student's answers judged against the teacher
    for n, (day, outcome) in enumerate([(first, "win"), (first, "tie"), (second, "loss"), (second, "win"),
                                        (second, None)]):
        pairs.add_pair(pair(tenant, production, at(day, 10 + n), outcome, n))
    return first.date().isoformat(), second.date().isoformat()


def figures(e: dict) -> tuple:
    return (e["studentRequests"], e["teacherRequests"], e["fallbacks"], e["teacherCostUsd"], e["costUsd"],
            e["savingUsd"], e["savingPercent"], e["approved"], e["rejected"], e["approvalRate"], e["wins"], e["ties"],
            e["losses"], e["winRate"])


def test_each_day_shows_the_teacher_cost_the_actual_cost_the_saving_and_the_quality_it_was_bought_at(
        forge, tenant, keyed_api):
    first, second = seed(forge, tenant)
    body = keyed_api.get("/api/v1/economics", params={"domain": "coding", "days": 3}).json()
    [coding] = body["domains"]
    assert [d["date"] for d in coding["days"]][:2] == [first, second] and body["since"] == first
    day1, day2, today = coding["days"]
    # Day 1: tokens 5000 in, 2500 out; on the teacher 5000 × $2/M + 2500 × $8/M = $0.03. Actual: the students'
    # 2000 × $0.8/M + 1000 × $3.2/M = $0.0048 plus the teacher's own and the fallback's 3000/1500 at its prices
    # = $0.018. Verdicts on student answers: 2 approved; pairs: a win and a tie.
    assert figures(day1) == (2, 2, 1, 0.03, 0.0228, 0.0072, 24.0, 2, 0, 1.0, 1, 1, 0, 0.75)
    assert (day1["promptTokens"], day1["completionTokens"]) == (5000, 2500)
    # Day 2: two student answers, 2000/1000 tokens: $0.012 on the teacher, $0.0048 on the students; one approved,
    # one rejected; a loss and a win judged (the pair without a verdict counts for nothing).
    assert figures(day2) == (2, 0, 0, 0.012, 0.0048, 0.0072, 60.0, 1, 1, 0.5, 1, 0, 1, 0.5)
    assert figures(today) == (0, 0, 0, 0, 0, 0, None, 0, 0, None, 0, 0, 0, None)
    assert figures(coding["total"]) == (4, 2, 1, 0.042, 0.0276, 0.0144, 34.29, 3, 1, 0.75, 2, 1, 1, 0.625)
    assert body["prices"] == {"teacherInput": 2.0, "teacherOutput": 8.0, "studentInput": 0.8, "studentOutput": 3.2,
                              "loraCostPerHour": None}

    every = keyed_api.get("/api/v1/economics", params={"days": 3}).json()
    assert "coding" in [d["domain"] for d in every["domains"]] and len(every["domains"]) > 1
    assert every["total"] == coding["total"]  # the other domains had no traffic
    assert len(keyed_api.get("/api/v1/economics").json()["domains"][0]["days"]) == 14


def test_bad_days_or_domains_are_refused_at_the_edge_and_a_read_only_key_may_read(forge, tenant, api, keyed_api):
    for days in (0, 91, "week"):
        answer = keyed_api.get("/api/v1/economics", params={"days": days})
        assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json")
        assert "days" in answer.text
    assert keyed_api.get("/api/v1/economics", params={"domain": "Not A Name!"}).status_code == 422
    unknown = keyed_api.get("/api/v1/economics", params={"domain": "nosuchdomain"})
    assert unknown.status_code == 404 and "nosuchdomain" in unknown.json()["detail"]
    assert httpx.get(str(api.base_url.join("/api/v1/economics"))).status_code == 401  # no key
    reader = forge.storage.keys.create(tenant, "reader", ["read"])[0]
    assert api.get("/api/v1/economics", params={"days": 90}, headers={"X-API-Key": reader}).status_code == 200
    operation = api.get("/openapi.json").json()["paths"]["/api/v1/economics"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"domain", "days"} and "404" in operation["responses"]


def test_forge_status_shows_each_domains_week_and_forge_economics_prints_the_days(forge, tenant, forge_cli,
                                                                                 keyed_api):
    first, _ = seed(forge, tenant)
    code, out, _ = forge_cli("status")
    assert code == 0
    lines = out.splitlines()
    coding = next(i for i, line in enumerate(lines) if line.strip().startswith("coding "))
    assert lines[coding + 1].strip() == (
        "last 7 days: teacher $0.0420, actual $0.0276, saved $0.0144 (34.29%) on 4 student and 2 teacher calls; "
        "approval 75.0% of 4 rated, win rate vs the teacher 62.5% of 4 judged")
    legal = next(i for i, line in enumerate(lines) if line.strip().startswith("legal "))
    assert lines[legal + 1].strip() == "last 7 days: no routed calls"

    code, out, _ = forge_cli("economics", "--domain", "coding", "--days", "3")
    assert code == 0
    row = next(line for line in out.splitlines() if line.strip().startswith(first)).split()
    assert row == [first, "2", "2", "1", "$0.0300", "$0.0228", "$0.0072", "24%", "100.0%", "of", "2", "75.0%", "of",
                   "2"]
    row = next(line for line in out.splitlines() if line.strip().startswith("total")).split()
    assert row[:8] == ["total", "4", "2", "1", "$0.0420", "$0.0276", "$0.0144", "34.29%"]

    code, out, _ = forge_cli("economics", "--domain", "coding", "--days", "3", "--json")
    assert json.loads(out) == keyed_api.get("/api/v1/economics", params={"domain": "coding", "days": 3}).json()
    remote = ("--url", str(keyed_api.base_url).rstrip("/"), "--key", keyed_api.headers["X-API-Key"])
    code, remote_out, _ = forge_cli(*remote, "economics", "--domain", "coding", "--days", "3", "--json")
    assert code == 0 and json.loads(remote_out) == json.loads(out)
    code, remote_out, _ = forge_cli(*remote, "status")
    assert code == 0 and lines[coding + 1] in remote_out.splitlines()
    code, _, err = forge_cli("economics", "--days", "0")
    assert code == 2 and "--days" in err


def test_a_lora_servers_hourly_cost_is_shared_among_the_domains_by_their_lora_served_requests(
        azurite, storage, tenant, tmp_path):
    settings = load_settings(storage_connection=azurite.connection_string, home=tmp_path / "home",
                             lora_cost_per_hour=2.0)
    forge = bootstrap(settings, storage=storage)
    key = forge.storage.keys.create(tenant, "test")[0]
    day = (utcnow() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    lora = {d: forge.storage.models.create(make_model_version(tenant, d, provider_model_id=None,
                                                              adapter_uri=f"models/{tenant}/{d}/adapter")).version_id
            for d in ("coding", "legal")}
    hosted = forge.storage.models.create(make_model_version(tenant, "coding")).version_id
    forge.storage.traces.add(
        [routed(tenant, day + timedelta(minutes=i), "production", lora["coding"], 1000, 500) for i in range(3)]
        + [routed(tenant, day, "canary", hosted, 1000, 500),
           routed(tenant, day, "production", lora["legal"], 1000, 500, domain="legal")])
    with serving(create_app(forge)) as url:
        body = httpx.get(f"{url}/api/v1/economics", params={"days": 2}, headers={"X-API-Key": key}).json()
    found = {d["domain"]: d["days"][0] for d in body["domains"]}
    # A whole past day of the server: 24 h × $2 = $48, three quarters of its LoRA calls coding's, one legal's.
    assert (found["coding"]["loraRequests"], found["coding"]["loraCostUsd"]) == (3, 36.0)
    assert found["coding"]["studentCostUsd"] == 36.0024  # plus the hosted canary's tokens
    assert found["coding"]["teacherCostUsd"] == 0.024 and found["coding"]["savingUsd"] == round(0.024 - 36.0024, 6)
    assert (found["legal"]["loraRequests"], found["legal"]["costUsd"]) == (1, 12.0)
    assert body["prices"]["loraCostPerHour"] == 2.0 and body["total"]["loraCostUsd"] == 48.0
