"""The intermediate form of a schedule: what the parser (rules or model) produces, what the
`schedules.spec` column stores, and what the compiler turns into an APScheduler trigger.

Three forms, each a frozen dataclass that keeps its IANA zone:

- `Once(at, timezone)`: one instant (`at` is aware, in the zone).
- `Calendar(times, days, months, timezone)`: fixed times of day on matching days; `days` is
  one of `days.Days` (every day, weekdays, days of the month, n-th weekdays, working days of a
  calendar, a working day of the month, every N weeks, a festival, or either of two).
- `Every(minutes, window, weekdays, anchor, timezone, end)`: a fixed step, optionally only
  inside a daily window (ends included: `09:00–18:00` every 30 min fires 09:00 … 18:00) and on
  some weekdays, or only on working days, and up to an `end` instant.

`spec.kind` is the `storage.models.Schedule.kind` of the trigger it compiles to: `once`,
`cron` (one cron trigger that a standard 5-field cron also expresses), `interval` (an
interval trigger) or `extended` (last day of month, n-th weekday, several cron triggers, …).

Weekdays are always names (`mon` … `sun`), never numbers. Usage::

    spec = Calendar((TimeOfDay(9, 0),), Weekly(("mon", "tue", "wed", "thu", "fri")),
                    timezone="Asia/Shanghai")
    data = spec.to_json()          # plain JSON for the jsonb column
    assert from_json(data) == spec
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workflows.schedule.days import (
    WEEKDAYS,
    WEEKEND,
    WORKDAYS,
    Daily,
    DayFromEnd,
    Days,
    Either,
    Festival,
    MonthDays,
    MonthWorkday,
    NthWeekdays,
    SpecError,
    Weekly,
    WeekStep,
    Workdays,
    days_from,
    days_json,
    list_of,
    numbers,
    words,
)

__all__ = [
    "MINUTES_PER_DAY",
    "WEEKDAYS",
    "WEEKEND",
    "WORKDAYS",
    "Calendar",
    "Daily",
    "DayFromEnd",
    "Days",
    "Either",
    "Every",
    "Festival",
    "Kind",
    "MonthDays",
    "MonthWorkday",
    "NthWeekdays",
    "Once",
    "Spec",
    "SpecError",
    "TimeOfDay",
    "WeekStep",
    "Weekly",
    "Window",
    "Workdays",
    "from_json",
    "to_json",
    "workday_calendar",
]

Kind = Literal["once", "cron", "interval", "extended"]
MINUTES_PER_DAY = 24 * 60
MAX_STEP_MINUTES = 366 * MINUTES_PER_DAY
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, order=True)
class TimeOfDay:
    """A wall-clock time, `hour` 0–23 and `minute` 0–59."""

    hour: int
    minute: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise SpecError(f"not a time of day: {self.hour}:{self.minute:02d}")

    @property
    def minutes(self) -> int:
        """Minutes since midnight."""
        return self.hour * 60 + self.minute

    def __str__(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"

    @classmethod
    def parse(cls, text: object) -> TimeOfDay:
        match = _CLOCK.match(text) if isinstance(text, str) else None
        if match is None:
            raise SpecError(f"a time of day must be 'HH:MM' (got {text!r})")
        return cls(int(match.group(1)), int(match.group(2)))


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Once:
    """One run at `at` (aware), in `timezone`."""

    at: datetime
    timezone: str

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise SpecError("a one-shot time needs a UTC offset")

    @property
    def kind(self) -> Kind:
        return "once"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the `schedules.spec` column; `from_json` reads it back."""
        return to_json(self)


