"""Gates: whether a candidate may go live, and reasons a person can act on. They fail closed: a gate that cannot
be measured never passes by default. Pure."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from forge.domain.sections import Section
from forge.domain.stats import Interval

Decision = Literal["pass", "fail", "wait"]  # wait: nothing failed, but a gate the domain requires could not run


class ModelMetrics(BaseModel):
    """One model's results on a domain: what the gates read."""

    score: float = Field(description="Mean score, 0–100: the benchmark's, or the held-out set's when it has none.")
    categories: dict[str, float] = Field(default_factory=dict)
    components: dict[str, float] = Field(default_factory=dict)
    benchmark_tasks: int = 0
    validation_examples: int = 0
    teacher_similarity: float | None = Field(None, description="Mean chrF to the teacher's held-out answers.")
    task_metrics: dict[str, float] = Field(default_factory=dict, description="The task's measures on the held-out "
                                           "set: exact_match, f1, macro_f1, json_valid, function_name_accuracy …")
    win_rate: float | None = Field(None, description="Judge head-to-head, 0–1; None when no judge ran.")
    errors: int = Field(0, description="Model calls that failed (scored 0).")

    @property
    def examples(self) -> int:
        return self.benchmark_tasks + self.validation_examples


class Gates(Section):
    """A domain's `[gates]` table."""

    min_score: float = Field(60.0, ge=0, le=100, description="Lowest mean score (0–100) that passes.")
    max_regression: float = Field(2.0, ge=0, le=100, description="Points per example a candidate may be worse than "
                                                                 "the production student, at `confidence`.")
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="Of the paired bootstrap behind the regression "
                                                                   "and teacher-gap gates.")
    max_gap_to_teacher: float = Field(50.0, ge=0, le=100, description="Points per example a candidate may be "
                                                                      "below the teacher's answers, at `confidence`.")
    min_win_rate: float = Field(0.5, ge=0, le=1, description="Judge head-to-head against the production student.")
    min_win_rate_vs_teacher: float = Field(0.3, ge=0, le=1, description="Judge head-to-head against the teacher's "
                                                                        "answers, when no student is in production.")
    require_judge: bool = Field(False, description="Without a judge, promotion waits instead of passing.")
    min_judge_agreement: float = Field(0.0, ge=0, le=1, description="The judge's agreement with people's labels; "
                                                                    "0 turns the check off.")
    min_eval_examples: int = Field(20, ge=0, description="Benchmark tasks plus held-out examples evaluated.")
    min_teacher_similarity: float = Field(0.0, ge=0, le=100, description="Mean chrF to the teacher's answers.")


class Evidence(BaseModel):
    """What one evaluation measured, for the gates."""

    metrics: ModelMetrics
    baseline: ModelMetrics | None = None  # the production student's, on the same items
    baseline_name: str | None = None
    vs_production: Interval | None = None  # candidate − production, per example
    teacher_gap: Interval | None = None  # teacher − candidate, per example that has a teacher's answer
    judge_opponent: Literal["production", "teacher"] | None = None  # None: no judge ran
    judge_agreement: float | None = None  # with the alignment set; None: not measured


def decide(gates: Gates, evidence: Evidence) -> tuple[Decision, list[str]]:
    """Apply every gate. Failures come first, then what waits, what passed, and what was not applied."""
    failed: list[str] = []
    waiting: list[str] = []
    passed: list[str] = []
    skipped: list[str] = []
    metrics = evidence.metrics

    def gate(ok: bool, good: str, bad: str) -> None:
        (passed if ok else failed).append(good if ok else bad)

    n = metrics.examples
    gate(n >= gates.min_eval_examples,
         f"{n} examples evaluated (at least {gates.min_eval_examples} needed).",
         f"Only {n} examples were evaluated ({metrics.benchmark_tasks} benchmark tasks, {metrics.validation_examples} "
         f"held-out traces); at least {gates.min_eval_examples} are needed. Collect more golden traces so the "
         "held-out set grows, or lower gates.min_eval_examples in the domain config.")
    what = "Benchmark score" if metrics.benchmark_tasks else "Held-out score"
    gate(metrics.score >= gates.min_score,
         f"{what} {metrics.score:.1f} meets the minimum {gates.min_score:g}.",
         f"{what} {metrics.score:.1f} is below the minimum {gates.min_score:g}{_weakest(metrics)}. Train on "
         "more golden traces of those kinds, or lower gates.min_score in the domain config.")
    if metrics.teacher_similarity is not None and gates.min_teacher_similarity > 0:
        gate(metrics.teacher_similarity >= gates.min_teacher_similarity,
             f"Similarity to the teacher {metrics.teacher_similarity:.1f} meets the minimum "
             f"{gates.min_teacher_similarity:g}.",
             f"Similarity to the teacher's held-out answers is {metrics.teacher_similarity:.1f}, below "
             f"{gates.min_teacher_similarity:g}; train longer or on more traces.")
    _regression(gates, evidence, gate, failed)
    _teacher_gap(gates, evidence, gate, skipped)
    _judge(gates, evidence, gate, failed, waiting, skipped)
    if metrics.errors:
        passed.append(f"{metrics.errors} calls to the candidate failed and scored 0; check the model's endpoint or "
                      "timeout.")
    decision: Decision = "fail" if failed else "wait" if waiting else "pass"
    return decision, failed + waiting + passed + skipped


