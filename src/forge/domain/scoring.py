"""Scoring an answer on the rubric — structure, correctness, similarity, completeness — each 0–100. Pure."""

from __future__ import annotations

import ast
import json
import re
from statistics import fmean
from typing import Any

from jsonschema.validators import validator_for
from pydantic import BaseModel, Field
from sacrebleu.metrics import CHRF

from forge.domain.benchmarks import BenchmarkTask, Format
from forge.domain.domains import ScoringWeights

_FENCE = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)```", re.S)
_CHRF = CHRF()  # chrF (character n-gram F-score), sacrebleu's defaults: char order 6, beta 2
_SENTENCE_END = re.compile(r"""[.!?:;)\]"'`*]\s*$""")


class TaskScore(BaseModel):
    task_id: str
    category: str
    structure: float
    correctness: float
    similarity: float
    completeness: float
    total: float
    failed: list[str] = Field(default_factory=list, description="Checks and requirements the answer missed.")


def code_blocks(text: str, language: str = "python") -> list[str]:
    """Fenced blocks in `language` (or unlabelled) in the order they appear."""
    aliases = {"python": {"", "python", "py", "python3"}, "json": {"", "json"}}.get(language, {"", language})
    return [body for lang, body in _FENCE.findall(text) if lang.lower() in aliases]


def similarity(answer: str, reference: str) -> float:
    """chrF of the answer against one reference, 0–100."""
    if not answer.strip() or not reference.strip():
        return 0.0
    return round(_CHRF.sentence_score(answer, [reference]).score, 2)


def structure(answer: str, fmt: Format) -> float:
    """Does the answer have the shape the task asks for: code that parses, valid JSON, a finished document."""
    if not answer.strip():
        return 0.0
    if fmt == "python":
        blocks = code_blocks(answer)
        if not blocks:
            return 0.0
        return 100.0 if _parses("\n\n".join(blocks)) else 25.0
    if fmt == "json":
        return 100.0 if json_value(answer) is not None else 0.0
    if fmt == "text":
        return 100.0
    sentences = len(re.findall(r"[.!?](\s|$)", answer))
    blocks = [b for b in re.split(r"\n\s*\n|\n(?=\s*(?:[-*+]|\d+[.)]|#+)\s)", answer.strip()) if b.strip()]
    finished = bool(_SENTENCE_END.search(answer)) or answer.rstrip().endswith("```")
    return 40.0 * (sentences >= 2) + 30.0 * (len(blocks) >= 2) + 30.0 * finished


def json_value(answer: str) -> Any:
    """The JSON the answer holds (whole, or its first json block); None when there is none."""
    for candidate in [answer.strip(), *code_blocks(answer, "json")]:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def covered(answer: str, requirements: list[str]) -> list[bool]:
    return [bool(re.search(r, answer, re.I | re.M)) for r in requirements]


def check_results(task: BenchmarkTask, answer: str, tests_passed: bool | None) -> dict[str, bool]:
    """Each check's outcome by a readable name; python tests come from the sandbox (None: not run → failed)."""
    checks = task.checks
    results = {f"regex {p!r}": bool(re.search(p, answer, re.I | re.M)) for p in checks.regex}
    results |= {f"forbid {p!r}": not re.search(p, answer, re.I | re.M) for p in checks.forbid}
    if checks.json_schema is not None:
        value = json_value(answer)
        valid = value is not None and not any(validator_for(checks.json_schema)(checks.json_schema).iter_errors(value))
        results["json_schema"] = valid
    if checks.python_tests is not None:
        results["python_tests"] = bool(tests_passed)
    return results


def score_task(task: BenchmarkTask, answer: str, weights: ScoringWeights, *, tests_passed: bool | None = None) -> TaskScore:
    """The rubric for one answer; `total` is the weighted sum with the domain's weights."""
    hits = covered(answer, task.requirements)
    coverage = fmean(hits) if hits else 1.0
    checks = check_results(task, answer, tests_passed)
    required = [ok for name, ok in checks.items() if not name.startswith("forbid")]
    # Checks decide correctness; without any, the requirements do. Saying what is forbidden (a promise of
    # returns, a wrong dose) makes the answer wrong whatever else it gets right.
    correctness = 100.0 * (fmean(required) if required else coverage)
    if not all(ok for name, ok in checks.items() if name.startswith("forbid")):
        correctness = 0.0
    # Completeness: the requirements covered, and an answer not cut far short of the gold one.
    length = min(1.0, len(answer.strip()) / max(1.0, 0.4 * len(task.gold_answer.strip())))
    completeness = 100.0 * (0.7 * coverage + 0.3 * length) if task.requirements else 100.0 * length
    parts = {
        "structure": structure(answer, task.format),
        "correctness": correctness,
        "similarity": similarity(answer, task.gold_answer),
        "completeness": completeness,
    }
    total = sum(getattr(weights, k) * v for k, v in parts.items())
    failed = [name for name, ok in checks.items() if not ok]
    failed += [f"requirement {r!r}" for r, ok in zip(task.requirements, hits) if not ok]
    return TaskScore(task_id=task.id, category=task.category, total=round(total, 2), failed=failed,
                     **{k: round(v, 2) for k, v in parts.items()})


def summarize(scores: list[TaskScore]) -> dict[str, Any]:
    """Mean total, per category and per rubric component (the benchmark part of ModelMetrics)."""
    if not scores:
        return {"score": 0.0, "categories": {}, "components": {}, "benchmark_tasks": 0}
    by_category: dict[str, list[float]] = {}
    for s in scores:
        by_category.setdefault(s.category, []).append(s.total)
    components = {k: round(fmean(getattr(s, k) for s in scores), 2)
                  for k in ("structure", "correctness", "similarity", "completeness")}
    return {
        "score": round(fmean(s.total for s in scores), 2),
        "categories": {c: round(fmean(v), 2) for c, v in sorted(by_category.items())},
        "components": components,
        "benchmark_tasks": len(scores),
    }


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True