@dataclass(frozen=True)
class Calendar:
    """Fixed times of day on matching days (`months` empty: every month), from the day
    `start` on when it is set (从明天开始每天9点, "starting next Monday"), up to the day `end`
    included when it is set (到12月31日为止, "for a week")."""

    times: tuple[TimeOfDay, ...]
    days: Days
    timezone: str
    months: tuple[int, ...] = ()
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if not self.times or list(self.times) != sorted(set(self.times)):
            raise SpecError("times of day must be sorted, without repeats, at least one")
        if any(not 1 <= month <= 12 for month in self.months) or list(self.months) != sorted(
            set(self.months)
        ):
            raise SpecError("months must be sorted numbers 1-12 without repeats")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise SpecError("the last day comes before the first")

    @property
    def kind(self) -> Kind:
        from workflows.schedule.compiler import kind_of

        return kind_of(self)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the `schedules.spec` column; `from_json` reads it back."""
        return to_json(self)


@dataclass(frozen=True)
class Window:
    """A daily window, both ends included ("every 3 hours from 9am to 9pm" fires at 21:00);
    crossing midnight allowed."""

    start: TimeOfDay
    end: TimeOfDay

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise SpecError("a window must not be empty")


@dataclass(frozen=True)
class Every:
    """Every `minutes`, optionally inside a daily `window` and only on `weekdays`.

    Without a window or weekdays, steps that divide an hour (or a day, in hours) run on the
    clock (`*/15`, `0 */2`); other steps run from `anchor`, the first fire."""

    minutes: int
    timezone: str
    window: Window | None = None
    weekdays: tuple[str, ...] = ()
    anchor: datetime | None = None
    workdays: str = ""
    """`cn` or `mon-fri`: only on that calendar's working days (then no `weekdays`)."""
    end: datetime | None = None
    """The last instant a fire may fall on (直到晚上10点, 持续3天, 共5次), or None."""

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if self.end is not None and self.end.utcoffset() is None:
            raise SpecError("the end needs a UTC offset")
        if self.workdays:
            Workdays(self.workdays)
        if not 1 <= self.minutes <= MAX_STEP_MINUTES:
            raise SpecError("the step must be between 1 minute and a year")
        if self.weekdays:
            Weekly(self.weekdays)
        if self.anchor is not None and self.anchor.utcoffset() is None:
            raise SpecError("the anchor needs a UTC offset")

    @property
    def kind(self) -> Kind:
        from workflows.schedule.compiler import kind_of

        return kind_of(self)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the `schedules.spec` column; `from_json` reads it back."""
        return to_json(self)


Spec = Once | Calendar | Every


# ---- JSON ------------------------------------------------------------------------------------


def to_json(spec: Spec) -> dict[str, Any]:
    """The spec as plain JSON (also `spec.to_json()`): `form` selects the class, `kind` is
    informative (recomputed on load)."""
    data: dict[str, Any] = {"kind": spec.kind, "timezone": spec.timezone}
    if isinstance(spec, Once):
        data.update(form="once", at=spec.at.isoformat())
    elif isinstance(spec, Calendar):
        data.update(
            form="calendar",
            times=[str(time) for time in spec.times],
            days=days_json(spec.days),
            months=list(spec.months),
        )
        if spec.start is not None:
            data["start"] = spec.start.isoformat()
        if spec.end is not None:
            data["end"] = spec.end.isoformat()
    else:
        window = None if spec.window is None else [str(spec.window.start), str(spec.window.end)]
        data.update(
            form="every",
            minutes=spec.minutes,
            window=window,
            weekdays=list(spec.weekdays),
            anchor=None if spec.anchor is None else spec.anchor.isoformat(),
        )
        if spec.workdays:
            data["workdays"] = spec.workdays
        if spec.end is not None:
            data["end"] = spec.end.isoformat()
    return data


def _instant(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise SpecError(f"{key} must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SpecError(f"{key} is not ISO 8601: {value!r}") from None
    if moment.tzinfo is None:
        raise SpecError(f"{key} needs a UTC offset")
    return moment


def _day(data: Mapping[str, Any], key: str) -> date | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{key} must be an ISO date")
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise SpecError(f"{key} is not an ISO date: {value!r}") from None


def from_json(data: object) -> Spec:
    """A spec from its JSON; raises SpecError naming the first problem."""
    if not isinstance(data, Mapping):
        raise SpecError("a spec must be a JSON object")
    zone = data.get("timezone")
    if not isinstance(zone, str):
        raise SpecError("timezone must be an IANA zone name")
    _zone(zone)
    form = data.get("form")
    try:
        if form == "once":
            moment = _instant(data.get("at"), "at")
            return Once(moment.astimezone(ZoneInfo(zone)), zone)
        if form == "calendar":
            times = tuple(sorted({TimeOfDay.parse(item) for item in list_of(data, "times")}))
            months = numbers(list_of(data, "months"), "months")
            first, last = _day(data, "start"), _day(data, "end")
            return Calendar(times, days_from(data.get("days")), zone, months, first, last)
        if form == "every":
            minutes = data.get("minutes")
            if not isinstance(minutes, int) or isinstance(minutes, bool):
                raise SpecError("minutes must be a whole number")
            window_data = list_of(data, "window")
            window = None
            if window_data:
                if len(window_data) != 2:
                    raise SpecError("window must be [start, end]")
                window = Window(TimeOfDay.parse(window_data[0]), TimeOfDay.parse(window_data[1]))
            raw_anchor = data.get("anchor")
            anchor = None if raw_anchor is None else _instant(raw_anchor, "anchor")
            weekdays = words(list_of(data, "weekdays"), "weekdays")
            workdays = data.get("workdays") or ""
            if not isinstance(workdays, str):
                raise SpecError("workdays must be cn or mon-fri")
            raw_end = data.get("end")
            end = None if raw_end is None else _instant(raw_end, "end")
            return Every(minutes, zone, window, weekdays, anchor, workdays, end)
    except TypeError as exc:
        raise SpecError(str(exc)) from None
    raise SpecError(f"unknown form {form!r} (once, calendar or every)")


def workday_calendar(spec: Spec) -> str | None:
    """The working-day calendar `spec` follows (`cn`, `mon-fri`), or None."""
    if isinstance(spec, Every):
        return spec.workdays or None
    if isinstance(spec, Calendar) and isinstance(spec.days, Workdays | MonthWorkday):
        return spec.days.calendar
    return None
