"""Specs to APScheduler 3 triggers, their next fire times, and standard cron strings.

**Weekdays are names.** APScheduler numbers Monday 0, standard cron numbers Sunday 0:
`CronTrigger.from_crontab("0 9 * * 1-5")` fires Tuesday–Saturday. Triggers built here always
name the days (`day_of_week="mon,tue,wed,thu,fri"`); `trigger_for_cron` reads a standard cron
string (Sunday 0 or 7) into names.

**Day of month and day of week.** APScheduler ANDs `day` and `day_of_week`; Vixie cron ORs them
when both are restricted (`0 9 1 * 1` is "the 1st, and every Monday"). Our specs never restrict
both in one trigger; `trigger_for_cron` turns such a cron string into an `OrTrigger` of the two
halves, the Vixie meaning. The parser asks rather than guesses on "1号和每周一" (one schedule has
one kind of day). "Last day" is `day="last"`, n-th weekdays `day="1st mon"` / `"last fri"`:
no standard cron expresses them, so `cron_of` is None for them.

**Zones and DST.** Each trigger carries the schedule's zone (the spec keeps its IANA name; the
database stores instants in UTC next to it). Fire times are wall-clock times in that zone:

- spring forward (America/New_York, 2026-03-08): a daily 02:30 does not exist that day; the
  trigger fires at 03:30 EDT (APScheduler reads the missing time with the offset before the
  change), once, and at 02:30 again from the next day;
- fall back (2026-11-01): 01:30 happens twice; APScheduler's own cron trigger would fire at both.
  `WallClockCronTrigger` skips the repeat, like Vixie cron does for jobs with a fixed minute and
  hour: a daily job runs once a day (calendar specs, and steps inside a daily window). Steps on
  the clock with no window (`*/15 * * * *`, `0 */2 * * *`: Vixie's wildcard jobs) keep firing
  through the repeated hour, since elapsed time is what they are about.
- day steps ("every 2 days at 10:00") keep the wall-clock time across DST changes
  (`DayStepTrigger`); minute and hour steps without a window count elapsed time
  (`IntervalTrigger`).

**Misfires.** `JOB_DEFAULTS` are what the runtime gives APScheduler: `coalesce=True` (fires
missed while the loop was blocked or the leader was changing run once, not as a burst),
`misfire_grace_time=300` s (a fire up to five minutes late — a leader handover within the
lease time, a slow start — still runs; later than that it is a *missed* fire, which the runtime
records in `schedule_runs` and handles by its documented policy), `max_instances=1`.

Usage::

    trigger = trigger_for(spec)
    next_runs(spec, now, 5)        # computed by that very trigger, in the spec's zone
    cron_of(spec)                  # "0 9 * * 1-5", or None
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import partial
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from workflows.schedule.day_filters import DayFilterTrigger, EndingTrigger, keeps
from workflows.schedule.holidays import festival_months, is_workday
from workflows.schedule.spec import (
    MINUTES_PER_DAY,
    WEEKDAYS,
    Calendar,
    Daily,
    Either,
    Every,
    Festival,
    Kind,
    MonthDays,
    MonthWorkday,
    NthWeekdays,
    Once,
    Spec,
    SpecError,
    TimeOfDay,
    Weekly,
    WeekStep,
)

COALESCE = True
MISFIRE_GRACE_TIME = 300
MAX_INSTANCES = 1
JOB_DEFAULTS: dict[str, Any] = {
    "coalesce": COALESCE,
    "misfire_grace_time": MISFIRE_GRACE_TIME,
    "max_instances": MAX_INSTANCES,
}
CRON_WEEKDAY = {name: (index + 1) % 7 for index, name in enumerate(WEEKDAYS)}
"""Our weekday names to standard cron numbers (Sunday 0)."""
_POSITIONS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", -1: "last"}


class WallClockCronTrigger(CronTrigger):  # type: ignore[misc]
    """A cron trigger that fires once at a wall-clock time the clock shows twice (fall back)."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and fire.fold == 1 and _repeated(fire):
            fire = super().get_next_fire_time(fire, fire)
        return fire


def _repeated(moment: datetime) -> bool:
    """The second occurrence of a wall-clock time (its fold=0 twin is another instant)."""
    return moment.replace(fold=0).utcoffset() != moment.utcoffset()


