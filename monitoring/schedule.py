"""The longest gap between runs of an EventBridge schedule, for heartbeat alarms on silence.

A heartbeat alarm looks for silence over a window of whole hours: the schedule's longest gap
between two runs, rounded up to hours, plus :data:`HEARTBEAT_SLACK_HOURS`, so a run that starts a
little late does not page. ``rate(...)`` gives its gap directly; for ``cron(...)`` the gap is found
by listing the firings over two calendar years (EventBridge cron runs in UTC).

Example::

    >>> max_gap_seconds("rate(1 day)")
    86400
    >>> max_gap_seconds("cron(0 6 ? * MON-FRI *)") // 3600  # Friday 06:00 to Monday 06:00
    72
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import date, timedelta

HEARTBEAT_SLACK_HOURS = 2
"""Hours of lateness a scheduled run may have before its heartbeat alarm fires."""

MAX_HEARTBEAT_HOURS = 168
"""CloudWatch evaluates alarms with periods of an hour or more over at most 7 days."""

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}
_MONTHS = {m: n for n, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN"), start=1)} | {
    m: n for n, m in enumerate(("JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=7)
}
_DAYS = {d: n for n, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
_FIRST_DAY = date(2025, 1, 1)
_SCAN_DAYS = 2 * 366


class UnsupportedSchedule(ValueError):
    """A cron expression using L, W, # or a year, whose gaps this module does not compute."""


def max_gap_seconds(expression: str) -> int:
    """The longest time between two consecutive runs of ``rate(...)`` or ``cron(...)``."""
    if match := _RATE.fullmatch(expression):
        return int(match[1]) * _UNIT_SECONDS[match[2].removesuffix("s")]
    if match := _CRON.fullmatch(expression):
        return _cron_max_gap(*match.groups())
    raise UnsupportedSchedule(f"{expression!r} is neither rate(N unit) nor cron(6 fields)")


def heartbeat_hours(expression: str | None, override: int | None = None) -> int | None:
    """Hours of silence after which a scheduled run counts as missed; None when no alarm can watch it.

    No schedule, no heartbeat. ``override`` (``alarms.heartbeat_hours``) wins; otherwise the longest gap
    rounded up to hours plus the slack, provided it fits CloudWatch's 7-day window.
    """
    if not expression:
        return None
    if override is not None:
        return override
    try:
        gap = max_gap_seconds(expression)
    except UnsupportedSchedule:
        return None
    hours = math.ceil(gap / 3600) + HEARTBEAT_SLACK_HOURS
    return hours if hours <= MAX_HEARTBEAT_HOURS else None


def _cron_max_gap(minutes: str, hours: str, dom: str, month: str, dow: str, year: str) -> int:
    if year not in ("*", "?"):
        raise UnsupportedSchedule(f"cron year field {year!r}: a schedule that ends has no steady heartbeat")
    times = sorted(h * 3600 + m * 60 for h in _field(hours, 0, 23, {}) for m in _field(minutes, 0, 59, {}))
    months = _field(month, 1, 12, _MONTHS)
    days = None if dom == "?" else _field(dom, 1, 31, {})
    weekdays = None if dow == "?" else _field(dow, 1, 7, _DAYS)
    firings = [
        (day - _FIRST_DAY).days * 86_400 + t
        for day in (_FIRST_DAY + timedelta(days=n) for n in range(_SCAN_DAYS))
        if day.month in months
        and (days is None or day.day in days)
        and (weekdays is None or day.isoweekday() % 7 + 1 in weekdays)
        for t in times
    ]
    if len(firings) < 2:
        raise UnsupportedSchedule("the cron expression fires less than twice in two years")
    return max(b - a for a, b in itertools.pairwise(firings))


def _field(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    """Values of one cron field: ``*``, ``N``, ``A-B``, ``A/S``, ``*/S``, ``A-B/S`` and lists of them."""
    values: set[int] = set()
    for part in text.upper().split(","):
        spec, _, step = part.partition("/")
        if spec in ("*", "?"):
            start, end = low, high
        elif "-" in spec:
            first, last = spec.split("-")
            start, end = _value(first, names), _value(last, names)
        else:
            start = _value(spec, names)
            end = high if step else start
        values |= set(range(start, end + 1, int(step) if step else 1))
    return values


def _value(text: str, names: dict[str, int]) -> int:
    try:
        return names[text] if text in names else int(text)
    except ValueError:
        raise UnsupportedSchedule(f"cron value {text!r} is not a number or a name (L, W and # are not read)") from None