def _regression(gates: Gates, evidence: Evidence, gate, failed: list[str]) -> None:
    """Not worse than the production student beyond noise: the paired bootstrap's lower bound, per example."""
    if evidence.baseline is None:
        return
    name, diff = evidence.baseline_name or "the production model", evidence.vs_production
    if diff is None:
        failed.append(f"The candidate could not be compared with {name} example by example, so it is not shown to be "
                      "no worse; evaluate again.")
        return
    conf = f"{diff.confidence:.0%}"
    gate(diff.lower >= -gates.max_regression,
         f"Against {name} ({evidence.baseline.score:.1f}): {diff.mean:+.1f} points per example over {diff.n}; at "
         f"{conf} confidence no worse than {diff.lower:+.1f}, within the allowed regression of "
         f"{gates.max_regression:g}.",
         f"The candidate regresses against {name} ({evidence.baseline.score:.1f}): {diff.mean:+.1f} points per "
         f"example over {diff.n}, and at {conf} confidence it may be {-diff.lower:.1f} worse; at most "
         f"{gates.max_regression:g} is allowed (gates.max_regression). Keep the production model, or retrain with the "
         "data it was trained on plus the new traces.")


def _teacher_gap(gates: Gates, evidence: Evidence, gate, skipped: list[str]) -> None:
    gap = evidence.teacher_gap
    if gap is None:
        skipped.append("Not applied: the gap to the teacher needs held-out examples with the teacher's answers, and "
                       "none were evaluated.")
        return
    gate(gap.upper <= gates.max_gap_to_teacher,
         f"Gap to the teacher's answers {gap.mean:.1f} points per example over {gap.n} (at most {gap.upper:.1f} at "
         f"{gap.confidence:.0%} confidence), within gates.max_gap_to_teacher {gates.max_gap_to_teacher:g}.",
         f"The candidate is {gap.mean:.1f} points per example below the teacher's held-out answers, and at "
         f"{gap.confidence:.0%} confidence up to {gap.upper:.1f}; at most {gates.max_gap_to_teacher:g} is allowed "
         "(gates.max_gap_to_teacher). Train longer or on more traces.")


def _judge(gates: Gates, evidence: Evidence, gate, failed: list[str], waiting: list[str], skipped: list[str]) -> None:
    opponent, rate = evidence.judge_opponent, evidence.metrics.win_rate
    if opponent is None:
        if gates.require_judge:
            waiting.append("Waiting: this domain requires a judge (gates.require_judge) and none is configured, so "
                           "the student is not promoted. Set FORGE_GRADER_MODEL, then evaluate it again with "
                           "`forge eval --model ID` and promote it with `forge models promote ID`.")
        else:
            skipped.append("Not applied: the judge's win-rate gate needs a judge and none is configured (set "
                           "FORGE_GRADER_MODEL).")
        return
    minimum, against = ((gates.min_win_rate, evidence.baseline_name or "the production model")
                        if opponent == "production" else (gates.min_win_rate_vs_teacher, "the teacher's answers"))
    key = "min_win_rate" if opponent == "production" else "min_win_rate_vs_teacher"
    if rate is None:
        failed.append(f"The judge decided none of its comparisons with {against}, so the win-rate gate cannot pass; "
                      "check the judge model (FORGE_GRADER_MODEL).")
    else:
        gate(rate >= minimum,
             f"Judge win rate {rate:.0%} against {against} meets the minimum {minimum:.0%}.",
             f"Judge win rate {rate:.0%} against {against} is below the minimum {minimum:.0%}; the judge prefers "
             f"the model it was compared with. Read the judged examples, then retrain or lower gates.{key}.")
    if gates.min_judge_agreement > 0:
        agreement = evidence.judge_agreement
        if agreement is None:
            failed.append("The judge's agreement with people could not be measured (no traces of this domain carry "
                          "feedback), and gates.min_judge_agreement asks for it: label some traces with "
                          "`forge traces feedback ID approved|rejected`.")
        else:
            gate(agreement >= gates.min_judge_agreement,
                 f"The judge agrees with people on {agreement:.0%} of the alignment set (at least "
                 f"{gates.min_judge_agreement:.0%} needed).",
                 f"The judge agrees with people on only {agreement:.0%} of the alignment set (at least "
                 f"{gates.min_judge_agreement:.0%} needed), so its verdicts are not trusted; change "
                 "FORGE_GRADER_MODEL.")


def _weakest(metrics: ModelMetrics) -> str:
    if not metrics.categories:
        return ""
    worst = sorted(metrics.categories.items(), key=lambda kv: kv[1])[:2]
    return " (weakest: " + ", ".join(f"{c} {s:.1f}" for c, s in worst) + ")"
