"""The last day of a repetition (`pieces.Until`, read by `ends`): a day named (到12月31日为止,
"until the end of the month"), a length from the first fire (持续一周: that day and the six
after it; "for a month": up to the day before the same date a month later), a number of fires
(共4次: up to the 4th), or, for a step, a time of day (每隔30分钟…直到晚上10点)."""

from __future__ import annotations

import calendar as month_calendar
from dataclasses import replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time

from workflows.schedule import dates
from workflows.schedule.clarify import Clarify, Reading
from workflows.schedule.clock import Problem, resolve
from workflows.schedule.compiler import next_runs
from workflows.schedule.moments import PAST_DAYS, date_of
from workflows.schedule.pieces import Clock, DateOf, Until
from workflows.schedule.spec import Calendar, Every, Spec


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


def _counted(spec: Calendar | Every, runs: int, now: datetime) -> Spec | Clarify:
    """`spec` ending with its `runs`-th fire: a step at that instant, a calendar on that day
    (asked when more of its fires fall on that day: 共3次 of a job that runs twice a day)."""
    fires = next_runs(spec, now, runs + 1)
    if len(fires) < runs:  # fewer fires than counted ever come: the spec as it is
        return spec
    if isinstance(spec, Every):
        return replace(spec, end=fires[runs - 1])
    last = fires[runs - 1].date()
    if len(fires) > runs and fires[runs].date() == last:
        return Clarify("count_splits_day", "unsupported", {"runs": str(runs)})
    return replace(spec, end=last)


def _last_day(until: Until, start: date, now: datetime) -> date | Clarify:
    """The last day `until` names (a day, or a length from the first fire's day `start`)."""
    if until.target is not None:
        last = date_of(until.target, now)
        if isinstance(last, Clarify):
            return last
    elif until.months:
        last = _months_later(start, until.months) - timedelta(days=1)
    else:
        last = start + timedelta(days=until.days - 1)
    return _passed_lately(until, now.date()) or last


def _end_time(clock: Clock, now: datetime) -> datetime | Clarify:
    """直到晚上10点, "until 6pm": the next time that clock time comes (tonight's, or after
    midnight's when it has passed today); a bare 1–6点 asks (the small hours or the afternoon)."""
    time = resolve(clock)
    if isinstance(time, Problem):
        return Clarify(time.topic, time.reason, {"hour": str(clock.hour), "period": ""})
    if time.plain and clock.language == "zh" and 1 <= time.hour <= 6:
        return Clarify("am_or_pm", "ambiguous", {"hour": str(time.hour)})
    day = now.date() + timedelta(days=1 if time.next_day else 0)
    end = datetime.combine(day, clock_time(time.hour, time.minute), tzinfo=now.tzinfo)
    return end if end > now else end + timedelta(days=1)


def bounded(spec: Calendar | Every, until: Until, now: datetime) -> Reading:
    """`spec` up to the end `until` names (its last day included; a step may also end at a
    time of day), or the question when that end comes before the first fire."""
    first = next_runs(spec, now, 1)
    if not first:
        return Clarify("bad_date", "impossible")
    if until.runs:
        return _counted(spec, until.runs, now)
    if isinstance(until.target, Clock):
        if isinstance(spec, Calendar):  # 每天9点…直到18点: a time of day cannot end days
            return Clarify("conflict", "conflict")
        end = _end_time(until.target, now)
        if isinstance(end, Clarify):
            return end
        last = end.date()
    else:
        found = _last_day(until, first[0].date(), now)
        if isinstance(found, Clarify):
            return found
        last = found
        end = datetime.combine(last, clock_time.max, tzinfo=now.tzinfo)
    if end < first[0]:
        return Clarify("end_before_start", "conflict", {"date": last.isoformat()})
    return replace(spec, end=end) if isinstance(spec, Every) else replace(spec, end=last)
