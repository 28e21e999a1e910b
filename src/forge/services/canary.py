"""The canary's control step (one per domain and window), a person's controls (pin, pause, resume, skip) and the
canary report. The step is what the control loop (workflow/canary_loop.py) calls each window, in Azure and locally.

A decision is claimed on the canary's state under its ETag before anything changes, keyed by its window: a retried
or replayed step, or a second loop after a restart, finds the window decided and returns the same decision. The
route is then made to match the state (`converge`), which is idempotent, so a crash in between heals next window.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from forge.bootstrap import Forge
from forge.domain.canary import CanaryPolicy, Decision, decide, win_rate, window_of
from forge.domain.errors import AlreadyExists, ConcurrentUpdate, DomainNotFound, ForgeError, ModelNotFound
from forge.domain.models import ModelStage, Route, utcnow
from forge.services import models as registry
from forge.services.canary_evidence import gather, shadow_arm
from forge.services.domains import domain_for
from forge.services.jobs import record
from forge.services.notifications import announce
from forge.storage.canaries import KEEP_DECISIONS, CanaryRepository, CanaryState, JudgedPair

ACTIVITY = "canary_step"
ControlAction = Literal["pin", "pause", "resume", "skip"]
IDLE_S = 300.0  # a domain without a policy still has its loop: it looks again this often
_PAYLOAD = ("tenant", "domain", "candidate", "production")  # what `_tell` adds to a decision in its event


def step(forge: Forge, tenant: str, domain: str, at: datetime) -> dict[str, Any]:
    """Decide the window `at` falls in (once), make the route match, and say when to look again."""
    try:
        policy = domain_for(forge, tenant, domain).canary
    except DomainNotFound:
        return {"action": "idle", "next_s": IDLE_S, "reason": f"domain {domain} no longer exists"}
    repo = CanaryRepository(forge.storage.account)
    window = window_of(at, policy.interval_s)
    for _ in range(5):
        state = _follow(forge, repo, policy, repo.get(tenant, domain), at)
        if state.status != "active" or not policy.enabled:
            return {"action": "idle", "window": window, "status": state.status, "next_s": policy.interval_s}
        earlier = state.decided(window)
        if earlier is not None or window <= state.last_window:
            converge(forge, state, policy)
            return {**(earlier or {"action": "stale"}), "next_s": policy.interval_s, "repeat": True}
        evidence = asyncio.run(gather(forge, repo, state, policy, policy.stages[state.stage].percent, at))
        decision = decide(policy, state.stage, state.stage_started_at, at, evidence, state.control)
        entry = _apply(state, decision, window, at)
        try:
            state = repo.save(state)  # the claim: one decision per domain and window
        except (ConcurrentUpdate, AlreadyExists):
            continue  # someone else decided or changed it meanwhile: read again
        converge(forge, state, policy)
        _tell(forge, state, entry)
        return {**entry, "next_s": policy.interval_s}
    raise ConcurrentUpdate(f"The canary of {domain} kept changing under its control step; it is retried.")


class NoCanary(ForgeError):
    """The domain has no canary now: its state, not the request, is what is wrong (409)."""

    status = 409
    title = "No canary running"


def control(forge: Forge, tenant: str, domain: str, action: ControlAction, *, by: str = "a person") -> CanaryState:
    """A person's say: pin (no advancing), pause (no deciding), resume (automatic again), skip (advance now)."""
    policy = domain_for(forge, tenant, domain).canary
    repo = CanaryRepository(forge.storage.account)
    for _ in range(5):
        state = _follow(forge, repo, policy, repo.get(tenant, domain), utcnow())
        if state.status != "active":
            raise NoCanary(f"No canary is running for {domain}; promote a model to candidate "
                               "(`forge models promote ID`) to start one.")
        now = utcnow()
        if action == "skip":
            last = state.stage + 1 >= len(policy.stages)
            decision = Decision(action="promote" if last else "advance", stage=state.stage,
                                next_stage=None if last else state.stage + 1, reasons=[f"stage skipped by {by}"])
            entry = _apply(state, decision, state.last_window, now)
        else:
            state.control = {"pin": "pinned", "pause": "paused", "resume": "auto"}[action]
            entry = {"action": action, "stage": state.stage, "reasons": [f"{action} by {by}"], "numbers": {},
                     "window": state.last_window, "at": now.isoformat()}
            state.decisions.append(entry)
        try:
            state = repo.save(state)
        except ConcurrentUpdate:
            continue
        converge(forge, state, policy)
        _tell(forge, state, entry)
        return state
    raise ConcurrentUpdate(f"The canary of {domain} kept changing; try again.")


