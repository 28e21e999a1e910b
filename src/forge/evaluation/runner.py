"""Run one model over a benchmark and held-out examples, and score what it answered: benchmark tasks by their
rubric, held-out examples against the teacher's answer by the domain's task rule (domain/tasks.py)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Iterable

from forge.domain import tasks as task_rules
from forge.domain.benchmarks import BenchmarkTask
from forge.domain.content import content_text
from forge.domain.domains import DomainConfig
from forge.domain.evalsets import ALL, EvalItem
from forge.domain.gates import ModelMetrics
from forge.domain.scoring import TaskScore, code_blocks, score_task, similarity, summarize
from forge.evaluation.sandbox import CodeRunner, SandboxLimits, run_python_tests
from forge.providers.inference import ChatClient, InferenceError, answer_text

# Test runs are CPU-bound subprocesses: more at once than cores only slows each down.
SANDBOX_PARALLEL = max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class HeldOut:
    """A held-out example: the conversation up to the teacher's answer (and the tools offered), and that answer."""

    messages: list[dict[str, Any]]
    reference: str
    tools: list[dict[str, Any]] | None = None
    reference_tool_calls: list[dict[str, Any]] | None = None
    id: str = ""
    stratum: str = ALL

    @classmethod
    def of(cls, item: EvalItem) -> "HeldOut":
        return cls(item.messages, item.reference, item.tools, item.reference_tool_calls, item.id, item.stratum)


@dataclass(frozen=True)
class Answer:
    text: str
    error: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


@dataclass
class Assessment:
    metrics: ModelMetrics
    task_scores: list[TaskScore] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)  # the tasks', then the held-out examples', in order
    example_scores: list[task_rules.ItemScore] = field(default_factory=list)  # the held-out examples'

    def per_example(self) -> list[float]:
        """Every example's score, tasks then held-out examples: what a paired comparison reads."""
        return [s.total for s in self.task_scores] + [s.score for s in self.example_scores]


def held_out(records: Iterable[dict[str, Any]], limit: int) -> list[HeldOut]:
    """Up to `limit` examples from chat records whose last message is the teacher's (assistant) answer."""
    found: list[HeldOut] = []
    for record in records:
        if len(found) >= limit:
            break
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or len(messages) < 2 or not isinstance(messages[-1], dict):
            continue
        last = messages[-1]
        reference = content_text(last.get("content"))
        calls = last.get("tool_calls") or None
        if last.get("role") != "assistant" or not (reference.strip() or calls):
            continue
        tools = record.get("tools") if isinstance(record.get("tools"), list) else None
        found.append(HeldOut([_plain(m) for m in messages[:-1]], reference, tools, calls))
    return found


def task_messages(task: BenchmarkTask, config: DomainConfig) -> list[dict[str, Any]]:
    system = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    return system + [{"role": "user", "content": task.prompt}]


async def answer_all(client: ChatClient, conversations: list[list[dict[str, Any]]], *, max_tokens: int,
                     tools: list[list[dict[str, Any]] | None] | None = None) -> list[Answer]:
    """Every conversation answered (the client bounds concurrency); a failed call is an empty answer with its error."""
    offered = tools or [None] * len(conversations)

    async def one(messages: list[dict[str, Any]], functions: list[dict[str, Any]] | None) -> Answer:
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if functions:
            body["tools"] = functions
        try:
            completion = await client.complete(body)
        except InferenceError as exc:
            return Answer("", str(exc))
        message = ((completion.get("choices") or [{}])[0] or {}).get("message") or {}
        return Answer(answer_text(completion), tool_calls=message.get("tool_calls") or None)

    return list(await asyncio.gather(*(one(m, t) for m, t in zip(conversations, offered))))


async def score_tasks(tasks: list[BenchmarkTask], answers: list[Answer], config: DomainConfig, runner: CodeRunner,
                      limits: SandboxLimits = SandboxLimits()) -> list[TaskScore]:
    """The rubric for every task; Python tests run in `runner`, a few at a time, off the event loop.

    Raises SandboxUnavailable when the runner cannot isolate code: an evaluation without a verdict, not a failed one.
    """
    sandbox = asyncio.Semaphore(SANDBOX_PARALLEL)

    async def one(task: BenchmarkTask, answer: Answer) -> TaskScore:
        passed, detail = None, ""
        code = "\n\n".join(code_blocks(answer.text)) if task.checks.python_tests else ""
        if code:
            async with sandbox:
                run = await asyncio.to_thread(run_python_tests, code, task.checks.python_tests or "", limits,
                                              runner=runner)
            passed, detail = run.passed, run.detail
        score = score_task(task, answer.text, config.scoring, tests_passed=passed)
        if detail:
            score.failed = [f"python_tests: {detail}" if f == "python_tests" else f for f in score.failed]
        if answer.error:
            score.failed.insert(0, f"call failed: {answer.error}")
        return score

    return list(await asyncio.gather(*(one(t, a) for t, a in zip(tasks, answers))))


async def assess(client: ChatClient, tasks: list[BenchmarkTask], examples: list[HeldOut], config: DomainConfig, *,
                 runner: CodeRunner, max_tokens: int = 1024) -> Assessment:
    """Answer every task and held-out prompt with `client`, then score them (answers' code runs in `runner`)."""
    conversations = [task_messages(t, config) for t in tasks] + [e.messages for e in examples]
    offered = [None] * len(tasks) + [e.tools for e in examples]
    answers = await answer_all(client, conversations, max_tokens=max_tokens, tools=offered)
    task_answers, example_answers = answers[: len(tasks)], answers[len(tasks):]
    scores = await score_tasks(tasks, task_answers, config, runner)
    items = [score_example(config, a, e) for a, e in zip(example_answers, examples)]
    sims = [i.metrics["similarity"] for i in items]
    summary = summarize(scores)
    if not tasks and items:  # no benchmark: the held-out set is what the score and its categories are
        strata: dict[str, list[float]] = {}
        for item, example in zip(items, examples):
            strata.setdefault(example.stratum, []).append(item.score)
        summary.update(score=round(fmean(i.score for i in items), 2),
                       categories={k: round(fmean(v), 2) for k, v in sorted(strata.items())})
    metrics = ModelMetrics(
        **summary,
        validation_examples=len(examples),
        teacher_similarity=round(fmean(sims), 2) if sims else None,
        task_metrics=task_rules.set_metrics(config.task, items, [task_rules.parse_value(config.task, e.reference)
                                                                 for e in examples]),
        errors=sum(a.error is not None for a in answers),
    )
    return Assessment(metrics, scores, answers, items)


def score_example(config: DomainConfig, answer: Answer, example: HeldOut) -> task_rules.ItemScore:
    """One held-out answer against the teacher's, by the domain's task rule; a failed call scores 0."""
    scored = task_rules.score_answer(config.task, answer.text, answer.tool_calls, example.reference,
                                     example.reference_tool_calls, similarity(answer.text, example.reference))
    if answer.error:
        scored.failed.insert(0, f"call failed: {answer.error}")
    return scored


def reference_scores(config: DomainConfig, examples: list[HeldOut]) -> list[float]:
    """What the teacher's own answers score by the same rule (100 unless, say, its JSON misses the schema)."""
    return [task_rules.score_answer(config.task, e.reference, e.reference_tool_calls, e.reference,
                                    e.reference_tool_calls, 100.0).score for e in examples]


def _plain(message: Any) -> dict[str, Any]:
    """A message as a chat request takes it: training-only keys such as `weight` are dropped."""
    if not isinstance(message, dict):
        return {"role": "user", "content": str(message)}
    return {k: v for k, v in message.items() if k != "weight"}
