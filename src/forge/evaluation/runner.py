"""Run one model over a benchmark and held-out traces, and score what it answered."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Iterable

from forge.domain.benchmarks import BenchmarkTask
from forge.domain.content import content_text
from forge.domain.domains import DomainConfig
from forge.domain.gates import ModelMetrics
from forge.domain.scoring import TaskScore, code_blocks, score_task, similarity, summarize
from forge.evaluation.sandbox import CodeRunner, SandboxLimits, run_python_tests
from forge.providers.inference import ChatClient, InferenceError, answer_text

# Test runs are CPU-bound subprocesses: more at once than cores only slows each down.
SANDBOX_PARALLEL = max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class HeldOut:
    """A held-out trace: the conversation up to the teacher's answer, and that answer."""

    messages: list[dict[str, Any]]
    reference: str


@dataclass(frozen=True)
class Answer:
    text: str
    error: str | None = None


@dataclass
class Assessment:
    metrics: ModelMetrics
    task_scores: list[TaskScore] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)  # the tasks', then the held-out traces', in order


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
        if last.get("role") != "assistant" or not reference.strip():
            continue
        found.append(HeldOut([_plain(m) for m in messages[:-1]], reference))
    return found


def task_messages(task: BenchmarkTask, config: DomainConfig) -> list[dict[str, Any]]:
    system = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    return system + [{"role": "user", "content": task.prompt}]


async def answer_all(client: ChatClient, conversations: list[list[dict[str, Any]]], *, max_tokens: int) -> list[Answer]:
    """Every conversation answered (the client bounds concurrency); a failed call is an empty answer with its error."""

    async def one(messages: list[dict[str, Any]]) -> Answer:
        try:
            completion = await client.complete({"messages": messages, "max_tokens": max_tokens, "temperature": 0})
        except InferenceError as exc:
            return Answer("", str(exc))
        return Answer(answer_text(completion))

    return list(await asyncio.gather(*(one(m) for m in conversations)))


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
    answers = await answer_all(client, conversations, max_tokens=max_tokens)
    task_answers, example_answers = answers[: len(tasks)], answers[len(tasks):]
    scores = await score_tasks(tasks, task_answers, config, runner)
    sims = [similarity(a.text, e.reference) for a, e in zip(example_answers, examples)]
    metrics = ModelMetrics(
        **summarize(scores),
        validation_examples=len(examples),
        teacher_similarity=round(fmean(sims), 2) if sims else None,
        errors=sum(a.error is not None for a in answers),
    )
    return Assessment(metrics, scores, answers)


def _plain(message: Any) -> dict[str, Any]:
    """A message as a chat request takes it: training-only keys such as `weight` are dropped."""
    if not isinstance(message, dict):
        return {"role": "user", "content": str(message)}
    return {k: v for k, v in message.items() if k != "weight"}
