"""Usage per model: percentiles, costs at configured prices, and the saving against the teacher."""

import pytest

from forge.domain.usage import Call, Prices, percentile, summarize


def test_percentiles_are_nearest_rank():
    values = sorted(float(v) for v in range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50, 95, 100)
    assert percentile([7.0], 95) == 7 and percentile([], 50) is None


def test_a_students_saving_is_what_the_teacher_would_have_charged_for_the_same_tokens_minus_its_cost():
    calls = [Call("S", 1000, 500, float(ms)) for ms in (10, 20, 30, 40)] + [Call("gpt-4.1", 1000, 0, 90.0)]
    usage = summarize(calls, teacher="gpt-4.1", teacher_prices=Prices(2.0, 8.0), student_prices=Prices(0.8, 3.2),
                      observed_days=3)
    student = usage["S"]
    assert (student.requests, student.prompt_tokens, student.completion_tokens) == (4, 4000, 2000)
    assert student.teacher_cost_usd == pytest.approx(4000 * 2e-6 + 2000 * 8e-6)
    assert student.cost_usd == pytest.approx(4000 * 0.8e-6 + 2000 * 3.2e-6)
    assert student.saving_percent == 60.0
    assert student.projected_monthly_saving_usd == pytest.approx(round(student.saving_usd * 10, 2))
    assert (student.latency_p50_ms, student.latency_p95_ms) == (20, 40)
    assert usage["gpt-4.1"].saving_usd == 0 and usage["gpt-4.1"].cost_usd == pytest.approx(0.002)


def test_calls_without_token_counts_still_count_as_requests():
    usage = summarize([Call("S", None, None, None)], teacher="T", teacher_prices=Prices(1, 1),
                      student_prices=Prices(1, 1), observed_days=1)["S"]
    assert (usage.requests, usage.cost_usd, usage.saving_percent, usage.latency_p50_ms) == (1, 0, None, None)
