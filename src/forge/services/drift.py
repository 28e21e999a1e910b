"""Drift watching, one check per domain and window (called by the domain's control loop beside the canary step):
how often the production student hands calls to the teacher, how its sampled answers fare against the teacher's,
and how the inputs moved away from its training set. Past a threshold of the domain's `[drift]` table: a job event,
a notification, and (when the domain says so) a queued distillation run.

A check is claimed by storing it under its window before anything is told, so a retried or replayed step, or a
second loop after a restart, never alerts twice for one window; a check claimed but not yet told (a crash in
between) is told by the next step that finds it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from forge.bootstrap import Forge
from forge.domain.canary import win_rate, window_of
from forge.domain.content import content_text
from forge.domain.drift import (
    TRAFFIC_NGRAMS,
    DriftPolicy,
    Measures,
    alerts,
    compare,
    profile,
)
from forge.domain.errors import DomainNotFound, ForgeError, NotFound
from forge.domain.models import ModelVersion, Trace
from forge.domain.scoring import similarity
from forge.providers.clients import client_for, grader_client
from forge.providers.judge import compare as judge_pair
from forge.services import runs
from forge.services.canary_evidence import replayed, sampled
from forge.services.domains import domain_for
from forge.services.jobs import record
from forge.services.notifications import announce
from forge.services.traces import router_calls
from forge.storage.canaries import JudgedPair
from forge.storage.drift import DriftCheck, DriftRepository, StoredProfile

ACTIVITY = "drift_check"
IDLE_S = 300.0
SLICE = timedelta(hours=1)  # calls are read backwards from the check's moment, an hour at a time
TRAIN_FILE = "train"  # the dataset file the student learned from


def step(forge: Forge, tenant: str, domain: str, at: datetime) -> dict[str, Any]:
    """Check the window `at` falls in (once), tell its alerts, and say when to look again."""
    try:
        policy = domain_for(forge, tenant, domain).drift
    except DomainNotFound:
        return {"action": "idle", "next_s": IDLE_S, "reason": f"domain {domain} no longer exists"}
    interval = policy.check_minutes * 60
    if not policy.enabled:
        return {"action": "off", "next_s": interval}
    repo = DriftRepository(forge.storage.account)
    window = window_start(at, interval)
    found = repo.check(tenant, domain, window)
    if found is None:
        fresh = asyncio.run(measure(forge, repo, tenant, domain, policy, at))
        fresh.window = window
        found = repo.claim(fresh) or repo.check(tenant, domain, window)
        repeat = False
    else:
        repeat = True
    assert found is not None  # claimed by us or by whoever claimed it first
    if found.status == "claimed":
        found = _tell(forge, repo, policy, found)
    return {"action": "alert" if found.alerts else "ok", "window": window, "alerts": found.alerts,
            "runJob": found.run_job, "next_s": interval, "repeat": repeat}


async def measure(forge: Forge, repo: DriftRepository, tenant: str, domain: str, policy: DriftPolicy,
                  at: datetime) -> DriftCheck:
    """The window's measures against the production student's training set (nothing to measure on the teacher)."""
    check = DriftCheck(tenant=tenant, domain=domain, window=0, at=at)
    route = forge.storage.routes.get(tenant, domain)
    if route.production_model is None:
        check.note = "the teacher serves this domain: there is no student to drift"
        return check
    model = forge.storage.models.get(tenant, domain, route.production_model)
    check.model = model.version_id
    since = at - timedelta(hours=policy.window_hours)
    calls = _recent_calls(forge, tenant, domain, since, at, policy.max_traces)
    measures = Measures()
    answered: list[Trace] = []
    for trace in calls:
        meta = trace.metadata or {}
        if meta.get("route") == "fallback" and meta.get("fallbackFrom") == model.version_id:
            measures.requests += 1
            measures.fallbacks += 1
        elif meta.get("route") == "production" and trace.model == model.version_id:
            measures.requests += 1
            answered.append(trace)
    if measures.requests:
        measures.fallback_share = round(measures.fallbacks / measures.requests, 4)
    await _judge(forge, repo, model, policy, [t for t in answered if sampled(t.id, policy.judge_share)], since)
    outcomes = [p.outcome for p in repo.pairs_of(tenant, model.version_id, since) if p.outcome]
    measures.judged, measures.win_rate = len(outcomes), win_rate(outcomes, policy.confidence)
    measures.traffic = profile((user_text(t.messages) for t in calls), keep=TRAFFIC_NGRAMS)
    training = _training_profile(forge, repo, model)
    if training is None:
        check.note = f"{model.version_id} has no stored training set: inputs are not compared"
    else:
        moved = compare(training.profile, measures.traffic)
        measures = measures.model_copy(update=moved)
    check.measures = measures.model_dump(mode="json")
    check.alerts = alerts(policy, measures)
    if measures.requests < policy.min_requests:
        check.note = f"{measures.requests} of {policy.min_requests} student calls in the window: no alert yet"
    return check


def window_start(at: datetime, interval_s: float) -> int:
    """The check window `at` falls in, as its start in seconds since the epoch: one key per window, and the same
    order and meaning whatever `check_minutes` was when a check was stored."""
    return int(window_of(at, interval_s) * interval_s)


def user_text(messages: list[dict[str, Any]]) -> str:
    """What a caller asked: the user turns' text."""
    return "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "user")


def history(forge: Forge, tenant: str, domain: str, *, days: float = 7, now: datetime) -> dict[str, Any]:
    """The domain's policy and its checks over the last `days`, oldest first."""
    policy = domain_for(forge, tenant, domain).drift
    repo = DriftRepository(forge.storage.account)
    first = int((now - timedelta(days=days)).timestamp())
    checks = [c.model_dump(mode="json", exclude={"etag", "tenant"}) for c in repo.history(tenant, domain,
                                                                                        since_window=first)]
    return {"domain": domain, "policy": policy.model_dump(mode="json"), "checks": checks,
            "latest": checks[-1] if checks else None}