def report(forge: Forge, tenant: str, domain: str, candidate: str | None = None) -> dict[str, Any]:
    """The canary's state and policy and, for its candidate (or an earlier one, rolled back or promoted, named by
    `candidate`), the decisions and the shadow report per stage: the judged pairs (wins, ties, losses, the win rate
    with its bounds, similarity) beside each arm's p95 latency and cost per request."""
    policy = domain_for(forge, tenant, domain).canary
    repo = CanaryRepository(forge.storage.account)
    state = repo.get(tenant, domain)
    about = candidate or state.candidate
    pairs = [p for p in repo.pairs_of(tenant, about) if p.domain == domain] if about else []
    current = about is not None and about == state.candidate
    history = state.decisions if current or about is None else _history(forge, tenant, domain, about, bool(pairs))
    return {"domain": domain, "candidate": about, "current": current,
            "state": state.model_dump(mode="json", exclude={"etag"}), "policy": policy.model_dump(mode="json"),
            "judged": _stages(forge, policy, pairs, history), "decisions": history,
            "latest": history[-1] if history else None}


def _history(forge: Forge, tenant: str, domain: str, candidate: str, judged: bool) -> list[dict[str, Any]]:
    """An earlier candidate's decisions: the state has moved on, the events on its job (see `_tell`) remain."""
    try:
        job = forge.storage.models.get(tenant, domain, candidate).job_id
    except ModelNotFound:
        if not judged:
            raise ModelNotFound(f"No model version '{candidate}' in {domain} and no canary of it; "
                                f"`forge models list --domain {domain}` shows the domain's versions.") from None
        job = None  # deleted since: its pairs remain, and its events under the id a job-less canary uses
    found: list[dict[str, Any]] = []
    token = None
    while True:
        page = forge.storage.events.list(job or f"canary-{candidate}", limit=1000, continuation=token)
        found += [{k: v for k, v in e.data.items() if k not in _PAYLOAD} for e in page.items
                  if e.type.startswith("canary.") and e.data.get("tenant") == tenant
                  and e.data.get("domain") == domain and e.data.get("candidate") == candidate]
        token = page.continuation
        if not token:
            return found[-KEEP_DECISIONS:]


