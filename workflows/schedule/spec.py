"""The intermediate form of a schedule: what the parser (rules or model) produces, what the
`schedules.spec` column stores, and what the compiler turns into an APScheduler trigger.

Three forms, each a frozen dataclass that keeps its IANA zone:

- `Once(at, timezone)`: one instant (`at` is aware, in the zone).
- `Calendar(times, days, months, timezone)`: fixed times of day on matching days; `days` is
  `Daily()`, `Weekly(weekdays)`, `MonthDays(days, last)` or `NthWeekdays(positions)`.
- `Every(minutes, window, weekdays, anchor, timezone)`: a fixed step, optionally only inside a
  daily window (ends included: `09:00–18:00` every 30 min fires 09:00 … 18:00) and on some
  weekdays, or only on working days.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Kind = Literal["once", "cron", "interval", "extended"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names in APScheduler's order (Monday first)."""
WORKDAYS = WEEKDAYS[:5]
WEEKEND = WEEKDAYS[5:]
MINUTES_PER_DAY = 24 * 60
MAX_STEP_MINUTES = 366 * MINUTES_PER_DAY
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class SpecError(ValueError):
    """A spec that is not valid (bad field, unknown zone, impossible value)."""


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


@dataclass(frozen=True)
class Daily:
    """Every day."""


@dataclass(frozen=True)
class Weekly:
    """On these weekdays (names, Monday first, no repeats)."""

    weekdays: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.weekdays or any(day not in WEEKDAYS for day in self.weekdays):
            raise SpecError(f"weekdays must be names among {', '.join(WEEKDAYS)}")
        if tuple(sorted(set(self.weekdays), key=WEEKDAYS.index)) != self.weekdays:
            raise SpecError("weekdays must be sorted Monday first, without repeats")


@dataclass(frozen=True)
class MonthDays:
    """On these days of the month (1–31, sorted), and/or on its last day."""

    days: tuple[int, ...] = ()
    last: bool = False

    def __post_init__(self) -> None:
        if not self.days and not self.last:
            raise SpecError("month days need at least one day or `last`")
        if any(not 1 <= day <= 31 for day in self.days) or list(self.days) != sorted(
            set(self.days)
        ):
            raise SpecError("days of the month must be sorted numbers 1-31 without repeats")


@dataclass(frozen=True)
class NthWeekdays:
    """The n-th weekday(s) of the month: `((1, "mon"),)` is the first Monday, -1 the last."""

    positions: tuple[tuple[int, str], ...]

    def __post_init__(self) -> None:
        if not self.positions:
            raise SpecError("n-th weekdays need at least one position")
        for nth, day in self.positions:
            if nth not in (1, 2, 3, 4, 5, -1) or day not in WEEKDAYS:
                raise SpecError(f"not an n-th weekday: {nth} {day}")


@dataclass(frozen=True)
class Workdays:
    """The working days of `calendar` (`cn`: the State Council's, with holidays off and the
    调休 weekends on; `mon-fri`: Monday to Friday)."""

    calendar: str = "cn"

    def __post_init__(self) -> None:
        if self.calendar not in ("cn", "mon-fri"):
            raise SpecError(f"unknown working-day calendar {self.calendar!r}")


@dataclass(frozen=True)
class MonthWorkday:
    """The first (`nth` 1) or last (`nth` -1) working day of the month, or (`near` 1–31) the
    working day nearest that day without leaving the month (cron's `W`)."""

    nth: int = 0
    near: int = 0
    calendar: str = "mon-fri"

    def __post_init__(self) -> None:
        Workdays(self.calendar)
        if (self.nth in (1, -1)) == (1 <= self.near <= 31):
            raise SpecError("give either nth (1 or -1) or near (1-31)")


@dataclass(frozen=True)
class WeekStep:
    """These weekdays every `weeks` weeks, counted from the week of Monday `start`."""

    weekdays: tuple[str, ...]
    weeks: int
    start: date

    def __post_init__(self) -> None:
        Weekly(self.weekdays)
        if not 2 <= self.weeks <= 52:
            raise SpecError("a week step is 2 to 52 weeks")
        if self.start.weekday() != 0:
            raise SpecError("the first week starts on a Monday")


@dataclass(frozen=True)
class Festival:
    """The day of a festival each year (除夕, 春节, 中秋…, by the lunar calendar)."""

    name: str

    def __post_init__(self) -> None:
        from workflows.schedule.holidays import FESTIVALS

        if self.name not in FESTIVALS:
            raise SpecError(f"unknown festival {self.name!r}")


@dataclass(frozen=True)
class Either:
    """The days of the month `month_days` and also every weekday of `weekly` (cron's OR)."""

    month_days: MonthDays
    weekly: Weekly


Days = (
    Daily
    | Weekly
    | MonthDays
    | NthWeekdays
    | Workdays
    | MonthWorkday
    | WeekStep
    | Festival
    | Either
)


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
    """Fixed times of day on matching days (`months` empty: every month)."""

    times: tuple[TimeOfDay, ...]
    days: Days
    timezone: str
    months: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if not self.times or list(self.times) != sorted(set(self.times)):
            raise SpecError("times of day must be sorted, without repeats, at least one")
        if any(not 1 <= month <= 12 for month in self.months) or list(self.months) != sorted(
            set(self.months)
        ):
            raise SpecError("months must be sorted numbers 1-12 without repeats")

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

    def __post_init__(self) -> None:
        _zone(self.timezone)
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


