from datetime import datetime, timezone

import pytest

from forge.domain.cron import CronError, parse_cron


def test_the_default_schedule_fires_at_two_every_night():
    cron = parse_cron("0 0 2 * * *")
    assert cron.next_after(datetime(2026, 3, 1, 1, 59, 59)) == datetime(2026, 3, 1, 2, 0, 0)
    assert cron.next_after(datetime(2026, 3, 1, 2, 0, 0)) == datetime(2026, 3, 2, 2, 0, 0)


def test_steps_ranges_lists_and_names_are_understood():
    cron = parse_cron("*/30 5-10/5 9,17 * jan-mar mon-fri")
    assert cron.seconds == {0, 30} and cron.minutes == {5, 10} and cron.hours == {9, 17}
    assert cron.months == {1, 2, 3} and cron.weekdays == {1, 2, 3, 4, 5}
    # Saturday 2026-01-03 → the next weekday firing is Monday 09:05:00
    assert cron.next_after(datetime(2026, 1, 3, 12, 0)) == datetime(2026, 1, 5, 9, 5, 0)


def test_the_timezone_of_the_moment_is_kept():
    moment = datetime(2026, 5, 5, 23, 0, tzinfo=timezone.utc)
    assert parse_cron("0 0 2 * * *").next_after(moment).tzinfo is timezone.utc


@pytest.mark.parametrize(
    "expression, words",
    [("0 2 * * *", "six fields"), ("0 61 2 * * *", "minute"), ("0 0 2 * * mon-xyz", "day-of-week"), ("0 0 */0 * * *", "step")],
)
def test_a_bad_expression_says_which_field_is_wrong(expression, words):
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    assert words in str(caught.value)


def test_a_schedule_that_never_fires_is_an_error():
    with pytest.raises(CronError):
        parse_cron("0 0 0 31 2 *").next_after(datetime(2026, 1, 1))
