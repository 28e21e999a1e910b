"""Gates: whether a candidate may go live, and reasons a person can act on. Pure."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["pass", "fail"]


class ModelMetrics(BaseModel):
    """One model's results on a domain: what the gates read."""

    score: float = Field(description="Mean benchmark score, 0–100.")
    categories: dict[str, float] = Field(default_factory=dict)
    components: dict[str, float] = Field(default_factory=dict)
    benchmark_tasks: int = 0
    validation_examples: int = 0
    teacher_similarity: float | None = Field(None, description="Mean chrF to the teacher's held-out answers.")
    win_rate: float | None = Field(None, description="Judge head-to-head, 0–1; None when no judge ran.")
    errors: int = Field(0, description="Model calls that failed (scored 0).")

    @property
    def examples(self) -> int:
        return self.benchmark_tasks + self.validation_examples


class Gates(BaseModel):
    """A domain's `[gates]` table."""

    model_config = ConfigDict(extra="forbid")

    min_score: float = Field(60.0, ge=0, le=100, description="Lowest benchmark score (0–100) that passes.")
    max_regression: float = Field(2.0, ge=0, le=100, description="Points a candidate may fall below production.")
    min_win_rate: float = Field(0.4, ge=0, le=1, description="Judge head-to-head; applied when a judge ran.")
    min_eval_examples: int = Field(20, ge=0, description="Benchmark tasks plus held-out traces evaluated.")
    min_teacher_similarity: float = Field(0.0, ge=0, le=100, description="Mean chrF to the teacher's answers.")


def decide(gates: Gates, metrics: ModelMetrics, baseline: ModelMetrics | None = None) -> tuple[Decision, list[str]]:
    """Apply every gate; the decision fails if any gate does, and every gate says what it found."""
    failed: list[str] = []
    passed: list[str] = []

    def gate(ok: bool, good: str, bad: str) -> None:
        (passed if ok else failed).append(good if ok else bad)

    n = metrics.examples
    gate(n >= gates.min_eval_examples,
         f"{n} examples evaluated (at least {gates.min_eval_examples} needed).",
         f"Only {n} examples were evaluated ({metrics.benchmark_tasks} benchmark tasks, {metrics.validation_examples} "
         f"held-out traces); at least {gates.min_eval_examples} are needed. Collect more golden traces so the "
         "validation split grows, or lower gates.min_eval_examples in the domain config.")
    gate(metrics.score >= gates.min_score,
         f"Benchmark score {metrics.score:.1f} meets the minimum {gates.min_score:g}.",
         f"Benchmark score {metrics.score:.1f} is below the minimum {gates.min_score:g}{_weakest(metrics)}. Train on "
         "more golden traces of those kinds, or lower gates.min_score in the domain config.")
    if metrics.teacher_similarity is not None and gates.min_teacher_similarity > 0:
        gate(metrics.teacher_similarity >= gates.min_teacher_similarity,
             f"Similarity to the teacher {metrics.teacher_similarity:.1f} meets the minimum "
             f"{gates.min_teacher_similarity:g}.",
             f"Similarity to the teacher's held-out answers is {metrics.teacher_similarity:.1f}, below "
             f"{gates.min_teacher_similarity:g}; train longer or on more traces.")
    if baseline is not None:
        drop = baseline.score - metrics.score
        gate(drop <= gates.max_regression,
             f"Benchmark score {metrics.score:.1f} vs production {baseline.score:.1f} is within the allowed "
             f"regression of {gates.max_regression:g} points.",
             f"Benchmark score {metrics.score:.1f} regresses {drop:.1f} points against the production model "
             f"({baseline.score:.1f}); at most {gates.max_regression:g} are allowed. Keep the production model, or "
             "retrain with the data it was trained on plus the new traces.")
        if metrics.teacher_similarity is not None and baseline.teacher_similarity is not None:
            sim_drop = baseline.teacher_similarity - metrics.teacher_similarity
            gate(sim_drop <= gates.max_regression,
                 f"Similarity to the teacher {metrics.teacher_similarity:.1f} vs production "
                 f"{baseline.teacher_similarity:.1f} is within the allowed regression.",
                 f"Similarity to the teacher falls {sim_drop:.1f} points below the production model's "
                 f"({baseline.teacher_similarity:.1f}); at most {gates.max_regression:g} are allowed.")
    if metrics.win_rate is not None:
        gate(metrics.win_rate >= gates.min_win_rate,
             f"Judge win rate {metrics.win_rate:.0%} meets the minimum {gates.min_win_rate:.0%}.",
             f"Judge win rate {metrics.win_rate:.0%} is below the minimum {gates.min_win_rate:.0%}; the judge prefers "
             "the model it was compared with. Read the judged examples, then retrain or lower gates.min_win_rate.")
    elif gates.min_win_rate > 0:
        passed.append("No judge ran (set FORGE_GRADER_MODEL to one), so the win-rate gate was not applied.")
    if metrics.errors:
        passed.append(f"{metrics.errors} model calls failed and scored 0; check the model's endpoint or timeout.")
    return ("fail" if failed else "pass"), failed + passed


def _weakest(metrics: ModelMetrics) -> str:
    if not metrics.categories:
        return ""
    worst = sorted(metrics.categories.items(), key=lambda kv: kv[1])[:2]
    return " (weakest: " + ", ".join(f"{c} {s:.1f}" for c, s in worst) + ")"
