"""Rotation schedules Secrets Manager accepts, and the rotation rules the program sends for them.

AWS's rules, as documented (Secrets Manager User Guide, "Schedule expressions in Secrets Manager
rotation"; botocore `secretsmanager` RotationRulesType, whose docs say the same):

- `rate(Value Unit)`: Value a positive integer, Unit `hour`, `hours`, `day` or `days`; "you can rotate a
  secret as often as every four hours". A rate's window starts at midnight UTC.
- `cron(Minutes Hours Day-of-month Month Day-of-week Year)`, in UTC: Minutes must be `0` (windows start
  on the hour), Year must be `*` ("rotation schedules that are more than a year apart" are not
  supported); one of Day-of-month and Day-of-week is `?`; Day-of-week counts 1-7 from Sunday.
- `Duration` (`Nh`): the window starts with the schedule and "must not extend into the next rotation
  window or the next UTC day". It is documented against a ScheduleExpression only, so a catalog
  `every_days` with a `window` is sent as `rate(N days)` (`rotation_rules`).
- `AutomaticallyAfterDays`: 1-1000.

Cron expressions are parsed and iterated by cronsim (a maintained Unix cron evaluator) after fitting
AWS's six fields to Unix's five; every check below looks at the firings cronsim computes.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cronsim import CronSim, CronSimError

MIN_INTERVAL = timedelta(hours=4)
"""AWS: "You can rotate a secret as often as every four hours"."""
MAX_DAYS = 1000
"""AutomaticallyAfterDays' documented range is 1-1000 (botocore's RotationRulesType and the API reference)."""
MAX_RATE_DAYS = 999
"""`rate(N days)`: the API documents no bound of its own for ScheduleExpression (only 1-256 characters), the
user guide's rate section says "a positive integer", and earlier guide text and third-party validators give
1-999. Unverified against a real account, so the stricter bound applies: a `rate()` (what `every_days` with a
`window` is sent as) is at most 999 days, while `every_days` alone, sent as AutomaticallyAfterDays, may be 1000."""
MAX_WINDOW_HOURS = 24
"""A window may not run into the next UTC day, so it is at most a day long."""
MAX_GAP = timedelta(days=366)
"""Year must be `*`: Secrets Manager does not support schedules more than a year apart."""

_SCHEDULE_SHAPE = re.compile(r"[0-9A-Za-z()#?*\-/, ]{1,256}")
"""botocore's ScheduleExpressionType: letters, digits, ()#?*-/, and spaces, length 1-256."""
_RATE = re.compile(r"rate\((?P<value>[0-9]+) (?P<unit>hours?|days?)\)")
_CRON = re.compile(r"cron\((?P<body>[^()]*)\)")
_WINDOW = re.compile(r"(?P<hours>[0-9]+)h")
_DOW_NUMBER = re.compile(r"(?<![#/0-9])[0-9]+")
"""A day-of-week number: not an nth (`#3`) or a step (`/2`)."""
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_LAST_NAMED_DAY = re.compile(r"(SUN|MON|TUE|WED|THU|FRI|SAT)L")
"""`SUNL`: the last Sunday of the month."""
_EPOCH = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
"""Where the firings of a cron schedule are sampled from (cronsim yields times after it): one minute
before a year that starts on a Wednesday, so a year of firings covers every month and weekday."""
_HORIZON = timedelta(days=400)
"""How far firings are sampled: a year of windows, and the gap to the next year's first rotation."""
_MAX_FIRINGS = 4000
"""Enough for a year of the most frequent schedule (every 4 hours: 2,190)."""


