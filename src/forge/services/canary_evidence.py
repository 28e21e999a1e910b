"""A canary stage's live evidence: each arm's numbers from the router's stored traces (and their feedback), and
judged pairs — sampled answers replayed on the other arm in the background, judged in both orders, stored once.

In shadow (0%) production answers everyone and the candidate answers sampled requests afterwards; from 5% on the
candidate's own sampled answers are replayed on production. Either way nothing waits for it on the call path."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any, Iterable

from forge.bootstrap import Forge
from forge.domain.canary import ArmStats, CanaryPolicy, Evidence
from forge.domain.content import content_text
from forge.domain.models import ModelVersion, Trace
from forge.domain.scoring import similarity
from forge.providers.clients import client_for, grader_client
from forge.providers.inference import ChatClient, answer_text
from forge.providers.judge import compare
from forge.services.traces import router_calls
from forge.storage.canaries import CanaryRepository, CanaryState, JudgedPair


def sampled(trace_id: str, share: float) -> bool:
    """Whether a call is in the judged sample: a hash of its id, so a retry or restart samples the same calls."""
    return int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:4], "big") / 2 ** 32 < share


def stage_traces(forge: Forge, state: CanaryState, until: datetime) -> list[Trace]:
    """The router's calls in the domain since the stage began, oldest first."""
    return list(router_calls(forge.storage, state.tenant, state.domain, state.stage_started_at, until))


def arm_of(trace: Trace, state: CanaryState, teacher: str) -> tuple[str | None, bool]:
    """('candidate' | 'production' | None, failed) for one routed call."""
    meta = trace.metadata or {}
    route, failed_from = meta.get("route"), meta.get("fallbackFrom")
    if route == "fallback":
        side = "candidate" if failed_from == state.candidate else "production" if failed_from == state.production \
            else None
        return side, True
    if route == "canary" and trace.model == state.candidate:
        return "candidate", False
    if route == "production" and trace.model == state.production:
        return "production", False
    if route == "teacher" and state.production is None and trace.model == teacher:
        return "production", False
    return None, False


async def gather(forge: Forge, repo: CanaryRepository, state: CanaryState, policy: CanaryPolicy, percent: float,
                 until: datetime) -> Evidence:
    """The stage's evidence up to `until`; judges up to the window's budget of new sampled pairs first."""
    settings = forge.settings
    arms = {"candidate": ArmStats(), "production": ArmStats()}
    shadow = percent == 0
    to_judge: list[Trace] = []
    for trace in stage_traces(forge, state, until):
        side, failed = arm_of(trace, state, settings.teacher_model)
        if side is None or (shadow and side == "candidate"):
            continue
        arm = arms[side]
        arm.requests += 1
        arm.fallbacks += failed
        arm.errors += failed and "no answer within" not in str((trace.metadata or {}).get("fallbackReason"))
        if not failed:
            if trace.latency_ms is not None:
                arm.latencies_ms.append(trace.latency_ms)
            arm.cost_usd += replay_cost(settings, trace.prompt_tokens, trace.completion_tokens,
                                        teacher=side == "production" and state.production is None)
        arm.approved += trace.feedback == "approved"
        arm.rejected += trace.feedback == "rejected"
        if not failed and sampled(trace.id, policy.judge_share) and side == ("production" if shadow else "candidate"):
            to_judge.append(trace)
    known = {p.trace_id for p in repo.pairs_of(state.tenant, state.candidate or "", state.stage)}
    await _judge(forge, repo, state, policy, [t for t in to_judge if t.id not in known], shadow)
    pairs = sorted(repo.pairs_of(state.tenant, state.candidate or "", state.stage), key=lambda p: p.trace_id)
    if shadow:  # the candidate's numbers are its background answers
        arms["candidate"] = shadow_arm(settings, pairs)
    return Evidence(candidate=arms["candidate"], production=arms["production"],
                    outcomes=[p.outcome for p in pairs if p.outcome])


