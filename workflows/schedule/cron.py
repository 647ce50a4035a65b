"""A standard cron line of fixed times (`M H * * DOW`) read as a calendar spec, for rules the
configuration names (the `advisor:` report's `cron`).

    calendar_of_cron("0 10 * * 1", "Asia/Shanghai")   # Mondays 10:00
    calendar_of_cron("*/5 * * * *", "UTC")            # SpecError: not fixed times
"""

from __future__ import annotations

from workflows.schedule.spec import WEEKDAYS, Calendar, Daily, SpecError, TimeOfDay, Weekly

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def calendar_of_cron(expression: str, timezone: str) -> Calendar:
    """`M H * * DOW` (comma lists of minutes and hours; DOW `*`, numbers with Sunday 0 or 7,
    names, ranges) as a calendar spec; SpecError for anything else."""
    fields = expression.split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        raise SpecError("the advisor's cron must look like 'MIN HOUR * * WEEKDAYS' (0 10 * * 1)")
    minutes, hours = (_numbers(field, 59) for field in fields[:2])
    times = tuple(sorted({TimeOfDay(h, m) for h in hours for m in minutes}))
    days = Daily() if fields[4] == "*" else Weekly(_weekdays(fields[4]))
    return Calendar(times, days, timezone)


def _numbers(field: str, most: int) -> list[int]:
    values = [part for part in field.split(",") if part]
    if not values or not all(part.isdigit() and int(part) <= most for part in values):
        raise SpecError(f"not a list of fixed numbers: {field!r}")
    return [int(part) for part in values]


def _weekday(token: str) -> int:
    lowered = token.strip().lower()[:3]
    if lowered in _CRON_DAYS:
        return _CRON_DAYS.index(lowered)
    if lowered.isdigit() and int(lowered) <= 7:
        return int(lowered) % 7
    raise SpecError(f"not a day of the week: {token!r}")


def _weekdays(field: str) -> tuple[str, ...]:
    found: set[str] = set()
    for part in field.split(","):
        first, _, last = part.partition("-")
        low = _weekday(first)
        high = _weekday(last) if last else low
        high = 7 if high == 0 and low > 0 else high
        if high < low:
            raise SpecError(f"not a range of days: {part!r}")
        found.update(_CRON_DAYS[day % 7] for day in range(low, high + 1))
    return tuple(day for day in WEEKDAYS if day in found)