def _days_json(days: Days) -> dict[str, Any]:
    if isinstance(days, Daily):
        return {"type": "daily"}
    if isinstance(days, Weekly):
        return {"type": "weekly", "weekdays": list(days.weekdays)}
    if isinstance(days, MonthDays):
        return {"type": "monthly", "days": list(days.days), "last": days.last}
    if isinstance(days, NthWeekdays):
        return {"type": "nth", "positions": [[nth, day] for nth, day in days.positions]}
    if isinstance(days, Workdays):
        return {"type": "workdays", "calendar": days.calendar}
    if isinstance(days, MonthWorkday):
        return {
            "type": "month_workday",
            "nth": days.nth,
            "near": days.near,
            "calendar": days.calendar,
        }
    if isinstance(days, WeekStep):
        return {
            "type": "week_step",
            "weekdays": list(days.weekdays),
            "weeks": days.weeks,
            "start": days.start.isoformat(),
        }
    if isinstance(days, Festival):
        return {"type": "festival", "name": days.name}
    return {
        "type": "either",
        "month_days": _days_json(days.month_days),
        "weekly": _days_json(days.weekly),
    }


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
            days=_days_json(spec.days),
            months=list(spec.months),
        )
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
    return data


def _list(data: Mapping[str, Any], key: str, default: Sequence[Any] = ()) -> list[Any]:
    value = data.get(key, list(default))
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(f"{key} must be a list")
    return value


def _ints(values: list[Any], key: str) -> tuple[int, ...]:
    if any(not isinstance(value, int) or isinstance(value, bool) for value in values):
        raise SpecError(f"{key} must hold whole numbers")
    return tuple(values)


def _strs(values: list[Any], key: str) -> tuple[str, ...]:
    if any(not isinstance(value, str) for value in values):
        raise SpecError(f"{key} must hold strings")
    return tuple(value.lower() for value in values)


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


def _days_from(data: object) -> Days:
    if not isinstance(data, Mapping):
        raise SpecError("days must be an object with a type")
    kind = data.get("type")
    if kind == "daily":
        return Daily()
    if kind == "weekly":
        return Weekly(_strs(_list(data, "weekdays"), "weekdays"))
    if kind == "monthly":
        last = data.get("last", False)
        if not isinstance(last, bool):
            raise SpecError("last must be true or false")
        return MonthDays(_ints(_list(data, "days"), "days"), last)
    if kind == "nth":
        positions: list[tuple[int, str]] = []
        for item in _list(data, "positions"):
            if not (isinstance(item, list) and len(item) == 2):
                raise SpecError("positions must be [n, weekday] pairs")
            nth, day = item
            if not isinstance(nth, int) or not isinstance(day, str):
                raise SpecError("positions must be [n, weekday] pairs")
            positions.append((nth, day.lower()))
        return NthWeekdays(tuple(positions))
    return _more_days(data, kind)


def _word(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise SpecError(f"{key} must be a string")
    return value


def _whole(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"{key} must be a whole number")
    return value


def _more_days(data: Mapping[str, Any], kind: object) -> Days:
    if kind == "workdays":
        return Workdays(_word(data, "calendar"))
    if kind == "month_workday":
        return MonthWorkday(_whole(data, "nth"), _whole(data, "near"), _word(data, "calendar"))
    if kind == "week_step":
        try:
            start = date.fromisoformat(_word(data, "start"))
        except ValueError:
            raise SpecError("start must be an ISO date") from None
        weekdays = _strs(_list(data, "weekdays"), "weekdays")
        return WeekStep(weekdays, _whole(data, "weeks"), start)
    if kind == "festival":
        return Festival(_word(data, "name"))
    if kind == "either":
        month_days, weekly = _days_from(data.get("month_days")), _days_from(data.get("weekly"))
        if not isinstance(month_days, MonthDays) or not isinstance(weekly, Weekly):
            raise SpecError("either needs monthly month_days and weekly weekdays")
        return Either(month_days, weekly)
    raise SpecError(f"unknown days type {kind!r}")


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
            times = tuple(sorted({TimeOfDay.parse(item) for item in _list(data, "times")}))
            months = _ints(_list(data, "months"), "months")
            return Calendar(times, _days_from(data.get("days")), zone, months)
        if form == "every":
            minutes = data.get("minutes")
            if not isinstance(minutes, int) or isinstance(minutes, bool):
                raise SpecError("minutes must be a whole number")
            window_data = _list(data, "window")
            window = None
            if window_data:
                if len(window_data) != 2:
                    raise SpecError("window must be [start, end]")
                window = Window(TimeOfDay.parse(window_data[0]), TimeOfDay.parse(window_data[1]))
            raw_anchor = data.get("anchor")
            anchor = None if raw_anchor is None else _instant(raw_anchor, "anchor")
            weekdays = _strs(_list(data, "weekdays"), "weekdays")
            workdays = data.get("workdays") or ""
            if not isinstance(workdays, str):
                raise SpecError("workdays must be cn or mon-fri")
            return Every(minutes, zone, window, weekdays, anchor, workdays)
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