def shadow_arm(settings: Any, pairs: Iterable[JudgedPair]) -> ArmStats:
    """The candidate's numbers in shadow: its background answers to production's sampled calls."""
    cand = ArmStats()
    for pair in pairs:
        if pair.arm != "shadow":
            continue
        cand.requests += 1
        cand.errors += not pair.candidate_ok
        cand.fallbacks += not pair.candidate_ok
        if pair.candidate_ok and pair.latency_ms is not None:
            cand.latencies_ms.append(pair.latency_ms)
        cand.cost_usd += replay_cost(settings, pair.prompt_tokens, pair.completion_tokens, teacher=False)
    return cand


async def _judge(forge: Forge, repo: CanaryRepository, state: CanaryState, policy: CanaryPolicy,
                 traces: list[Trace], shadow: bool) -> None:
    """Replay up to the window's budget of sampled calls on the other arm, judge each pair, store it."""
    judge = grader_client(forge.settings)
    if judge is None or not traces or state.candidate is None:
        return  # no judge: the win rate stays unmeasured and the canary holds (it fails closed)
    storage, settings = forge.storage, forge.settings
    other_id = state.candidate if shadow else state.production
    other: ModelVersion | str = settings.teacher_model if other_id is None else \
        storage.models.get(state.tenant, state.domain, other_id)
    replay: ChatClient = client_for(settings, other, timeout_s=settings.router_timeout_s, max_retries=0,
                                    lora=forge.lora_server())
    tokens, cost = policy.max_shadow_tokens_per_window, policy.max_shadow_cost_usd_per_window
    try:
        for trace in traces[:policy.max_judged_per_window]:
            if tokens <= 0 or cost <= 0:
                break  # either budget spent: the rest wait for the next window
            recorded = content_text((trace.response or {}).get("content"))
            text, ok, usage, latency = await replayed(replay, trace)
            tokens -= int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
            cost -= replay_cost(settings, usage.get("prompt_tokens"), usage.get("completion_tokens"),
                                teacher=other_id is None)
            candidate, opponent = (text, recorded) if shadow else (recorded, text)
            # A failed production replay says nothing about the candidate: no verdict, rather than a free win.
            outcome = await compare(judge, trace.messages, candidate or None, opponent or None) \
                if (ok or shadow) and (candidate or opponent) else None
            repo.add_pair(JudgedPair(
                tenant=state.tenant, domain=state.domain, candidate=state.candidate, trace_id=trace.id,
                stage=state.stage, arm="shadow" if shadow else "canary", outcome=outcome,
                similarity=similarity(candidate, opponent) if candidate and opponent else None,
                candidate_ok=ok or not shadow, latency_ms=latency,
                prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
                candidate_text=candidate[:8000], other_text=opponent[:8000], created_at=trace.created_at))
    finally:
        for client in (replay, judge):
            await client.aclose()


async def replayed(client: ChatClient, trace: Trace) -> tuple[str, bool, dict[str, Any], float]:
    """The call's conversation answered again by `client`: (text, ok, usage, latency in ms). A failure is an answer
    that is not ok, never an exception: one model failing says nothing of the other."""
    started = asyncio.get_running_loop().time()
    try:
        answer = await client.complete({"messages": trace.messages})
        text, ok, usage = answer_text(answer), True, answer.get("usage") or {}
    except Exception:
        text, ok, usage = "", False, {}
    return text, ok, usage, (asyncio.get_running_loop().time() - started) * 1000


def replay_cost(settings: Any, prompt: int | None, completion: int | None, *, teacher: bool) -> float:
    """USD for one answer's tokens at the teacher's or the student's prices (per million tokens)."""
    p_in, p_out = (settings.teacher_price_input, settings.teacher_price_output) if teacher else \
        (settings.student_price_input, settings.student_price_output)
    return ((prompt or 0) * p_in + (completion or 0) * p_out) / 1_000_000
