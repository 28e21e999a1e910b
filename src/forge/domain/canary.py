"""The canary policy: the stages a new student passes through (shadow → 5% → 25% → 100%), the live evidence each
stage gathers, and the rule that advances, holds or rolls it back. Pure: the numbers in, one decision out.

The judged win rate counts a win 1, a tie ½ and a loss 0 on sampled pairs (the candidate's and production's answers
to the same request, judged in both orders); its one-sided bounds come from the bootstrap the gates use
(`domain/stats.py`), seeded, so the same pairs always give the same decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from forge.domain.sections import Section
from forge.domain.stats import Interval, paired_bootstrap

Action = Literal["advance", "hold", "rollback", "promote", "paused"]  # promote: the last stage passed
Control = Literal["auto", "pinned", "paused"]
OUTCOME_POINTS = {"win": 1.0, "tie": 0.5, "loss": 0.0}


class CanaryStage(Section):
    percent: float = Field(ge=0, le=100, description="Share of callers the candidate answers; 0 is shadow: it "
                                                     "answers sampled requests in the background only.")
    min_requests: int = Field(200, ge=1, le=10_000_000, description="Candidate answers this stage needs first.")
    min_minutes: float = Field(60.0, ge=0, le=43_200, description="Time this stage lasts at least.")


def _default_stages() -> list[CanaryStage]:
    return [CanaryStage(percent=0, min_requests=100, min_minutes=60), CanaryStage(percent=5),
            CanaryStage(percent=25), CanaryStage(percent=100, min_requests=500, min_minutes=120)]


class CanaryPolicy(Section):
    """A domain's `[canary]` table: how a new student earns production on live traffic."""

    enabled: bool = Field(True, description="false: a candidate stays at [routing] canary_percent until a person "
                                            "promotes or rolls it back.")
    stages: list[CanaryStage] = Field(default_factory=_default_stages, min_length=1, max_length=10)
    margin: float = Field(0.05, ge=0, le=0.5, description="How much worse than production (in judged win rate, "
                                                          "0.5 = as good) the candidate may be and still advance.")
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="Of the win rate's bounds.")
    min_judged: int = Field(30, ge=1, le=100_000, description="Judged pairs a stage needs before the win rate counts.")
    judge_share: float = Field(0.2, gt=0, le=1, description="Share of the candidate's (or, in shadow, "
                                                             "production's) answers replayed on the other arm and judged.")
    max_judged_per_window: int = Field(50, ge=1, le=10_000, description="Pairs judged per window at most: the "
                                                                        "token and cost budget of judging and shadow.")
    max_shadow_tokens_per_window: int = Field(200_000, ge=1, description="Tokens the shadow replays may use per "
                                                                         "window.")
    max_shadow_cost_usd_per_window: float = Field(1.0, gt=0, description="US dollars the replays may cost per "
                                                  "window, at the replayed model's prices (the student's, or the "
                                                  "teacher's when it is the other arm); replaying stops at whichever "
                                                  "budget is spent first.")
    error_spike: float = Field(0.05, ge=0, le=1, description="Roll back at once when the candidate's error share "
                                                             "exceeds production's by more than this …")
    min_errors: int = Field(3, ge=1, description="… and it has failed at least this many times.")
    max_feedback_gap: float = Field(0.1, ge=0, le=1, description="Roll back when people reject the candidate's "
                                                                 "answers this much more often than production's …")
    min_feedback: int = Field(20, ge=1, description="… with at least this many rated answers on each arm.")
    max_latency_ratio: float = Field(1.5, gt=0, description="Hold while the candidate's p95 latency is over "
                                                            "production's times this.")
    max_cost_ratio: float = Field(1.2, gt=0, description="Hold while its cost per request is over production's "
                                                         "times this.")
    interval_s: float = Field(300.0, ge=0.01, le=86_400, description="The control loop's window: one decision "
                                                                      "per window.")

    @model_validator(mode="after")
    def _rising(self) -> "CanaryPolicy":
        shares = [s.percent for s in self.stages]
        if shares != sorted(shares) or len(set(shares)) != len(shares):
            raise ValueError("canary stages must have rising percents, e.g. 0, 5, 25, 100")
        return self


class ArmStats(BaseModel):
    """One arm's live numbers over the stage so far."""

    requests: int = 0
    errors: int = 0  # calls that failed (the teacher answered instead)
    fallbacks: int = 0  # calls handed to the teacher, errors and timeouts alike
    latencies_ms: list[float] = Field(default_factory=list, exclude=True)
    cost_usd: float = 0.0
    approved: int = 0
    rejected: int = 0

    def summary(self) -> dict[str, Any]:
        rated = self.approved + self.rejected
        return {"requests": self.requests, "errors": self.errors, "errorRate": _rate(self.errors, self.requests),
                "fallbackRate": _rate(self.fallbacks, self.requests), "p95LatencyMs": self.p95,
                "costPerRequestUsd": round(self.cost_usd / self.requests, 8) if self.requests else None,
                "approved": self.approved, "rejected": self.rejected,
                "rejectedRate": _rate(self.rejected, rated)}

    @property
    def p95(self) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)


