"""The gates: a candidate passes only on enough examples, a high enough score, no regression against production
beyond noise, a bounded gap to the teacher and a fair win rate; a gate that cannot be measured never passes."""

from forge.domain.gates import Evidence, Gates, ModelMetrics, decide
from forge.domain.stats import paired_bootstrap

GATES = Gates(min_score=60, max_regression=2, min_win_rate=0.5, min_win_rate_vs_teacher=0.3, min_eval_examples=20,
              max_gap_to_teacher=30)


def metrics(**fields):
    values = {"score": 80.0, "categories": {"algorithms": 85.0, "strings": 75.0}, "benchmark_tasks": 16,
              "validation_examples": 10, "teacher_similarity": 70.0, "win_rate": 0.55}
    return ModelMetrics(**{**values, **fields})


def evidence(candidate=None, production=None, gap=None, judge="production", **fields):
    """Evidence from per-example scores: the paired interval against production, and the gap to the teacher."""
    values = {"metrics": metrics(), "judge_opponent": judge}
    if production is not None:
        values.update(baseline=metrics(score=sum(production) / len(production)), baseline_name="01PROD",
                      vs_production=paired_bootstrap([a - b for a, b in zip(candidate, production)], 0.95))
    if gap is not None:
        values["teacher_gap"] = paired_bootstrap(gap, 0.95)
    return Evidence(**{**values, **fields})


def test_a_candidate_that_clears_every_gate_passes_with_a_reason_per_gate():
    decision, reasons = decide(GATES, evidence([80] * 26, [79] * 26, gap=[10] * 10))
    assert decision == "pass"
    assert any("26 examples evaluated" in r for r in reasons)
    assert any("Benchmark score 80.0 meets the minimum 60" in r for r in reasons)
    assert any("Against 01PROD" in r and "within the allowed regression of 2" in r for r in reasons)
    assert any("Gap to the teacher's answers 10.0" in r for r in reasons)
    assert any("win rate 55% against 01PROD" in r for r in reasons)


def test_too_few_examples_fail_and_say_how_to_get_more():
    decision, reasons = decide(GATES, evidence(metrics=metrics(benchmark_tasks=5, validation_examples=3)))
    assert decision == "fail"
    assert "Only 8 examples were evaluated (5 benchmark tasks, 3 held-out traces)" in reasons[0]
    assert "min_eval_examples" in reasons[0]


def test_a_low_score_fails_naming_the_weakest_categories():
    decision, reasons = decide(GATES, evidence(metrics=metrics(score=52.5, categories={"a": 40.0, "b": 65.0})))
    assert decision == "fail"
    assert reasons[0].startswith("Benchmark score 52.5 is below the minimum 60 (weakest: a 40.0, b 65.0)")


def test_without_benchmark_tasks_the_score_is_named_for_the_held_out_set():
    decision, reasons = decide(GATES, evidence(metrics=metrics(score=40.0, benchmark_tasks=0, validation_examples=30)))
    assert decision == "fail" and reasons[0].startswith("Held-out score 40.0 is below the minimum 60")


def test_a_candidate_as_good_as_production_on_every_example_passes_the_regression_gate():
    decision, reasons = decide(GATES, evidence([70, 90] * 15, [70, 90] * 15))
    assert decision == "pass" and any("+0.0 points per example over 30" in r for r in reasons)


def test_a_candidate_whose_mean_is_within_the_allowance_but_noise_could_hide_a_worse_one_fails():
    # One point worse on average, but the examples swing by ±30: at 95% it could be several points worse.
    candidate = [100, 0] * 10
    production = [69, 33] * 10
    decision, reasons = decide(GATES, evidence(candidate, production))
    assert decision == "fail"
    failed = reasons[0]
    assert failed.startswith("The candidate regresses against 01PROD") and "-1.0 points per example over 20" in failed
    assert "at 95% confidence it may be" in failed and "gates.max_regression" in failed


