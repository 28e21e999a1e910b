"""A tenant's datasets and models at a glance (`GET /api/v1/datasets/stats`, `/api/v1/models/stats`): counts by
state, tokens, cost and usage, summed from the records alone."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from forge.domain.models import Dataset, DistillationJob, ModelStage, ModelVersion, Route
from forge.domain.usage import ModelUsage


def _money(value: float) -> float:
    return round(value, 6)


def datasets_summary(datasets: Iterable[Dataset], jobs: Iterable[DistillationJob],
                     models: Iterable[ModelVersion]) -> dict[str, Any]:
    """Counts (active and deleted, by domain and source), examples, billed tokens and the estimated training cost of
    one run on each active dataset, and how many jobs and models used them."""
    found = list(datasets)
    active = [d for d in found if d.deleted_at is None]
    used_by_jobs = Counter(j.dataset_id for j in jobs if j.dataset_id)
    used_by_models = Counter(m.dataset_id for m in models if m.dataset_id)
    priced = [d.estimate["cost"] for d in active if isinstance(d.estimate.get("cost"), (int, float))]
    return {
        "total": len(found),
        "byState": {"active": len(active), "deleted": len(found) - len(active)},
        "byDomain": dict(sorted(Counter(d.domain for d in active).items())),
        "bySource": dict(sorted(Counter(d.source.split(":")[0] for d in active).items())),
        "examples": {"train": sum(d.counts.get("train", 0) for d in active),
                     "valid": sum(d.counts.get("valid", 0) for d in active)},
        "tokens": {"train": sum(int(d.token_stats.get("train_tokens") or 0) for d in active),
                   "billed": sum(int(d.estimate.get("billed_tokens") or 0) for d in active)},
        "estimatedCost": {"total": _money(sum(priced)), "priced": len(priced), "unpriced": len(active) - len(priced),
                          "currency": next((d.estimate.get("currency") for d in active if d.estimate), "USD")},
        "usage": {"jobs": sum(used_by_jobs[d.dataset_id] for d in found),
                  "models": sum(used_by_models[d.dataset_id] for d in found),
                  "unused": sum(1 for d in active if not used_by_jobs[d.dataset_id])},
    }


def models_summary(models: Iterable[ModelVersion], routes: Iterable[Route], jobs: dict[str, DistillationJob],
                   usage: Iterable[ModelUsage], window_days: float) -> dict[str, Any]:
    """Counts by stage and domain, what serves, the tokens and cost of training them, and their traffic (tokens,
    cost and saving against the teacher) over the window."""
    found = list(models)
    mine = {m.version_id for m in found}
    routed = list(routes)
    trained = [jobs[m.job_id] for m in found if m.job_id in jobs]
    costs = [j.cost.get("estimate", {}).get("cost") for j in trained]
    served = [u for u in usage if u.model in mine]
    return {
        "total": len(found),
        "byStage": {stage.value: sum(1 for m in found if m.stage == stage) for stage in ModelStage},
        "byDomain": dict(sorted(Counter(m.domain for m in found).items())),
        "serving": {"production": sum(1 for r in routed if r.production_model in mine),
                    "canary": sum(1 for r in routed if r.canary_model in mine)},
        "training": {"trainedTokens": sum(int(j.state.training.get("trained_tokens") or 0) for j in trained),
                     "estimatedCost": _money(sum(c for c in costs if isinstance(c, (int, float))))},
        "usage": {"windowDays": window_days,
                  "requests": sum(u.requests for u in served),
                  "promptTokens": sum(u.prompt_tokens for u in served),
                  "completionTokens": sum(u.completion_tokens for u in served),
                  "costUsd": _money(sum(u.cost_usd for u in served)),
                  "teacherCostUsd": _money(sum(u.teacher_cost_usd for u in served)),
                  "savingUsd": _money(sum(u.saving_usd for u in served))},
    }
