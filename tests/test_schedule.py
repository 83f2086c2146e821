"""AWS's cron fields fitted to cronsim: the firings are checked against the calendar (the standard
library), not against the module's own arithmetic."""

from __future__ import annotations

import calendar
from datetime import datetime

import pytest

from components import schedule as schedule_module
from components.schedule import ScheduleError, cron_firings, rotation_rules, rotations_per_year


def in_2025(schedule: str) -> list[datetime]:
    return [f for f in cron_firings(schedule) if f.year == 2025]


@pytest.mark.parametrize(("schedule", "weekday"), [
    ("cron(0 0 ? * 1 *)", calendar.SUNDAY),       # AWS counts days of the week 1-7 from Sunday
    ("cron(0 0 ? * SUN *)", calendar.SUNDAY),
    ("cron(0 0 ? * 2 *)", calendar.MONDAY),
    ("cron(0 0 ? * 7 *)", calendar.SATURDAY),
    ("cron(0 0 ? * sat *)", calendar.SATURDAY),
    ("cron(0 0 ? * L *)", calendar.SATURDAY),     # L: the last day of the week
])
def test_days_of_the_week_count_from_sunday(schedule: str, weekday: int) -> None:
    firings = in_2025(schedule)
    assert len(firings) == 52 or len(firings) == 53
    assert {f.weekday() for f in firings} == {weekday}


def test_nth_and_last_weekday_of_the_month() -> None:
    third_friday = [f.date() for f in in_2025("cron(0 0 ? * 6#3 *)")]
    last_sunday = [f.date() for f in in_2025("cron(0 0 ? * SUNL *)")]
    expected_third, expected_last = [], []
    for month in range(1, 13):
        weeks = calendar.Calendar().monthdatescalendar(2025, month)
        fridays = [d for w in weeks for d in w if d.month == month and d.weekday() == calendar.FRIDAY]
        sundays = [d for w in weeks for d in w if d.month == month and d.weekday() == calendar.SUNDAY]
        expected_third.append(fridays[2])
        expected_last.append(sundays[-1])
    assert third_friday == expected_third
    assert last_sunday == expected_last
    assert [f.date() for f in in_2025("cron(0 0 SUNL * ? *)")] == expected_last, "AWS documents SUNL there too"


def test_hour_increments_restart_each_day() -> None:
    """AWS: `cron(0 2/10 * * ? *)` rotates at 2:00, 12:00, 22:00, then 2:00 the next day; `/8` is from midnight."""
    assert sorted({f.hour for f in in_2025("cron(0 2/10 * * ? *)")}) == [2, 12, 22]
    assert sorted({f.hour for f in in_2025("cron(0 /8 * * ? *)")}) == [0, 8, 16]
    assert rotations_per_year("cron(0 /8 * * ? *)") == 3 * 365


def test_a_malformed_cron_is_a_schedule_error() -> None:
    with pytest.raises(ScheduleError) as caught:
        cron_firings("cron(0 0 ? * MON-FUNDAY *)")
    assert caught.value.field == "schedule"


def test_rotation_rules_send_one_form() -> None:
    assert rotation_rules(30, None, None).automatically_after_days == 30
    with_window = rotation_rules(30, None, "3h")
    assert (with_window.automatically_after_days, with_window.schedule_expression, with_window.duration) == (
        None, "rate(30 days)", "3h")
    cron = rotation_rules(None, "cron(0 8 ? * MON *)", "2h")
    assert (cron.automatically_after_days, cron.schedule_expression) == (None, "cron(0 8 ? * MON *)")


@pytest.mark.parametrize(("every_days", "schedule", "window", "field"), [
    (None, "rate(1000 days)", None, "schedule"),
    (1000, None, "4h", "every_days"),
])
def test_a_rate_is_at_most_999_days(every_days: int | None, schedule: str | None, window: str | None,
                                    field: str) -> None:
    """A `rate()` is at most 999 days (the stricter of the documented bounds, unverified against AWS), while
    AutomaticallyAfterDays alone takes 1000 (botocore's RotationRulesType)."""
    with pytest.raises(schedule_module.ScheduleError) as caught:
        schedule_module.check(every_days, schedule, window)
    assert caught.value.field == field and "999" in str(caught.value)
    schedule_module.check(999, None, "4h")
    schedule_module.check(None, "rate(999 days)", None)
    schedule_module.check(1000, None, None)
    assert schedule_module.rotation_rules(1000, None, None).automatically_after_days == 1000