class DayStepTrigger(IntervalTrigger):  # type: ignore[misc]
    """Every N days at the wall-clock time of `start_date`, whatever DST does in between."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start: datetime = self.start_date
        step = max(1, int(self.interval_length // 86400))
        after = previous_fire_time or now
        zone = start.tzinfo
        base = start.astimezone(zone)
        elapsed = (after.astimezone(zone).date() - base.date()).days
        index = max(0, elapsed // step - 1)
        while True:
            day = base.date() + timedelta(days=index * step)
            fire = _wall(day, base, zone)
            if fire > after or (previous_fire_time is None and fire >= after):
                return fire
            index += 1


def _wall(day: date, at: datetime, zone: Any) -> datetime:
    local = datetime.combine(day, at.timetz().replace(tzinfo=None), tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone)


# ---- times of day to cron fields -------------------------------------------------------------


def _groups(times: Sequence[TimeOfDay]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(hours, minutes) pairs whose products are exactly `times`, as few as found."""
    hours_at: dict[int, set[int]] = defaultdict(set)
    minutes_at: dict[int, set[int]] = defaultdict(set)
    for time in times:
        hours_at[time.minute].add(time.hour)
        minutes_at[time.hour].add(time.minute)
    by_hours: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for minute, hours in hours_at.items():
        by_hours[tuple(sorted(hours))].append(minute)
    by_minutes: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for hour, minutes in minutes_at.items():
        by_minutes[tuple(sorted(minutes))].append(hour)
    one = sorted((hours, tuple(sorted(minutes))) for hours, minutes in by_hours.items())
    two = sorted((tuple(sorted(hours)), minutes) for minutes, hours in by_minutes.items())
    return one if len(one) <= len(two) else two


def _list(values: Sequence[int]) -> str:
    return ",".join(str(value) for value in values)