def _recent_calls(forge: Forge, tenant: str, domain: str, since: datetime, until: datetime, keep: int) -> list[Trace]:
    """The domain's newest `keep` router calls in [since, until), oldest first: read an hour at a time backwards
    from `until`, so a busy day costs about `keep` calls read, not the whole window."""
    slices: list[list[Trace]] = []
    found, end = 0, until
    while end > since and found < keep:
        start = max(since, end - SLICE)
        calls = list(router_calls(forge.storage, tenant, domain, start, end))
        slices.append(calls)
        found += len(calls)
        end = start
    newest = [t for calls in reversed(slices) for t in calls]
    return newest[-keep:]


def _training_profile(forge: Forge, repo: DriftRepository, model: ModelVersion) -> StoredProfile | None:
    """The profile of the inputs `model` was trained on, made once from its dataset's train.jsonl and kept."""
    stored = repo.profile(model.tenant, model.domain, model.version_id)
    if stored is not None:
        return stored
    dataset_id = model.dataset_id
    if dataset_id is None and model.job_id:
        try:
            dataset_id = forge.storage.jobs.get(model.tenant, model.job_id).dataset_id
        except NotFound:
            dataset_id = None
    if dataset_id is None:
        return None
    try:
        examples = forge.storage.datasets.read_file(model.tenant, dataset_id, TRAIN_FILE)
        made = profile(user_text(e.get("messages") or []) for e in examples)
    except NotFound:
        return None
    if not made.count:
        return None
    return repo.keep_profile(StoredProfile(tenant=model.tenant, domain=model.domain, model=model.version_id,
                                           dataset_id=dataset_id, profile=made))


async def _judge(forge: Forge, repo: DriftRepository, model: ModelVersion, policy: DriftPolicy,
                 traces: list[Trace], since: datetime) -> None:
    """Replay up to the check's budget of sampled student answers on the teacher, judge each pair, keep it."""
    known = {p.trace_id for p in repo.pairs_of(model.tenant, model.version_id, since)} if traces else set()
    todo = [t for t in traces if t.id not in known][:policy.max_judged_per_check]
    judge = grader_client(forge.settings) if todo else None
    if judge is None:
        return  # no judge (or nothing new): quality rests on the pairs judged so far
    settings = forge.settings
    teacher = client_for(settings, settings.teacher_model, timeout_s=settings.router_timeout_s, max_retries=0)
    try:
        for trace in todo:
            student = content_text((trace.response or {}).get("content"))
            reference, ok, _, _ = await replayed(teacher, trace)
            if not ok:
                continue  # the teacher failing says nothing of the student: no pair
            outcome = await judge_pair(judge, trace.messages, student or None, reference or None)
            repo.add_pair(JudgedPair(
                tenant=model.tenant, domain=model.domain, candidate=model.version_id, trace_id=trace.id, stage=-1,
                arm="drift", outcome=outcome, similarity=similarity(student, reference) if student and reference
                else None, candidate_text=student[:8000], other_text=reference[:8000], created_at=trace.created_at))
    finally:
        for client in (teacher, judge):
            await client.aclose()


def _tell(forge: Forge, repo: DriftRepository, policy: DriftPolicy, check: DriftCheck) -> DriftCheck:
    """The alert's event and notification, and its run when the domain asks for one; then the check is told."""
    if check.alerts and check.model:
        model = forge.storage.models.get(check.tenant, check.domain, check.model)
        events_job = model.job_id or f"drift-{model.version_id}"
        check.run_job = _queue_run(forge, repo, policy, check)
        payload = {"tenant": check.tenant, "domain": check.domain, "model": check.model, "window": check.window,
                   "alerts": check.alerts, "measures": check.measures, "runJob": check.run_job}
        message = f"drift on {check.domain} ({check.model}): " + "; ".join(check.alerts)
        record(forge, events_job, "drift.alert", message, level="warning", **payload)
        announce(forge, check.tenant, events_job, "forge.drift.alert",
                 f"{events_job}.drift.{check.domain}.w{int(check.window)}", payload)
    check.status = "told"
    return repo.save(check)


def _queue_run(forge: Forge, repo: DriftRepository, policy: DriftPolicy, check: DriftCheck) -> str | None:
    """A run of the domain for this alert, unless the domain does not ask for one, one is under way, or drift
    started one within the cool-down."""
    if not policy.start_run:
        return None
    busy = [j for j in forge.storage.jobs.scan(check.tenant, statuses=runs.UNFINISHED) if j.domain == check.domain]
    if busy:
        check.note = f"no run queued: {busy[0].job_id} is under way"
        return None
    cooldown = int((check.at - timedelta(hours=policy.run_cooldown_hours)).timestamp())
    earlier = [c.run_job for c in repo.history(check.tenant, check.domain, since_window=cooldown)
               if c.run_job and c.window != check.window]
    if earlier:
        check.note = f"no run queued: drift started {earlier[-1]} within {policy.run_cooldown_hours:g} h"
        return None
    try:
        job, _ = runs.queue(forge, tenant=check.tenant, domain=check.domain, trigger_kind="drift",
                            job_id=f"drift-{check.tenant}-{check.domain}-{int(check.window)}")
    except ForgeError as exc:  # the domain was disabled, its provider is no longer allowed …: said, not retried
        check.note = f"no run queued: {exc}"
        return None
    return job.job_id
