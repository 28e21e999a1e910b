"""Evaluate a model on a domain: its benchmark tasks, or the held-out set carved from its traffic, and the judge,
against the production model on the same items; then the gates. An outage of the candidate, the production model
or the judge gives no verdict (the stage is retried), never a pass."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from forge.bootstrap import Forge
from forge.domain.benchmarks import BenchmarkTask
from forge.domain.content import content_text
from forge.domain.domains import DomainConfig
from forge.domain.errors import ConfigError, ForgeError, ModelNotFound
from forge.domain.gates import Decision, Evidence, ModelMetrics, decide
from forge.domain.judging import JudgeOutcome, JudgeSummary
from forge.domain.models import ModelVersion, utcnow
from forge.domain.scoring import TaskScore
from forge.domain.stats import Interval, paired_bootstrap
from forge.domain.tasks import ItemScore
from forge.evaluation.runner import Assessment, HeldOut, assess, held_out, reference_scores, task_messages
from forge.providers.inference import ChatClient, InferenceError
from forge.providers.judge import agreement, head_to_head
from forge.providers.clients import client_for, grader_client
from forge.providers.endpoints import share_endpoint_limits
from forge.services import domains, evalsets
from forge.storage.evaluations import labelled

Model = ModelVersion | str
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MAX_FAILED_SHARE = 0.5  # above this share of failed calls the candidate's endpoint is down: no verdict, retry later
ALIGNMENT_ITEMS = 40  # labelled traces the judge is checked against, about half approved and half rejected


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
    comparisons: dict[str, Interval] = Field(default_factory=dict)  # "production" (candidate − it), "teacher" (gap)
    judge: JudgeSummary | None = None
    domain_version: int | None = None  # the tenant's domain version evaluated by; None: the packaged template
    eval_set_version: int | None = None  # the held-out set scored, when the domain has no tasks of its own
    error: str | None = None  # a permanent problem (nothing can serve the model, bad config): no verdict
    evaluated_at: datetime = Field(default_factory=utcnow)


@dataclass
class Evaluation:
    result: EvaluateResult
    task_scores: list[TaskScore] = field(default_factory=list)
    baseline_task_scores: list[TaskScore] = field(default_factory=list)
    examples: list[HeldOut] = field(default_factory=list)
    example_scores: list[ItemScore] = field(default_factory=list)
    baseline_example_scores: list[ItemScore] = field(default_factory=list)
    judged: list[JudgeOutcome | None] = field(default_factory=list)  # tasks, then examples

    def items(self) -> list[dict[str, Any]]:
        """Every task's and held-out example's result, as the API and `forge eval --json` show them."""
        rows: list[dict[str, Any]] = []
        other = {s.task_id: s.total for s in self.baseline_task_scores}
        for i, s in enumerate(self.task_scores):
            rows.append({"kind": "task", "id": s.task_id, "category": s.category, "score": s.total,
                         "baselineScore": other.get(s.task_id), "failed": s.failed,
                         "components": {k: getattr(s, k) for k in ("structure", "correctness", "similarity",
                                                                   "completeness")},
                         "judge": self.judged[i] if i < len(self.judged) else None})
        theirs = self.baseline_example_scores
        for i, (e, s) in enumerate(zip(self.examples, self.example_scores)):
            j = len(self.task_scores) + i
            rows.append({"kind": "held_out", "id": e.id or f"example-{i + 1}", "category": e.stratum,
                         "score": s.score, "baselineScore": theirs[i].score if i < len(theirs) else None,
                         "failed": s.failed, "metrics": s.metrics, "value": s.value,
                         "judge": self.judged[j] if j < len(self.judged) else None})
        return rows


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
                   dataset_id: str | None = None, limits: Limits = Limits(), job_id: str | None = None,
                   domain_version: int | None = None, eval_set_version: int | None = None) -> Evaluation:
    """Score `model` (and `baseline`, on the same items), judge them head to head, and apply the domain's gates.

    The items are the domain's own benchmark tasks (plus the dataset's held-out split), or, for a domain without
    tasks, its eval set carved from traffic. Raises InferenceError when the candidate's endpoint is down, or the
    production model or the judge fails at all (an outage, not a verdict: retry later).
    """
    found = domains.resolve(forge, tenant, domain, domain_version)
    tasks = domains.benchmark(forge, tenant, found, domain)[: limits.max_tasks]
    examples: list[HeldOut] = []
    carved = None
    if not tasks:
        carved, items = evalsets.items(forge, tenant, domain, eval_set_version)
        examples = [HeldOut.of(item) for item in items]
    if not examples and dataset_id and limits.max_examples:
        examples = held_out(forge.storage.datasets.read_file(tenant, dataset_id, "valid"), limits.max_examples)
    if not tasks and not examples:
        raise ConfigError(f"Domain '{domain}' has no benchmark tasks and no eval set yet, so there is nothing to "
                          "evaluate on. Import its golden traffic and run a job (the eval set is carved then), or "
                          f"give it tasks: `forge domain benchmark {domain} tasks.jsonl`.")
    alignment = _alignment(forge, tenant, domain) if limits.judge and forge.settings.grader_model else []
    evaluation = asyncio.run(_evaluate(forge, found.config, tasks, examples, model, baseline, limits, alignment))
    result = evaluation.result
    result.job_id, result.domain = job_id, domain
    result.model_version_id = model.version_id if isinstance(model, ModelVersion) else None
    result.domain_version, result.eval_set_version = found.version, carved.version if carved else None
    return evaluation


async def _evaluate(forge: Forge, config: DomainConfig, tasks: list[BenchmarkTask], examples: list[HeldOut],
                    model: Model, baseline: Model | None, limits: Limits,
                    alignment: list[tuple[list[dict[str, Any]], str, bool]]) -> Evaluation:
    candidate: ChatClient | None = None
    opponent: ChatClient | None = None
    grader: ChatClient | None = None
    calls = len(tasks) + len(examples)
    if any(t.checks.python_tests for t in tasks):  # no jail, no verdict: found before any model is called
        await asyncio.to_thread(forge.code_runner.check)
    try:
        candidate = client_for(forge.settings, model, lora=forge.lora_server())
        grader = grader_client(forge.settings) if limits.judge else None
        if baseline is not None:
            try:
                opponent = client_for(forge.settings, baseline, lora=forge.lora_server())
            except ForgeError as exc:
                raise InferenceError(f"The production model {label(baseline)} cannot be served ({exc}); no verdict "
                                     "was recorded, because a candidate is never passed without the comparison. Fix "
                                     "or roll back the production model, then evaluate again.") from None
        # Every task and example is asked at once; each endpoint sees at most FORGE_INFERENCE_CONCURRENCY calls.
        share_endpoint_limits([candidate, opponent, grader], forge.settings.inference_concurrency)
        runner = forge.code_runner
        runs = [assess(candidate, tasks, examples, config, runner=runner, max_tokens=limits.max_tokens)]
        if opponent is not None:
            runs.append(assess(opponent, tasks, examples, config, runner=runner, max_tokens=limits.max_tokens))
        mine, *theirs = await asyncio.gather(*runs)
        _raise_if_down(label(model), mine, calls)
        other: Assessment | None = theirs[0] if theirs else None
        if other is not None and other.metrics.errors:
            first = next(a.error for a in other.answers if a.error)
            raise InferenceError(f"{other.metrics.errors} of {calls} calls to the production model {label(baseline)} "
                                 f"failed (first: {first}); no verdict was recorded, because a comparison with "
                                 "answers it did not give could pass a worse student. Evaluate again once it answers.")
        summary, judged = None, []
        if grader is not None:
            conversations = [task_messages(t, config) for t in tasks] + [e.messages for e in examples]
            references = [t.gold_answer for t in tasks] + [_reference(e) for e in examples]
            rival = [a.text or _calls_text(a.tool_calls) or None for a in other.answers] if other else references
            summary, judged = await head_to_head(grader, conversations, [a.text or _calls_text(a.tool_calls) or None
                                                                         for a in mine.answers], rival,
                                                 label(baseline) if other else "reference")
            summary.model = summary.model or forge.settings.grader_model
            summary.agreement = await agreement(grader, alignment)
            mine.metrics.win_rate = summary.win_rate
    finally:
        for client in (candidate, opponent, grader):
            if client is not None:
                await client.aclose()
    confidence = config.gates.confidence
    comparisons: dict[str, Interval] = {}
    if other is not None:
        paired = paired_bootstrap([a - b for a, b in zip(mine.per_example(), other.per_example())], confidence)
        if paired is not None:
            comparisons["production"] = paired
    gap = paired_bootstrap([r - s.score for r, s in zip(reference_scores(config, examples), mine.example_scores)],
                           confidence)
    if gap is not None:
        comparisons["teacher"] = gap
    evidence = Evidence(metrics=mine.metrics, baseline=other.metrics if other else None,
                        baseline_name=label(baseline) if other else None, vs_production=comparisons.get("production"),
                        teacher_gap=gap, judge_opponent=("production" if other else "teacher") if summary else None,
                        judge_agreement=summary.agreement.rate if summary and summary.agreement else None)
    decision, reasons = decide(config.gates, evidence)
    result = EvaluateResult(domain=config.name, model=label(model), baseline=label(baseline) if other else None,
                            decision=decision, reasons=reasons, metrics=mine.metrics, comparisons=comparisons,
                            baseline_metrics=other.metrics if other else None, judge=summary)
    return Evaluation(result, mine.task_scores, other.task_scores if other else [], examples, mine.example_scores,
                      other.example_scores if other else [], judged)


def _alignment(forge: Forge, tenant: str, domain: str) -> list[tuple[list[dict[str, Any]], str, bool]]:
    """The domain's alignment set: answers people approved or rejected (feedback), to check the judge against."""
    return [(t.messages, content_text(t.response.get("content")), t.feedback == "approved")
            for t in labelled(forge.storage.traces, tenant, domain, ALIGNMENT_ITEMS)]


def _reference(example: HeldOut) -> str:
    return example.reference or _calls_text(example.reference_tool_calls)


def _calls_text(calls: Any) -> str:
    """Tool calls as text the judge can read."""
    if not calls:
        return ""
    return "\n".join(f"call {c.get('function', {}).get('name')}({c.get('function', {}).get('arguments')})"
                     for c in calls if isinstance(c, dict))


def _raise_if_down(name: str, run: Assessment, calls: int) -> None:
    if calls and run.metrics.errors > MAX_FAILED_SHARE * calls:
        first = next(a.error for a in run.answers if a.error)
        raise InferenceError(f"{run.metrics.errors} of {calls} calls to {name} failed (first: {first}); "
                             "no verdict was recorded. Check the model's endpoint, then evaluate again.")