def test_a_baseline_without_an_example_by_example_comparison_fails_closed():
    decision, reasons = decide(GATES, evidence(baseline=metrics(score=10.0), baseline_name="01PROD"))
    assert decision == "fail" and "could not be compared with 01PROD example by example" in reasons[0]


def test_a_candidate_too_far_from_the_teacher_fails_at_the_stated_confidence():
    # A mean gap of 26 is under the 30 allowed, but the upper bound at 95% is not.
    decision, reasons = decide(GATES, evidence(gap=[0, 52] * 10))
    assert decision == "fail"
    assert "26.0 points per example below the teacher's held-out answers" in reasons[0]
    assert "gates.max_gap_to_teacher" in reasons[0]


def test_without_held_out_teacher_answers_the_teacher_gap_is_not_applied_and_says_so():
    decision, reasons = decide(GATES, evidence())
    assert decision == "pass" and any(r.startswith("Not applied: the gap to the teacher") for r in reasons)


def test_without_a_judge_the_win_rate_gate_is_reported_not_applied_never_passed():
    decision, reasons = decide(GATES, evidence(judge=None, metrics=metrics(win_rate=None)))
    assert decision == "pass"
    assert any(r.startswith("Not applied: the judge's win-rate gate") and "FORGE_GRADER_MODEL" in r for r in reasons)
    assert not any("win rate" in r.lower() and "meets" in r for r in reasons)


def test_a_domain_that_requires_a_judge_waits_instead_of_passing_without_one():
    strict = GATES.model_copy(update={"require_judge": True})
    decision, reasons = decide(strict, evidence(judge=None, metrics=metrics(win_rate=None)))
    assert decision == "wait" and reasons[0].startswith("Waiting: this domain requires a judge")


def test_a_failed_gate_outranks_waiting_for_a_judge():
    strict = GATES.model_copy(update={"require_judge": True})
    decision, _ = decide(strict, evidence(judge=None, metrics=metrics(score=10.0, win_rate=None)))
    assert decision == "fail"


def test_the_win_rate_against_production_and_against_the_teacher_have_their_own_minimums():
    assert decide(GATES, evidence(metrics=metrics(win_rate=0.45)))[0] == "fail"  # vs production: 50% needed
    decision, reasons = decide(GATES, evidence(judge="teacher", metrics=metrics(win_rate=0.45)))
    assert decision == "pass" and any("45% against the teacher's answers meets the minimum 30%" in r for r in reasons)
    decision, reasons = decide(GATES, evidence(judge="teacher", metrics=metrics(win_rate=0.25)))
    assert decision == "fail" and "gates.min_win_rate_vs_teacher" in reasons[0]


def test_a_judge_that_decided_nothing_fails_the_win_rate_gate():
    decision, reasons = decide(GATES, evidence(metrics=metrics(win_rate=None)))
    assert decision == "fail" and "The judge decided none of its comparisons" in reasons[0]


def test_a_required_agreement_with_people_fails_when_low_or_unmeasured():
    trusting = GATES.model_copy(update={"min_judge_agreement": 0.8})
    assert decide(trusting, evidence(judge_agreement=0.9))[0] == "pass"
    decision, reasons = decide(trusting, evidence(judge_agreement=0.6))
    assert decision == "fail" and "agrees with people on only 60%" in reasons[0]
    decision, reasons = decide(trusting, evidence(judge_agreement=None))
    assert decision == "fail" and "forge traces feedback" in reasons[0]


def test_every_failing_gate_is_reported_before_the_passing_ones():
    weak = metrics(score=10.0, win_rate=0.1, validation_examples=0, benchmark_tasks=3)
    decision, reasons = decide(GATES, evidence(metrics=weak))
    assert decision == "fail"
    assert [r.split(" ")[0] for r in reasons[:3]] == ["Only", "Benchmark", "Judge"]


def test_failed_calls_are_noted():
    assert any("3 calls to the candidate failed" in r for r in decide(GATES, evidence(metrics=metrics(errors=3)))[1])
