"""The last day of a repetition (`pieces.Until`, read by `ends`): a day named (到12月31日为止,
"until the end of the month") or a length from the first fire (持续一周: that day and the six
after it; "for a month": up to the day before the same date a month later), or a number of
fires (共4次: up to the day of the 4th)."""

from __future__ import annotations

import calendar as month_calendar
from dataclasses import replace
from datetime import date, datetime, timedelta

from workflows.schedule import dates
from workflows.schedule.clarify import Clarify, Reading
from workflows.schedule.compiler import next_runs
from workflows.schedule.moments import PAST_DAYS, date_of
from workflows.schedule.pieces import DateOf, Until
from workflows.schedule.spec import Calendar


def _months_later(day: date, months: int) -> date:
    """The same date `months` later (the month's last day when it has no such date)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, month_calendar.monthrange(year, month)[1]))


def _passed_lately(until: Until, today: date) -> date | None:
    """This year's date of a month and day written with no year, when it passed lately (到12月1日
    为止 said on 12月7日): a slip more likely than next year's date."""
    target = until.target
    if not isinstance(target, DateOf) or target.month is None or target.year is not None:
        return None
    if target.years_ahead is not None or target.last:
        return None
    passed = dates.calendar_date(today, target.month, target.day, today.year)
    return passed if passed is not None and 0 < (today - passed).days <= PAST_DAYS else None


def _counted(spec: Calendar, runs: int, now: datetime) -> Reading:
    """`spec` ending on the day of its `runs`-th fire; asked when more fires fall on that day
    (共3次 of a job that runs twice a day: the end would split a day)."""
    fires = next_runs(spec, now, runs + 1)
    if len(fires) < runs:  # fewer fires than counted ever come: the spec as it is
        return spec
    last = fires[runs - 1].date()
    if len(fires) > runs and fires[runs].date() == last:
        return Clarify("end_unsupported", "unsupported")
    return replace(spec, end=last)


def bounded(spec: Calendar, until: Until, now: datetime) -> Reading:
    """`spec` up to the last day `until` names (included), or the question when that day comes
    before the first fire."""
    first = next_runs(spec, now, 1)
    if not first:
        return Clarify("bad_date", "impossible")
    start = first[0].date()
    if until.target is not None:
        last = date_of(until.target, now)
        if isinstance(last, Clarify):
            return last
    elif until.runs:
        return _counted(spec, until.runs, now)
    elif until.months:
        last = _months_later(start, until.months) - timedelta(days=1)
    else:
        last = start + timedelta(days=until.days - 1)
    last = _passed_lately(until, now.date()) or last
    if last < start:
        return Clarify("end_before_start", "conflict", {"date": last.isoformat()})
    return replace(spec, end=last)
