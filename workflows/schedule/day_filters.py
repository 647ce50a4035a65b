"""Days no cron field can say — the working days of a calendar, the first/last/nearest working
day of a month, every N weeks, a festival, the n-th day from the month's end — as a filter over
the fires of a cron trigger; and an end no trigger of a step has (`EndingTrigger`).

Usage::

    keep = keeps(Workdays("cn"))               # date -> bool, or None when cron suffices
    trigger = DayFilterTrigger(CronTrigger(hour=9, minute=0), keep)
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, datetime
from functools import partial

from apscheduler.triggers.base import BaseTrigger

from workflows.schedule.days import (
    DayFromEnd,
    Days,
    Festival,
    MonthWorkday,
    WeekStep,
    Workdays,
)
from workflows.schedule.holidays import festival_date, is_workday

MAX_SKIPS = 5000
"""Fires a day filter may pass over before it gives up (far more than a year of daily fires)."""


class DayFilterTrigger(BaseTrigger):  # type: ignore[misc]
    """The fires of `base` on the days `keep` accepts (working days, a festival, every other
    week…): what no cron field can say."""

    def __init__(self, base: BaseTrigger, keep: Callable[[date], bool]) -> None:
        self.base = base
        self.keep = keep

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = self.base.get_next_fire_time(previous_fire_time, now)
        for _ in range(MAX_SKIPS):
            if fire is None or self.keep(fire.date()):
                return fire
            fire = self.base.get_next_fire_time(fire, fire)
        return None


class EndingTrigger(BaseTrigger):  # type: ignore[misc]
    """The fires of `base` up to `end` (included); None after it: the scheduler drops the job."""

    def __init__(self, base: BaseTrigger, end: datetime) -> None:
        self.base = base
        self.end = end

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = self.base.get_next_fire_time(previous_fire_time, now)
        return fire if fire is not None and fire <= self.end else None


def keeps(days: Days) -> Callable[[date], bool] | None:
    """The day filter `days` needs on top of its cron fields, or None."""
    if isinstance(days, Workdays):
        return partial(is_workday, calendar=days.calendar)
    if isinstance(days, MonthWorkday):
        return partial(_month_workday, days)
    if isinstance(days, WeekStep):
        return partial(_in_week_step, days)
    if isinstance(days, Festival):
        return partial(_is_festival, days.name)
    if isinstance(days, DayFromEnd):
        return partial(_from_end, days.nth)
    return None


def _from_end(nth: int, day: date) -> bool:
    return calendar.monthrange(day.year, day.month)[1] - day.day + 1 == nth


def _month_workday(days: MonthWorkday, day: date) -> bool:
    if not is_workday(day, days.calendar):
        return False
    last = calendar.monthrange(day.year, day.month)[1]
    month = [date(day.year, day.month, d) for d in range(1, last + 1)]
    working = [d for d in month if is_workday(d, days.calendar)]
    if not working:
        return False
    if days.nth == 1:
        return day == working[0]
    if days.nth == -1:
        return day == working[-1]
    target = date(day.year, day.month, min(days.near, last))
    nearest = min(working, key=lambda d: (abs((d - target).days), d > target))
    return day == nearest


def _in_week_step(days: WeekStep, day: date) -> bool:
    weeks = (day - days.start).days // 7
    return weeks >= 0 and weeks % days.weeks == 0


def _is_festival(name: str, day: date) -> bool:
    return festival_date(name, day.year) == day