def _window_times(spec: Every) -> list[TimeOfDay]:
    if spec.minutes >= MINUTES_PER_DAY:
        raise SpecError("day steps take no window and no weekdays")
    start, end = 0, MINUTES_PER_DAY
    if spec.window is not None:
        start, end = spec.window.start.minutes, spec.window.end.minutes
        if end <= start:
            end += MINUTES_PER_DAY
    found = {(minute % MINUTES_PER_DAY) for minute in range(start, end + 1, spec.minutes)}
    return [TimeOfDay(m // 60, m % 60) for m in sorted(found)]


def _day_fields(spec: Calendar) -> dict[str, str]:
    fields: dict[str, str] = {}
    days = spec.days
    if isinstance(days, Weekly):
        fields["day_of_week"] = ",".join(days.weekdays)
    elif isinstance(days, MonthDays):
        fields["day"] = ",".join([*(str(d) for d in days.days), *(["last"] if days.last else [])])
    elif isinstance(days, NthWeekdays):
        fields["day"] = ",".join(f"{_POSITIONS[n]} {day}" for n, day in days.positions)
    elif isinstance(days, WeekStep):
        fields["day_of_week"] = ",".join(days.weekdays)
    elif isinstance(days, MonthWorkday) and days.calendar == "mon-fri":
        fields["day_of_week"] = "mon-fri"
    elif isinstance(days, Festival):
        fields["month"] = _list(festival_months(days.name))  # the filter picks the day
    if spec.months:
        fields["month"] = _list(spec.months)
    return fields


def _uses_interval(spec: Every) -> bool:
    if spec.window is not None or spec.weekdays or spec.workdays:
        return False
    if spec.minutes < 60:
        return 60 % spec.minutes != 0
    return spec.minutes % 60 != 0 or (MINUTES_PER_DAY % spec.minutes) != 0


def _crons(
    groups: list[tuple[tuple[int, ...], tuple[int, ...]]],
    cls: type[CronTrigger],
    zone: ZoneInfo,
    **fields: Any,
) -> BaseTrigger:
    triggers = [
        cls(hour=_list(hours), minute=_list(minutes), second=0, timezone=zone, **fields)
        for hours, minutes in groups
    ]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


def trigger_for(spec: Spec) -> BaseTrigger:
    """The APScheduler 3 trigger that runs `spec` (in its zone); SpecError when it cannot."""
    zone = ZoneInfo(spec.timezone)
    if isinstance(spec, Once):
        return DateTrigger(run_date=spec.at.astimezone(zone), timezone=zone)
    if isinstance(spec, Calendar):
        groups = _groups(spec.times)
        if isinstance(spec.days, Either):
            halves = [
                Calendar(spec.times, days, spec.timezone, spec.months, spec.start, spec.end)
                for days in (spec.days.month_days, spec.days.weekly)
            ]
            return OrTrigger([trigger_for(half) for half in halves])
        fields: dict[str, Any] = dict(_day_fields(spec))
        if spec.start is not None:
            fields["start_date"] = datetime.combine(spec.start, clock_time(0), tzinfo=zone)
        if spec.end is not None:
            fields["end_date"] = datetime.combine(spec.end, clock_time.max, tzinfo=zone)
        base = _crons(groups, WallClockCronTrigger, zone, **fields)
        keep = keeps(spec.days)
        return base if keep is None else DayFilterTrigger(base, keep)
    if spec.end is not None:  # 每隔30分钟…直到晚上10点: the step's fires, none after the end
        return EndingTrigger(trigger_for(replace(spec, end=None)), spec.end.astimezone(zone))
    if _uses_interval(spec) and not spec.workdays:
        if spec.anchor is None:
            raise SpecError(f"every {spec.minutes} minutes needs an anchor (the first fire)")
        anchor = spec.anchor.astimezone(zone)
        if spec.minutes % MINUTES_PER_DAY == 0:
            return DayStepTrigger(
                days=spec.minutes // MINUTES_PER_DAY, start_date=anchor, timezone=zone
            )
        return IntervalTrigger(minutes=spec.minutes, start_date=anchor, timezone=zone)
    fields = {"day_of_week": ",".join(spec.weekdays)} if spec.weekdays else {}
    if spec.workdays:
        keep = partial(is_workday, calendar=spec.workdays)
        return DayFilterTrigger(
            _crons(_groups(_window_times(spec)), WallClockCronTrigger, zone), keep
        )
    if spec.window is None and not spec.weekdays:
        if spec.minutes < 60:
            return CronTrigger(minute=f"*/{spec.minutes}", second=0, timezone=zone)
        return CronTrigger(hour=f"*/{spec.minutes // 60}", minute=0, second=0, timezone=zone)
    return _crons(_groups(_window_times(spec)), WallClockCronTrigger, zone, **fields)


def next_runs(spec: Spec, now: datetime, count: int = 5) -> list[datetime]:
    """The next `count` fire times after `now`, from `trigger_for(spec)` exactly as the
    scheduler asks it (`get_next_fire_time(previous, now)`), in the spec's zone."""
    zone = ZoneInfo(spec.timezone)
    trigger = trigger_for(spec)
    found: list[datetime] = []
    previous: datetime | None = None
    current = now.astimezone(zone)
    while len(found) < count:
        fire: datetime | None = trigger.get_next_fire_time(previous, current)
        if fire is None:
            break
        found.append(fire.astimezone(UTC).astimezone(zone))
        previous = current = fire
    return found


# ---- standard cron ---------------------------------------------------------------------------


def _cron_field(values: Sequence[int], low: int, high: int, steps: bool = True) -> str:
    """Numbers as a cron field: `*`, `*/15`, `9-17`, `1,15`, `8-20/4`."""
    values = sorted(set(values))
    if values == list(range(low, high + 1)):
        return "*"
    if steps and len(values) >= 2:
        step = values[1] - values[0]
        progression = all(b - a == step for a, b in pairwise(values))
        if progression and step > 1:
            if values[0] == low and values[-1] + step > high:
                return f"*/{step}"
            if len(values) >= 4:
                return f"{values[0]}-{values[-1]}/{step}"
    parts: list[str] = []
    run: list[int] = []
    for value in [*values, None]:
        if run and (value is None or value != run[-1] + 1):
            parts.append(f"{run[0]}-{run[-1]}" if len(run) >= 3 else _list(run))
            run = []
        if value is not None:
            run.append(value)
    return ",".join(parts)


def cron_of(spec: Spec) -> str | None:
    """The standard 5-field cron (Sunday 0) that means exactly `spec`, or None."""
    if isinstance(spec, Once):
        return None
    if isinstance(spec, Every):
        if _uses_interval(spec) or spec.workdays or spec.end is not None:
            return None
        if spec.window is None and not spec.weekdays:
            if spec.minutes < 60:
                return "* * * * *" if spec.minutes == 1 else f"*/{spec.minutes} * * * *"
            every_hours = spec.minutes // 60
            return "0 * * * *" if every_hours == 1 else f"0 */{every_hours} * * *"
        groups = _groups(_window_times(spec))
        weekdays = spec.weekdays or WEEKDAYS
        dom, dow, months = "*", _cron_field([CRON_WEEKDAY[d] for d in weekdays], 0, 6, False), "*"
    else:
        if spec.start is not None or spec.end is not None:
            return None  # no cron field says "from that day on" or "up to that day"
        groups = _groups(spec.times)
        days = spec.days
        dom, dow = "*", "*"
        if isinstance(days, Weekly):
            dow = _cron_field([CRON_WEEKDAY[d] for d in days.weekdays], 0, 6, False)
        elif isinstance(days, MonthDays) and not days.last:
            dom = _cron_field(days.days, 1, 31, False)
        elif isinstance(days, Either) and not days.month_days.last:
            dom = _cron_field(days.month_days.days, 1, 31, False)
            dow = _cron_field([CRON_WEEKDAY[d] for d in days.weekly.weekdays], 0, 6, False)
        elif not isinstance(days, Daily):
            return None
        months = _cron_field(spec.months, 1, 12, False) if spec.months else "*"
    if len(groups) != 1:
        return None
    hours, minutes = groups[0]
    return f"{_cron_field(minutes, 0, 59)} {_cron_field(hours, 0, 23)} {dom} {months} {dow}"


def kind_of(spec: Spec) -> Kind:
    """`storage.models.Schedule.kind` for `spec` (see `spec.Spec.kind`)."""
    if isinstance(spec, Once):
        return "once"
    if isinstance(spec, Every) and _uses_interval(spec) and spec.end is None:
        return "interval"
    return "cron" if cron_of(spec) is not None else "extended"


def _cron_weekdays(field: str) -> str:
    """A standard cron day-of-week field (Sunday 0 or 7, names allowed) as APScheduler names."""
    found: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise SpecError(f"not a day-of-week step: {part!r}")
        step = int(step_text) if step_text else 1
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            low_text, high_text = base.split("-", 1)
            low, high = _cron_day(low_text), _cron_day(high_text)
            high = 7 if high == 0 and low > 0 else high
        else:
            low = high = _cron_day(base)
        found.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(WEEKDAYS[(day - 1) % 7] for day in sorted(found, key=lambda d: (d - 1) % 7))


def _cron_day(text: str) -> int:
    lowered = text.strip().lower()
    if lowered[:3] in CRON_WEEKDAY:
        return CRON_WEEKDAY[lowered[:3]]
    try:
        value = int(lowered)
    except ValueError:
        raise SpecError(f"not a day of week: {text!r}") from None
    if not 0 <= value <= 7:
        raise SpecError(f"day of week out of range: {text}")
    return value % 7


def trigger_for_cron(expression: str, timezone: str) -> BaseTrigger:
    """A trigger for a standard 5-field cron string (Sunday 0), with Vixie's OR of day of month
    and day of week when both are restricted."""
    fields = expression.split()
    if len(fields) != 5:
        raise SpecError("a cron expression has 5 fields: minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    zone = ZoneInfo(timezone)
    common = {"minute": minute, "hour": hour, "month": month, "second": 0, "timezone": zone}
    # Vixie cron: jobs with a wildcard minute or hour run through a repeated hour, others once
    cls = CronTrigger if "*" in minute or "*" in hour else WallClockCronTrigger
    try:
        if day != "*" and weekday != "*":
            return OrTrigger(
                [
                    cls(day=day, **common),
                    cls(day_of_week=_cron_weekdays(weekday), **common),
                ]
            )
        if weekday != "*":
            return cls(day_of_week=_cron_weekdays(weekday), **common)
        return cls(day=day, **common)
    except ValueError as exc:
        raise SpecError(f"not a cron expression: {exc}") from None
