"""Repetitions whose days are written apart from the repetition: "every year" + "on July 4th",
每两周 + 周五, 每季度 + 最后一天, "only in December" + "every Tuesday", "the 1st" + "every
Monday" (either day), 工作日 under a working-day calendar. Each turns into one `Recur`.

Decisions:

- every N weeks (every other week, biweekly, 双周, 隔周, 每两周) on some weekdays counts its
  weeks from the week of the first fire;
- every N months (每两个月1号) counts from the month of the first fire (N divides 12, else we
  ask); a quarter is the months 1/4/7/10, its last day the months 3/6/9/12;
- a year's date (每年10月1日, "every year on July 4th") or festival (每年中秋) repeats yearly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from workflows.schedule.pieces import Cycle, DateOf, Feast, Months, Recur, WeekdayDate
from workflows.schedule.spec import (
    WEEKDAYS,
    WORKDAYS,
    Daily,
    Days,
    Either,
    Festival,
    MonthDays,
    MonthWorkday,
    NthWeekdays,
    Weekly,
    WeekStep,
    Workdays,
)

Problem = tuple[str, str]
"""(topic, reason) of the question to ask."""
QUARTER_FIRST = (1, 4, 7, 10)
QUARTER_LAST = (3, 6, 9, 12)


def months_from(start: int, count: int) -> tuple[int, ...] | None:
    """Every `count` months from month `start` (None when `count` does not divide 12)."""
    if count < 1 or 12 % count:
        return None
    return tuple(sorted({(start - 1 + count * n) % 12 + 1 for n in range(12 // count)}))


def _month_of_next(day: int, today: date) -> int:
    return today.month if day >= today.day else today.month % 12 + 1


def cycle_recur(
    cycle: Cycle, recurs: Sequence[Recur], days: Sequence[object], today: date
) -> Recur | Problem:
    """The recurrence that `cycle` with the day pieces `recurs`/`days` means."""
    start, end = cycle.start, cycle.end
    if len(recurs) + len(days) > 1:
        return ("conflict", "conflict")
    day = days[0] if days else None
    days_of: Days | None = recurs[0].days if recurs else None
    if cycle.unit == "year":
        if isinstance(day, DateOf) and day.month is not None and not day.last:
            return Recur(start, end, MonthDays((day.day,)), (day.month,))
        if isinstance(day, DateOf) and day.month is not None:
            return Recur(start, end, MonthDays((), True), (day.month,))
        if isinstance(day, Feast):
            return Recur(start, end, Festival(day.name))
        if recurs and recurs[0].months:
            return recurs[0]
        return ("which_day", "vague")
    if cycle.unit == "week":
        weekdays: tuple[str, ...] = ()
        if isinstance(day, WeekdayDate) and day.week is None:
            weekdays = (WEEKDAYS[day.weekday],)
        elif isinstance(days_of, Weekly):
            weekdays = days_of.weekdays
        if not weekdays:
            return ("which_day", "vague")
        if cycle.count == 1:
            return Recur(start, end, Weekly(weekdays))
        monday = today - timedelta(days=today.weekday())
        return Recur(start, end, WeekStep(weekdays, cycle.count, monday))
    # month or quarter
    month_days: Days | None = None
    first = today.month
    if isinstance(day, DateOf) and day.month is None and not day.next_month:
        month_days = MonthDays(() if day.last else (day.day,), day.last)
        first = _month_of_next(day.day, today) if not day.last else today.month
    elif isinstance(days_of, MonthDays | NthWeekdays | MonthWorkday):
        month_days = days_of
    if month_days is None:
        if cycle.unit == "quarter" and cycle.last:
            return Recur(start, end, MonthDays((), True), QUARTER_LAST)
        return ("which_day", "vague")
    if cycle.unit == "quarter":
        last = cycle.last or (isinstance(month_days, MonthDays) and month_days.last)
        return Recur(start, end, month_days, QUARTER_LAST if last else QUARTER_FIRST)
    if cycle.count == 1:
        return Recur(start, end, month_days)
    months = months_from(first, cycle.count)
    if months is None:
        return ("unsupported", "unsupported")
    return Recur(start, end, month_days, months)


def with_months(recur: Recur, months: Sequence[Months]) -> Recur | Problem:
    """`recur` only in the months named ("only in December", 3月的每周二)."""
    if not months:
        return recur
    wanted = tuple(sorted({m for piece in months for m in piece.months}))
    if recur.months and set(recur.months) != set(wanted):
        return ("conflict", "conflict")
    return Recur(recur.start, recur.end, recur.days, wanted)


def either(recurs: Sequence[Recur]) -> list[Recur]:
    """Days of the month and weekdays together (每月1号和每周一): either day, as cron ORs them."""
    if len(recurs) != 2:
        return list(recurs)
    month = next((r for r in recurs if isinstance(r.days, MonthDays)), None)
    week = next((r for r in recurs if isinstance(r.days, Weekly)), None)
    if month is None or week is None or month.months or week.months:
        return list(recurs)
    if isinstance(month.days, MonthDays) and month.days.last:
        return list(recurs)
    assert isinstance(month.days, MonthDays)
    assert isinstance(week.days, Weekly)
    return [Recur(month.start, week.end, Either(month.days, week.days))]


def on_calendar(days: Days, calendar: str) -> Days:
    """工作日 / "workday" read under the configured working-day calendar (the grammars write
    `cn` for "the configured one")."""
    if isinstance(days, Workdays):
        return Weekly(WORKDAYS) if calendar == "mon-fri" else Workdays(calendar)
    if isinstance(days, MonthWorkday) and days.calendar == "cn":  # "working day": configured
        return MonthWorkday(days.nth, days.near, calendar)
    return days


def without_holidays(recurs: Sequence[Recur], stepping: bool) -> list[Recur] | None:
    """节假日除外 / "except holidays": every day or every weekday becomes China's working days
    (the only holiday calendar we have); None when the days cannot say it (every Monday…)."""
    found: list[Recur] = []
    for recur in recurs:
        days = recur.days
        plain = isinstance(days, Daily | Workdays) or (
            isinstance(days, Weekly) and days.weekdays == WORKDAYS
        )
        if not plain:
            return None
        found.append(Recur(recur.start, recur.end, Workdays("cn"), recur.months))
    if not found and stepping:
        return []
    return found if found else None


def without_weekends(recurs: Sequence[Recur], stepping: bool) -> list[Recur] | None:
    """周末除外: every day (or a step's every day) becomes Monday to Friday; working days stay
    as they are; None when the days cannot say it (every Saturday, the 1st…)."""
    if not recurs and stepping:
        return [Recur(0, 0, Weekly(WORKDAYS))]
    found: list[Recur] = []
    for recur in recurs:
        if isinstance(recur.days, Daily):
            found.append(Recur(recur.start, recur.end, Weekly(WORKDAYS), recur.months))
        elif isinstance(recur.days, Workdays) or (
            isinstance(recur.days, Weekly) and set(recur.days.weekdays) <= set(WORKDAYS)
        ):
            found.append(recur)
        else:
            return None
    return found if found else None