def _stages(forge: Forge, policy: CanaryPolicy, pairs: list[JudgedPair],
            history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stage: the judged pairs, and each arm's p95 latency and cost per request — the candidate's recomputed
    from its shadow answers in shadow, otherwise (and production's always) the stage's latest decision's numbers."""
    by_stage: dict[int, list[JudgedPair]] = {}
    for pair in pairs:
        by_stage.setdefault(pair.stage, []).append(pair)
    measured = {d["stage"]: d for d in history if (d.get("numbers") or {}).get("candidate") is not None}
    rows = []
    for stage in sorted(set(by_stage) | set(measured)):
        got, numbers = by_stage.get(stage, []), (measured.get(stage) or {}).get("numbers") or {}
        outcomes = [p.outcome for p in got if p.outcome]
        rate = win_rate(outcomes, policy.confidence)
        sims = [p.similarity for p in got if p.similarity is not None]
        shadow = [p for p in got if p.arm == "shadow"]
        cand = shadow_arm(forge.settings, shadow).summary() if shadow else numbers.get("candidate") or {}
        rows.append({"stage": stage, "percent": policy.stages[stage].percent if stage < len(policy.stages) else None,
                     "pairs": len(got), "judged": len(outcomes), "wins": outcomes.count("win"),
                     "ties": outcomes.count("tie"), "losses": outcomes.count("loss"),
                     "winRate": rate.model_dump() if rate else None,
                     "meanSimilarity": round(sum(sims) / len(sims), 2) if sims else None,
                     "candidate": _arm(cand), "production": _arm(numbers.get("production") or {}),
                     "decidedAt": (measured.get(stage) or {}).get("at")})
    return rows


def _arm(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary.get(k) for k in ("requests", "p95LatencyMs", "costPerRequestUsd")}


def converge(forge: Forge, state: CanaryState, policy: CanaryPolicy) -> Route:
    """Make the route say what the state says: the candidate at its stage's share, in production, or gone."""
    storage, tenant, domain = forge.storage, state.tenant, state.domain
    route = storage.routes.get(tenant, domain)
    lora, drain = forge.lora_server(), forge.settings.lora_drain_s
    if state.status == "promoted" and route.production_model != state.candidate and state.candidate:
        return registry.promote_model(forge, tenant, state.candidate, to=ModelStage.PRODUCTION).route
    if state.status == "rolled_back" and state.candidate and route.canary_model == state.candidate:
        return registry.archive_model(storage, tenant, state.candidate, lora=lora, drain_s=drain).route
    if state.status != "active" or route.canary_model != state.candidate:
        return route
    percent = policy.stages[min(state.stage, len(policy.stages) - 1)].percent
    if route.canary_percent == percent:
        return route
    if percent > 0:
        return registry.promote_model(forge, tenant, state.candidate, to=ModelStage.CANDIDATE,  # type: ignore[arg-type]
                                      canary_percent=percent).route
    for _ in range(5):  # shadow: the candidate stays the route's canary at 0%, so the router never picks it
        try:
            return storage.routes.save(route.model_copy(update={"canary_percent": 0.0, "updated_at": utcnow()}))
        except ConcurrentUpdate:
            route = storage.routes.get(tenant, domain)
    raise ConcurrentUpdate(f"The route of {domain} kept changing; the canary retries next window.")


def _follow(forge: Forge, repo: CanaryRepository, policy: CanaryPolicy, state: CanaryState,
            at: datetime) -> CanaryState:
    """Start the state over for a new canary model; end it when a person took its model off the route."""
    route = forge.storage.routes.get(state.tenant, state.domain)
    if route.canary_model and route.canary_model != state.candidate and policy.enabled:
        model = forge.storage.models.get(state.tenant, state.domain, route.canary_model)
        fresh = CanaryState(tenant=state.tenant, domain=state.domain, candidate=model.version_id,
                            production=route.production_model, status="active", stage=0, stage_started_at=at,
                            events_job=model.job_id or f"canary-{model.version_id}", etag=state.etag)
        entry = {"action": "start", "stage": 0, "reasons": [f"{model.version_id} is the canary: stage 0 "
                 f"({policy.stages[0].percent:g}%)"], "numbers": {}, "window": -1, "at": at.isoformat()}
        fresh.decisions.append(entry)
        try:
            saved = repo.save(fresh)
        except (ConcurrentUpdate, AlreadyExists):
            return repo.get(state.tenant, state.domain)
        _tell(forge, saved, entry)
        return saved
    if state.status == "active" and route.canary_model != state.candidate:
        state.status = "ended"  # promoted or rolled back by a person meanwhile
        try:
            return repo.save(state)
        except ConcurrentUpdate:
            return repo.get(state.tenant, state.domain)
    return state


def _apply(state: CanaryState, decision: Decision, window: int, at: datetime) -> dict[str, Any]:
    if decision.action == "advance" and decision.next_stage is not None:
        state.stage, state.stage_started_at = decision.next_stage, at
    elif decision.action == "promote":
        state.status = "promoted"
    elif decision.action == "rollback":
        state.status = "rolled_back"
    state.last_window = max(state.last_window, window)
    entry = {**decision.model_dump(mode="json"), "window": window, "at": at.isoformat()}
    state.decisions.append(entry)
    return entry


def _tell(forge: Forge, state: CanaryState, entry: dict[str, Any]) -> None:
    """Every decision is an event on the candidate's job; all but holds are also a notification."""
    action = entry["action"]
    message = f"canary {state.candidate} on {state.domain}: {action} (stage {entry['stage']}): " + \
        "; ".join(entry.get("reasons") or [])
    level = "warning" if action in ("rollback", "paused") else "info"
    payload = {"tenant": state.tenant, "domain": state.domain, "candidate": state.candidate,
               "production": state.production, **entry}
    record(forge, state.events_job, f"canary.{action}", message, level=level, **payload)
    if action not in ("hold", "paused"):
        announce(forge, state.tenant, state.events_job, f"forge.canary.{action}",
                 f"{state.events_job}.w{entry['window']}.s{entry['stage']}", payload)
