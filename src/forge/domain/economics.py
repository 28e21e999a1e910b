"""What a domain's routed traffic cost against what the teacher would have charged for all of it, and the quality
the difference was bought at: per day, from per-call facts and the configured prices (no I/O).

A call is the student's when a student answered it; the teacher's when the teacher did, fallbacks included (the
student failed, the teacher answered). Student calls cost the student's token prices, except a LoRA-served
student's when an hourly cost is configured: then the day's share of the LoRA server's cost is theirs instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Iterable, Literal, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from forge.domain.routing import STUDENT_ARMS
from forge.domain.usage import Prices

Answerer = Literal["student", "teacher"]
Outcome = Literal["win", "tie", "loss"]
E = TypeVar("E", bound="Economics")


@dataclass(frozen=True, slots=True)  # a window holds one per routed call
class CallFacts:
    """One routed call, reduced to what its cost and quality need."""

    answered_by: Answerer
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    lora: bool = False  # answered by a LoRA-served student (an adapter on a LoRA server, or in-process)
    fallback: bool = False  # the student failed and the teacher answered
    feedback: str | None = None  # a person's verdict on the answer: approved | rejected


@dataclass(frozen=True)
class Pricing:
    teacher: Prices
    student: Prices
    lora_cost_per_hour: float | None = None  # USD; None: LoRA-served students cost the student's token prices


class Economics(BaseModel):
    """Requests, tokens, costs (USD), the saving and the quality, over a day or a window."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    student_requests: int = 0
    teacher_requests: int = 0  # fallbacks included
    fallbacks: int = 0
    lora_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    teacher_cost_usd: float = 0.0  # every call's tokens at the teacher's prices: what the teacher would have cost
    cost_usd: float = 0.0  # what the calls did cost: student calls as the student, teacher calls as the teacher
    student_cost_usd: float = 0.0  # of which the student's (token-priced calls plus the LoRA share)
    lora_cost_usd: float = 0.0  # of which the share of the LoRA server's hourly cost
    saving_usd: float = 0.0
    saving_percent: float | None = None  # of the teacher's cost; None when there was none
    approved: int = 0  # people's verdicts on the student's answers
    rejected: int = 0
    approval_rate: float | None = None  # approved / (approved + rejected)
    wins: int = 0  # judged pairs with a verdict, from the student's side
    ties: int = 0
    losses: int = 0
    win_rate: float | None = None  # (wins + ties / 2) / judged


COUNTS = ("student_requests", "teacher_requests", "fallbacks", "lora_requests", "prompt_tokens", "completion_tokens",
          "approved", "rejected", "wins", "ties", "losses")
COSTS = ("teacher_cost_usd", "cost_usd", "student_cost_usd", "lora_cost_usd")


class DayEconomics(Economics):
    date: str  # YYYY-MM-DD (UTC)


def answerer(route: str | None, model: str | None, teacher: str) -> Answerer:
    """Who answered a routed call: the arm the router recorded, or (a call recorded without one) its model."""
    if route is not None:
        return "student" if route in STUDENT_ARMS else "teacher"
    return "student" if model is not None and model != teacher else "teacher"


def lora_hours(day: date, now: datetime) -> float:
    """Hours of `day` (UTC) the LoRA server was paid for by `now`: 24 for a past day, those elapsed for today."""
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    return max(0.0, min(24.0, (now - start).total_seconds() / 3600))


def lora_shares(requests: Mapping[str, int], day_cost: float) -> dict[str, float]:
    """A day's LoRA server cost shared among domains by their LoRA-served requests; a day without any charges none
    (an idle server's cost is not traffic's)."""
    total = sum(requests.values())
    return {name: day_cost * n / total if total else 0.0 for name, n in requests.items()}


def day_economics(day: str, calls: Iterable[CallFacts], outcomes: Iterable[Outcome | None], pricing: Pricing,
                  lora_share: float = 0.0) -> DayEconomics:
    """One domain's day: `calls` routed that day, `outcomes` of the day's judged pairs (None: no verdict) and, when
    an hourly LoRA cost is configured, the domain's `lora_share` of that day's."""
    by_hour = pricing.lora_cost_per_hour is not None
    e = DayEconomics(date=day)
    teacher_cost = cost = student_cost = 0.0
    for call in calls:
        prompt, completion = call.prompt_tokens or 0, call.completion_tokens or 0
        e.prompt_tokens += prompt
        e.completion_tokens += completion
        teacher_cost += pricing.teacher.cost(prompt, completion)
        if call.answered_by == "teacher":
            e.teacher_requests += 1
            e.fallbacks += call.fallback
            cost += pricing.teacher.cost(prompt, completion)
            continue
        e.student_requests += 1
        e.lora_requests += call.lora
        e.approved += call.feedback == "approved"
        e.rejected += call.feedback == "rejected"
        if not (call.lora and by_hour):
            student_cost += pricing.student.cost(prompt, completion)
    lora = lora_share if by_hour else 0.0
    student_cost += lora
    cost += student_cost
    e.teacher_cost_usd, e.cost_usd = round(teacher_cost, 6), round(cost, 6)
    e.student_cost_usd, e.lora_cost_usd = round(student_cost, 6), round(lora, 6)
    for outcome in outcomes:
        e.wins += outcome == "win"
        e.ties += outcome == "tie"
        e.losses += outcome == "loss"
    return _rated(e, teacher_cost - cost, teacher_cost)


def combine(items: Iterable[Economics]) -> Economics:
    """A window's figures: the days' counts and costs added, the rates taken over the added counts."""
    total = Economics()
    for e in items:
        for name in COUNTS + COSTS:
            setattr(total, name, getattr(total, name) + getattr(e, name))
    for name in COSTS:
        setattr(total, name, round(getattr(total, name), 6))
    return _rated(total, total.teacher_cost_usd - total.cost_usd, total.teacher_cost_usd)


def _rated(e: E, saving: float, teacher_cost: float) -> E:
    e.saving_usd = round(saving, 6)
    e.saving_percent = round(100 * saving / teacher_cost, 2) if teacher_cost else None
    rated, judged = e.approved + e.rejected, e.wins + e.ties + e.losses
    e.approval_rate = round(e.approved / rated, 4) if rated else None
    e.win_rate = round((e.wins + e.ties / 2) / judged, 4) if judged else None
    return e


class PriceBasis(BaseModel):
    """The prices a report was computed at (USD per million tokens; the LoRA server's USD an hour)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    teacher_input: float
    teacher_output: float
    student_input: float
    student_output: float
    lora_cost_per_hour: float | None = None

    @classmethod
    def of(cls, pricing: Pricing) -> PriceBasis:
        return cls(teacher_input=pricing.teacher.input, teacher_output=pricing.teacher.output,
                   student_input=pricing.student.input, student_output=pricing.student.output,
                   lora_cost_per_hour=pricing.lora_cost_per_hour)


class DomainEconomics(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    domain: str
    days: list[DayEconomics]  # oldest first, every day of the window (UTC)
    total: Economics


class EconomicsReport(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    since: str  # the window's first day, YYYY-MM-DD (UTC); it ends today
    days: int
    prices: PriceBasis
    domains: list[DomainEconomics]
    total: Economics  # every listed domain's window together
