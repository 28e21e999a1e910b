"""The gates: a candidate passes only on enough examples, a high enough score, no regression and a fair win rate."""

from forge.domain.gates import Gates, ModelMetrics, decide

GATES = Gates(min_score=60, max_regression=2, min_win_rate=0.4, min_eval_examples=20)


def metrics(**fields):
    values = {"score": 80.0, "categories": {"algorithms": 85.0, "strings": 75.0}, "benchmark_tasks": 16,
              "validation_examples": 10, "teacher_similarity": 70.0, "win_rate": 0.55}
    return ModelMetrics(**{**values, **fields})


def test_a_candidate_that_clears_every_gate_passes_with_a_reason_per_gate():
    decision, reasons = decide(GATES, metrics(), metrics(score=79.0))
    assert decision == "pass"
    assert any("26 examples evaluated" in r for r in reasons)
    assert any("Benchmark score 80.0 meets the minimum 60" in r for r in reasons)
    assert any("within the allowed regression" in r for r in reasons)
    assert any("win rate 55%" in r for r in reasons)


def test_too_few_examples_fail_and_say_how_to_get_more():
    decision, reasons = decide(GATES, metrics(benchmark_tasks=5, validation_examples=3))
    assert decision == "fail"
    assert "Only 8 examples were evaluated (5 benchmark tasks, 3 held-out traces)" in reasons[0]
    assert "min_eval_examples" in reasons[0]


def test_a_low_score_fails_naming_the_weakest_categories():
    decision, reasons = decide(GATES, metrics(score=52.5, categories={"a": 40.0, "b": 65.0, "c": 90.0}))
    assert decision == "fail"
    assert reasons[0].startswith("Benchmark score 52.5 is below the minimum 60 (weakest: a 40.0, b 65.0)")


def test_a_regression_beyond_the_allowance_fails_but_one_within_it_passes():
    assert decide(GATES, metrics(score=78.0), metrics(score=80.0))[0] == "pass"  # exactly 2 points
    decision, reasons = decide(GATES, metrics(score=77.0), metrics(score=80.0))
    assert decision == "fail" and "regresses 3.0 points against the production model (80.0)" in reasons[0]


def test_falling_behind_production_on_teacher_similarity_fails_too():
    decision, reasons = decide(GATES, metrics(teacher_similarity=60.0), metrics(score=80.0, teacher_similarity=70.0))
    assert decision == "fail" and "Similarity to the teacher falls 10.0 points" in reasons[0]


def test_a_low_win_rate_fails_and_a_missing_judge_is_only_noted():
    decision, reasons = decide(GATES, metrics(win_rate=0.25))
    assert decision == "fail" and "Judge win rate 25% is below the minimum 40%" in reasons[0]
    decision, reasons = decide(GATES, metrics(win_rate=None))
    assert decision == "pass" and any("FORGE_GRADER_MODEL" in r for r in reasons)


def test_every_failing_gate_is_reported_before_the_passing_ones():
    decision, reasons = decide(GATES, metrics(score=10.0, win_rate=0.1, validation_examples=0, benchmark_tasks=3))
    assert decision == "fail"
    assert [r.split(" ")[0] for r in reasons[:3]] == ["Only", "Benchmark", "Judge"]


def test_failed_calls_are_noted():
    assert any("3 model calls failed" in r for r in decide(GATES, metrics(errors=3))[1])