class Evidence(BaseModel):
    candidate: ArmStats = Field(default_factory=ArmStats)
    production: ArmStats = Field(default_factory=ArmStats)
    outcomes: list[str] = Field(default_factory=list)  # win / tie / loss of each judged pair, oldest first


class Decision(BaseModel):
    action: Action
    stage: int  # the stage the decision was taken in
    next_stage: int | None = None
    reasons: list[str] = Field(default_factory=list)
    numbers: dict[str, Any] = Field(default_factory=dict)


def win_rate(outcomes: list[str], confidence: float) -> Interval | None:
    """The candidate's judged win rate (ties ½) with one-sided bounds at `confidence`; None without pairs."""
    return paired_bootstrap([OUTCOME_POINTS[o] for o in outcomes if o in OUTCOME_POINTS], confidence)


def numbers(policy: CanaryPolicy, evidence: Evidence) -> dict[str, Any]:
    rate = win_rate(evidence.outcomes, policy.confidence)
    return {"candidate": evidence.candidate.summary(), "production": evidence.production.summary(),
            "judged": len(evidence.outcomes), "winRate": rate.mean if rate else None,
            "winRateLower": rate.lower if rate else None, "winRateUpper": rate.upper if rate else None,
            "confidence": policy.confidence, "margin": policy.margin}


def decide(policy: CanaryPolicy, stage: int, stage_started: datetime, now: datetime, evidence: Evidence,
           control: Control = "auto") -> Decision:
    """Advance, hold or roll back the candidate in `stage`, with the reasons and the numbers behind them.

    Roll back when it errors far more than production, or when the evidence says it is worse beyond the margin;
    advance only when every measure says it is not; otherwise hold (too little evidence, or a limit exceeded)."""
    facts = numbers(policy, evidence)
    cand, prod = evidence.candidate, evidence.production
    spec = policy.stages[stage]
    made = lambda action, *why, nxt=None: Decision(action=action, stage=stage, next_stage=nxt,  # noqa: E731
                                                   reasons=list(why), numbers=facts)
    if control == "paused":
        return made("paused", "paused by a person: evidence is gathered, nothing is decided")
    cand_err, prod_err = _share(cand.errors, cand.requests), _share(prod.errors, prod.requests)
    if cand.errors >= policy.min_errors and cand_err - prod_err > policy.error_spike:
        return made("rollback", f"errors spiked: {cand.errors} of {cand.requests} candidate calls failed "
                                f"({cand_err:.1%}) against {prod_err:.1%} on production")
    rate = win_rate(evidence.outcomes, policy.confidence)
    floor = 0.5 - policy.margin
    if rate is not None and len(evidence.outcomes) >= policy.min_judged and rate.upper < floor:
        return made("rollback", f"judged worse: the win rate is below {rate.upper:.3f} (at {policy.confidence:.0%}), "
                                f"under {floor:.3f}, production's 0.5 less the margin")
    rated_c, rated_p = cand.approved + cand.rejected, prod.approved + prod.rejected
    if rated_c >= policy.min_feedback and rated_p >= policy.min_feedback:
        gap = _share(cand.rejected, rated_c) - _share(prod.rejected, rated_p)
        if gap > policy.max_feedback_gap:
            return made("rollback", f"people rejected {gap:.1%} more of the candidate's answers than production's")
    waiting = []
    if cand.requests < spec.min_requests:
        waiting.append(f"{cand.requests} of {spec.min_requests} candidate requests")
    elapsed_min = (now - stage_started).total_seconds() / 60
    if elapsed_min < spec.min_minutes:
        waiting.append(f"{elapsed_min:.1f} of {spec.min_minutes:g} minutes")
    if len(evidence.outcomes) < policy.min_judged:
        waiting.append(f"{len(evidence.outcomes)} of {policy.min_judged} judged pairs")
    elif rate is not None and rate.lower < floor:
        waiting.append(f"the win rate's lower bound {rate.lower:.3f} is not yet above {floor:.3f}")
    # In shadow the candidate answers off the call path, timed differently: its latency is shown, not compared.
    if spec.percent > 0 and cand.p95 is not None and prod.p95 and cand.p95 > prod.p95 * policy.max_latency_ratio:
        waiting.append(f"p95 latency {cand.p95:g} ms is over {policy.max_latency_ratio:g}× production's {prod.p95:g}")
    cand_cost, prod_cost = facts["candidate"]["costPerRequestUsd"], facts["production"]["costPerRequestUsd"]
    if cand_cost is not None and prod_cost and cand_cost > prod_cost * policy.max_cost_ratio:
        waiting.append(f"cost per request ${cand_cost:.6f} is over {policy.max_cost_ratio:g}× production's")
    if waiting:
        return made("hold", *waiting)
    if control == "pinned":
        return made("hold", "pinned by a person to this stage")
    if stage + 1 >= len(policy.stages):
        return made("promote", "every measure passed at the last stage: the candidate becomes production")
    return made("advance", f"not worse than production within {policy.margin:g} at {policy.confidence:.0%}",
                nxt=stage + 1)


def window_of(moment: datetime, interval_s: float) -> int:
    """The decision window `moment` falls in: one decision per domain and window."""
    return int(moment.timestamp() // interval_s)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
