"""The economics rule: a day's teacher-equivalent cost, actual cost, saving and quality, and the LoRA server's
hourly cost shared among domains by their LoRA-served requests."""

from datetime import date, datetime, timezone

import pytest

from forge.domain.economics import CallFacts, Pricing, answerer, combine, day_economics, lora_hours, lora_shares
from forge.domain.usage import Prices

PRICES = Pricing(teacher=Prices(2.0, 8.0), student=Prices(0.8, 3.2))


def test_who_answered_is_the_recorded_route_and_without_one_the_model():
    assert [answerer(r, "v1", "gpt-4.1") for r in ("production", "canary", "teacher", "fallback")] == \
        ["student", "student", "teacher", "teacher"]
    assert (answerer(None, "v1", "gpt-4.1"), answerer(None, "gpt-4.1", "gpt-4.1")) == ("student", "teacher")


def test_a_day_costs_student_calls_at_student_prices_and_teacher_calls_fallbacks_included_at_the_teachers():
    calls = [CallFacts("student", 1000, 500, feedback="approved"), CallFacts("student", 1000, 500, feedback="rejected"),
             CallFacts("student", 1000, 500), CallFacts("teacher", 1000, 500, feedback="rejected"),
             CallFacts("teacher", 2000, 1000, fallback=True)]
    day = day_economics("2026-05-01", calls, ["win", "tie", "loss", "win", None], PRICES)
    assert (day.student_requests, day.teacher_requests, day.fallbacks) == (3, 2, 1)
    assert (day.prompt_tokens, day.completion_tokens) == (6000, 3000)
    assert day.teacher_cost_usd == pytest.approx(0.012 + 0.024)  # 6000 × $2/M + 3000 × $8/M
    assert day.student_cost_usd == pytest.approx(3 * 0.0024)  # each 1000 × $0.8/M + 500 × $3.2/M
    assert day.cost_usd == pytest.approx(3 * 0.0024 + 0.006 + 0.012)
    assert day.saving_usd == pytest.approx(0.036 - 0.0252) and day.saving_percent == 30.0
    # Only the student's answers are its quality: the teacher's rejected answer is not counted.
    assert (day.approved, day.rejected, day.approval_rate) == (1, 1, 0.5)
    assert (day.wins, day.ties, day.losses, day.win_rate) == (2, 1, 1, 0.625)  # (2 + ½) / 4; no verdict left out


def test_a_day_without_calls_or_verdicts_has_no_rates_and_no_saving_percent():
    day = day_economics("2026-05-01", [], [], PRICES)
    assert (day.cost_usd, day.saving_usd) == (0, 0)
    assert (day.saving_percent, day.approval_rate, day.win_rate) == (None, None, None)


def test_the_lora_servers_day_is_shared_by_lora_served_requests_and_today_counts_the_hours_so_far():
    now = datetime(2026, 5, 2, 6, 0, tzinfo=timezone.utc)
    assert (lora_hours(date(2026, 5, 1), now), lora_hours(date(2026, 5, 2), now), lora_hours(date(2026, 5, 3), now)) \
        == (24, 6, 0)
    hourly = Pricing(PRICES.teacher, PRICES.student, lora_cost_per_hour=2.0)
    shares = lora_shares({"coding": 3, "legal": 1, "finance": 0}, 2.0 * lora_hours(date(2026, 5, 1), now))
    assert shares == {"coding": 36.0, "legal": 12.0, "finance": 0.0}
    assert lora_shares({"coding": 0}, 48.0) == {"coding": 0.0}  # an idle server's day is nobody's traffic

    calls = [CallFacts("student", 1000, 500, lora=True)] * 3 + [CallFacts("student", 1000, 500)]
    day = day_economics("2026-05-01", calls, [], hourly, lora_share=shares["coding"])
    assert (day.student_requests, day.lora_requests) == (4, 3)
    # The LoRA calls cost their share of the server, not tokens; the hosted one its tokens.
    assert day.lora_cost_usd == 36.0 and day.student_cost_usd == pytest.approx(36.0024)
    assert day.teacher_cost_usd == pytest.approx(4 * 0.006) and day.saving_usd == pytest.approx(0.024 - 36.0024)
    assert day.saving_percent == pytest.approx(-149910.0)

    per_token = day_economics("2026-05-01", calls, [], PRICES, lora_share=36.0)  # no hourly cost: tokens, no share
    assert per_token.lora_cost_usd == 0 and per_token.cost_usd == pytest.approx(4 * 0.0024)


def test_a_window_adds_the_days_and_takes_its_rates_over_the_added_counts():
    first = day_economics("2026-05-01", [CallFacts("student", 1000, 500, feedback="approved")], ["win"], PRICES)
    second = day_economics("2026-05-02", [CallFacts("student", 1000, 500, feedback="rejected"),
                                          CallFacts("student", 1000, 500, feedback="rejected"),
                                          CallFacts("teacher", 1000, 500)], ["tie", "loss", "loss"], PRICES)
    total = combine([first, second])
    assert (total.student_requests, total.teacher_requests) == (3, 1)
    assert total.teacher_cost_usd == pytest.approx(0.024) and total.cost_usd == pytest.approx(0.0132)
    assert total.saving_percent == 45.0
    assert (total.approval_rate, total.win_rate) == (round(1 / 3, 4), 0.375)
