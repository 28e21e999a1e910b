"""Evaluate a model on a domain: its benchmark, held-out traces and the judge, against a baseline; then the gates."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from pydantic import BaseModel, Field

from forge.bootstrap import Forge
from forge.domain.benchmarks import BenchmarkTask
from forge.domain.domains import DomainConfig
from forge.domain.errors import DomainNotFound, ForgeError, ModelNotFound
from forge.domain.gates import Decision, ModelMetrics, decide
from forge.domain.judging import JudgeSummary
from forge.domain.models import ModelVersion, utcnow
from forge.domain.scoring import TaskScore
from forge.evaluation.benchmarks import load_benchmark
from forge.evaluation.runner import Assessment, HeldOut, assess, held_out, task_messages
from forge.providers.inference import ChatClient, InferenceError
from forge.providers.judge import head_to_head
from forge.providers.clients import client_for, grader_client

Model = ModelVersion | str
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MAX_FAILED_SHARE = 0.5  # above this share of failed calls the endpoint is down: no verdict, retry later


class EvaluateResult(BaseModel):
    """What an evaluation found and decided; recorded on the job and the model version."""

    job_id: str | None = None
    domain: str
    model_version_id: str | None = None  # the registered version evaluated, when there is one
    model: str  # what answered: the version id, or a hosted model's name
    baseline: str | None = None
    decision: Decision
    reasons: list[str] = Field(default_factory=list)
    metrics: ModelMetrics | None = None
    baseline_metrics: ModelMetrics | None = None
    judge: JudgeSummary | None = None
    error: str | None = None  # a permanent problem (nothing can serve the model, bad config): no verdict
    evaluated_at: datetime = Field(default_factory=utcnow)


@dataclass
class Evaluation:
    result: EvaluateResult
    task_scores: list[TaskScore] = field(default_factory=list)
    baseline_task_scores: list[TaskScore] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    max_examples: int = 50  # held-out traces
    max_tasks: int | None = None  # benchmark tasks; None: all
    max_tokens: int = 1024
    judge: bool = True


def label(model: Model) -> str:
    return model.version_id if isinstance(model, ModelVersion) else model


def resolve_model(forge: Forge, tenant: str, domain: str, ref: str) -> Model:
    """A registered version by id, `teacher` for the configured teacher, or else a hosted model's name."""
    if ref == "teacher":
        return forge.settings.teacher_model
    try:
        return forge.storage.models.get(tenant, domain, ref)
    except ModelNotFound:
        if _ULID.match(ref):  # looks like a version id: a typo or another domain, not a hosted model's name
            raise
        return ref


def production_model(forge: Forge, tenant: str, domain: str) -> ModelVersion | None:
    """The version serving the domain in production, if any."""
    route = forge.storage.routes.get(tenant, domain)
    if not route.production_model:
        return None
    try:
        return forge.storage.models.get(tenant, domain, route.production_model)
    except ModelNotFound:
        return None


def evaluate_model(forge: Forge, *, tenant: str, domain: str, model: Model, baseline: Model | None = None,
                   dataset_id: str | None = None, limits: Limits = Limits(), job_id: str | None = None) -> Evaluation:
    """Score `model` (and `baseline`, on the same items), judge them head to head, and apply the domain's gates.

    Raises InferenceError when most calls to the model fail (an outage, not a verdict: retry later).
    """
    config = forge.domains.get(domain)
    if config is None:
        raise DomainNotFound(f"No domain '{domain}'. Known domains: {', '.join(sorted(forge.domains))}.")
    tasks = load_benchmark(domain, forge.settings.home)[: limits.max_tasks]
    examples: list[HeldOut] = []
    if dataset_id and limits.max_examples:
        examples = held_out(forge.storage.datasets.read_file(tenant, dataset_id, "valid"), limits.max_examples)
    evaluation = asyncio.run(_evaluate(forge, config, tasks, examples, model, baseline, limits))
    result = evaluation.result
    result.job_id, result.domain = job_id, domain
    result.model_version_id = model.version_id if isinstance(model, ModelVersion) else None
    return evaluation


async def _evaluate(forge: Forge, config: DomainConfig, tasks: list[BenchmarkTask], examples: list[HeldOut],
                    model: Model, baseline: Model | None, limits: Limits) -> Evaluation:
    notes: list[str] = []
    candidate: ChatClient | None = None
    opponent: ChatClient | None = None
    grader: ChatClient | None = None
    if any(t.checks.python_tests for t in tasks):  # no jail, no verdict: found before any model is called
        await asyncio.to_thread(forge.code_runner.check)
    try:
        candidate = client_for(forge.settings, model)
        grader = grader_client(forge.settings) if limits.judge else None
        if baseline is not None:
            try:
                opponent = client_for(forge.settings, baseline)
            except ForgeError as exc:
                notes.append(f"The production model {label(baseline)} cannot be served ({exc}); no regression check.")
                baseline = None
        runner = forge.code_runner
        runs = [assess(candidate, tasks, examples, config, runner=runner, max_tokens=limits.max_tokens)]
        if opponent is not None:
            runs.append(assess(opponent, tasks, examples, config, runner=runner, max_tokens=limits.max_tokens))
        mine, *theirs = await asyncio.gather(*runs)
        _raise_if_down(label(model), mine, len(tasks) + len(examples))
        other: Assessment | None = theirs[0] if theirs else None
        if other is not None and other.metrics.errors > MAX_FAILED_SHARE * (len(tasks) + len(examples)):
            notes.append(f"The production model {label(baseline)} failed {other.metrics.errors} calls; "
                         "no regression check this time.")
            other, baseline = None, None
        summary = None
        if grader is not None:
            conversations = [task_messages(t, config) for t in tasks] + [e.messages for e in examples]
            references = [t.gold_answer for t in tasks] + [e.reference for e in examples]
            rival = [a.text or None for a in other.answers] if other else references
            summary = await head_to_head(grader, conversations, [a.text or None for a in mine.answers], rival,
                                         label(baseline) if other else "reference")
            mine.metrics.win_rate = summary.win_rate
    finally:
        for client in (candidate, opponent, grader):
            if client is not None:
                await client.aclose()
    decision, reasons = decide(config.gates, mine.metrics, other.metrics if other else None)
    result = EvaluateResult(domain=config.name, model=label(model), baseline=label(baseline) if other else None,
                            decision=decision, reasons=reasons + notes, metrics=mine.metrics,
                            baseline_metrics=other.metrics if other else None, judge=summary)
    return Evaluation(result, mine.task_scores, other.task_scores if other else [])


def _raise_if_down(name: str, run: Assessment, calls: int) -> None:
    if calls and run.metrics.errors > MAX_FAILED_SHARE * calls:
        first = next(a.error for a in run.answers if a.error)
        raise InferenceError(f"{run.metrics.errors} of {calls} calls to {name} failed (first: {first}); "
                             "no verdict was recorded. Check the model's endpoint, then evaluate again.")
