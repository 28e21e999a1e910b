"""Usage per model from recorded calls: requests, tokens, latency percentiles, and the saving against the teacher."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


@dataclass(frozen=True)
class Prices:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


@dataclass(frozen=True)
class Call:
    """One recorded call, reduced to what usage needs."""

    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None


class ModelUsage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: float
    teacher_cost_usd: float
    saving_usd: float
    saving_percent: float | None
    projected_monthly_saving_usd: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of sorted `values`; None when there are none."""
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return float(values[min(rank, len(values)) - 1])


@dataclass
class _Tally:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies: list[float] = field(default_factory=list)


def summarize(
    calls: Iterable[Call], *, teacher: str, teacher_prices: Prices, student_prices: Prices, observed_days: float
) -> dict[str, ModelUsage]:
    """Per model: what its calls cost, what the teacher would have charged for the same tokens, and the saving.

    The monthly projection scales the saving over `observed_days` to 30 days.
    """
    tallies: dict[str, _Tally] = {}
    for call in calls:
        tally = tallies.setdefault(call.model, _Tally())
        tally.requests += 1
        tally.prompt_tokens += call.prompt_tokens or 0
        tally.completion_tokens += call.completion_tokens or 0
        if call.latency_ms is not None:
            tally.latencies.append(call.latency_ms)
    out = {}
    for model, t in tallies.items():
        t.latencies.sort()
        teacher_cost = teacher_prices.cost(t.prompt_tokens, t.completion_tokens)
        cost = teacher_cost if model == teacher else student_prices.cost(t.prompt_tokens, t.completion_tokens)
        saving = teacher_cost - cost
        out[model] = ModelUsage(
            model=model,
            requests=t.requests,
            prompt_tokens=t.prompt_tokens,
            completion_tokens=t.completion_tokens,
            latency_p50_ms=percentile(t.latencies, 50),
            latency_p95_ms=percentile(t.latencies, 95),
            cost_usd=round(cost, 6),
            teacher_cost_usd=round(teacher_cost, 6),
            saving_usd=round(saving, 6),
            saving_percent=round(100 * saving / teacher_cost, 2) if teacher_cost else None,
            projected_monthly_saving_usd=round(saving * 30 / observed_days, 2) if observed_days > 0 else None,
        )
    return out