class ScheduleError(ValueError):
    """A schedule or window AWS would refuse, or that would not rotate; `field` is `schedule` or `window`."""

    def __init__(self, field: Literal["schedule", "window", "every_days"], message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RotationRules:
    """What `aws.secretsmanager.SecretRotation` sends as RotationRules: exactly one of the first two."""

    automatically_after_days: int | None
    schedule_expression: str | None
    duration: str | None


def window_hours(window: str) -> int:
    """`4h` -> 4, within AWS's `[0-9]+h` and at most a day."""
    match = _WINDOW.fullmatch(window)
    hours = int(match.group("hours")) if match else 0
    if not match or not 1 <= hours <= MAX_WINDOW_HOURS or window.startswith("0"):
        raise ScheduleError("window", f"window '{window}' must be 1h to {MAX_WINDOW_HOURS}h (whole hours)")
    return hours


def rotation_rules(every_days: int | None, schedule: str | None, window: str | None) -> RotationRules:
    """The rules sent to AWS. A window is documented as starting from a ScheduleExpression, so with a
    window an `every_days` schedule goes as `rate(N days)` (the same interval, windows from midnight)."""
    if schedule is None and every_days is not None and window is not None:
        schedule = f"rate({every_days} {'day' if every_days == 1 else 'days'})"
        every_days = None
    return RotationRules(automatically_after_days=every_days, schedule_expression=schedule, duration=window)


def check(every_days: int | None, schedule: str | None, window: str | None) -> None:
    """Raise ScheduleError unless AWS accepts the schedule and its window (see the module docstring)."""
    hours = window_hours(window) if window is not None else None
    if every_days is not None and not 1 <= every_days <= MAX_DAYS:
        raise ScheduleError("every_days", f"every_days {every_days} must be 1 to {MAX_DAYS}")
    if every_days is not None and window is not None and schedule is None and every_days > MAX_RATE_DAYS:
        raise ScheduleError("every_days", f"every_days {every_days} with a window is sent as rate({every_days} days), "
                            f"and a rate() is at most {MAX_RATE_DAYS} days; use {MAX_RATE_DAYS} or drop the window")
    if schedule is None:
        return  # every_days, with or without a window: rate(N days), windows from midnight, within the day
    if not _SCHEDULE_SHAPE.fullmatch(schedule):
        raise ScheduleError("schedule", f"schedule {schedule!r} has characters or a length AWS refuses "
                            "(letters, digits, ()#?*-/, and spaces; at most 256)")
    rate = _RATE.fullmatch(schedule)
    if rate is not None:
        _check_rate(schedule, int(rate.group("value")), rate.group("unit"), hours)
        return
    cron = _CRON.fullmatch(schedule)
    if cron is None:
        raise ScheduleError("schedule", f"schedule '{schedule}' is not rate(N hours|days) or cron(six fields)")
    _check_cron(schedule, cron.group("body"), hours)


def _check_rate(schedule: str, value: int, unit: str, window: int | None) -> None:
    if value == 0:
        raise ScheduleError("schedule", f"schedule '{schedule}' never rotates; give a positive number")
    interval = timedelta(hours=value) if unit.startswith("hour") else timedelta(days=value)
    if interval < MIN_INTERVAL:
        raise ScheduleError("schedule", f"schedule '{schedule}' rotates every {value} hour(s), below Secrets "
                            "Manager's minimum of every 4 hours")
    if interval > timedelta(days=MAX_RATE_DAYS):
        raise ScheduleError("schedule", f"schedule '{schedule}' is longer than {MAX_RATE_DAYS} days")
    if window is not None and timedelta(hours=window) > interval:
        raise ScheduleError("window", f"window '{window}h' is longer than the {value} hours between rotations of "
                            f"'{schedule}', so it would run into the next rotation")


def _check_cron(schedule: str, body: str, window: int | None) -> None:
    firings = _firings(schedule, _unix(schedule, body))
    if not firings or firings[0] - _EPOCH > MAX_GAP:
        raise ScheduleError("schedule", f"schedule '{schedule}' never fires, or less than once a year")
    for current, following in itertools.pairwise(firings):
        gap = following - current
        if gap > MAX_GAP:
            raise ScheduleError("schedule", f"schedule '{schedule}' has rotations more than a year apart "
                                f"({current:%Y-%m-%d} to {following:%Y-%m-%d})")
        if gap < MIN_INTERVAL:
            raise ScheduleError("schedule", f"schedule '{schedule}' rotates at {current:%H:%M} and again at "
                                f"{following:%H:%M} UTC, less than Secrets Manager's minimum of 4 hours apart")
        if window is None:
            continue  # AWS's default window (1 hour, or the rest of the day) fits between 4-hourly rotations
        if current.hour + window > MAX_WINDOW_HOURS:
            raise ScheduleError("window", f"window '{window}h' from {current:%H:%M} UTC ({schedule}) runs past "
                                "the end of the UTC day; shorten it or rotate earlier")
        if current + timedelta(hours=window) > following:
            raise ScheduleError("window", f"window '{window}h' from {current:%H:%M} UTC runs into the next "
                                f"rotation at {following:%H:%M} ({schedule})")


def _unix(schedule: str, body: str) -> str:
    """AWS's six cron fields as Unix's five, or ScheduleError for what Secrets Manager does not take."""
    fields = body.split(" ")
    if len(fields) != 6:
        raise ScheduleError("schedule", f"schedule '{schedule}' needs six fields separated by single spaces "
                            "(minutes hours day-of-month month day-of-week year)")
    minutes, hours, dom, month, dow, year = (f.upper() for f in fields)
    if minutes != "0":
        raise ScheduleError("schedule", f"schedule '{schedule}': the minutes field must be 0 (Secrets Manager's "
                            "rotation windows start on the hour)")
    if year != "*":
        raise ScheduleError("schedule", f"schedule '{schedule}': the year field must be * (Secrets Manager does "
                            "not support schedules more than a year apart)")
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("schedule", f"schedule '{schedule}': exactly one of day-of-month and day-of-week "
                            "must be ?")
    if "W" in dom.replace("WED", ""):
        raise ScheduleError("schedule", f"schedule '{schedule}': W (nearest weekday) is not a wildcard Secrets "
                            "Manager documents")
    hours = "0" + hours if hours.startswith("/") else hours  # AWS's `/8` is every 8 hours from midnight
    if _LAST_NAMED_DAY.fullmatch(dom) and dow == "?":
        dom, dow = "?", dom  # AWS documents `SUNL` (the last Sunday of the month) in the day-of-month field
    return " ".join(("0", hours, "*" if dom == "?" else dom, month, "*" if dow == "?" else _unix_dow(schedule, dow)))


def _unix_dow(schedule: str, dow: str) -> str:
    """Day-of-week from AWS's 1-7 (Sunday first; bare `L` is the last day, Saturday) to Unix's 0-6."""
    if dow == "L":
        return "6"
    named = _LAST_NAMED_DAY.fullmatch(dow)
    if named:
        return f"{_DAY_NAMES.index(named.group(1))}L"

    def shift(match: re.Match[str]) -> str:
        day = int(match.group())
        if not 1 <= day <= 7:
            raise ScheduleError("schedule", f"schedule '{schedule}': day-of-week {day} is not 1-7 (SUN-SAT)")
        return str(day - 1)

    return _DOW_NUMBER.sub(shift, dow)


@functools.lru_cache(maxsize=256)
def _firings(schedule: str, unix: str) -> tuple[datetime, ...]:
    """The firings of a cron schedule in the sampled year (cached: catalogs repeat their schedules)."""
    try:
        times = CronSim(unix, _EPOCH)
    except CronSimError as exc:
        never = str(exc) == "Bad day-of-month" and _parses([*unix.split(" ")[:3], "*", "*"])
        reason = "the day-of-month never occurs in those months" if never else str(exc)
        raise ScheduleError("schedule", f"schedule '{schedule}' {'never fires' if never else 'is malformed'}: "
                            f"{reason}") from None
    found: list[datetime] = []
    for moment in times:
        found.append(moment)
        if moment - _EPOCH > _HORIZON or len(found) >= _MAX_FIRINGS:
            break
    return tuple(found)


def _parses(fields: list[str]) -> bool:
    try:
        CronSim(" ".join(fields), _EPOCH)
    except CronSimError:
        return False
    return True


def cron_firings(schedule: str) -> tuple[datetime, ...]:
    """The rotation times (UTC) of a `cron(...)` schedule over the sampled year and a bit."""
    cron = _CRON.fullmatch(schedule)
    if cron is None:
        raise ScheduleError("schedule", f"schedule '{schedule}' is not cron(...)")
    return _firings(schedule, _unix(schedule, cron.group("body")))


def rotations_per_year(schedule: str) -> float | None:
    """How often a valid `rate(...)` or `cron(...)` rotates, per year; None if it is not one."""
    rate = _RATE.fullmatch(schedule)
    if rate is not None:
        value = int(rate.group("value"))
        if value == 0:
            return None
        hours = value * (1 if rate.group("unit").startswith("hour") else 24)
        return 365.0 * 24 / hours
    try:
        firings = cron_firings(schedule)
    except ScheduleError:
        return None
    year_end = _EPOCH + timedelta(days=365)
    return float(sum(1 for f in firings if f <= year_end))
