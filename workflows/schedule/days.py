"""The days of a calendar schedule: every day, weekdays, days of the month, n-th weekdays, a day
counted from the month's end, the
working days of a calendar, the first/last/nearest working day of the month, every N weeks, a
festival, and a day of the month or a weekday (`spec.Calendar.days`). Weekdays are names
(`mon` … `sun`), never numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names in APScheduler's order (Monday first)."""
WORKDAYS = WEEKDAYS[:5]
WEEKEND = WEEKDAYS[5:]


class SpecError(ValueError):
    """A spec that is not valid (bad field, unknown zone, impossible value)."""


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
class DayFromEnd:
    """The `nth` day counted back from the month's end (2: the day before the last, 倒数第二天;
    the last day itself is `MonthDays(last=True)`)."""

    nth: int

    def __post_init__(self) -> None:
        if not 2 <= self.nth <= 28:
            raise SpecError("a day from the month's end is 2 to 28 (the last is MonthDays last)")


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
        from workflows.schedule.holidays import is_festival

        if not is_festival(self.name):
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
    | DayFromEnd
    | Workdays
    | MonthWorkday
    | WeekStep
    | Festival
    | Either
)


# ---- JSON ------------------------------------------------------------------------------------


def list_of(data: Mapping[str, Any], key: str, default: Sequence[Any] = ()) -> list[Any]:
    value = data.get(key, list(default))
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(f"{key} must be a list")
    return value


def numbers(values: list[Any], key: str) -> tuple[int, ...]:
    if any(not isinstance(value, int) or isinstance(value, bool) for value in values):
        raise SpecError(f"{key} must hold whole numbers")
    return tuple(values)


def words(values: list[Any], key: str) -> tuple[str, ...]:
    if any(not isinstance(value, str) for value in values):
        raise SpecError(f"{key} must hold strings")
    return tuple(value.lower() for value in values)


def days_json(days: Days) -> dict[str, Any]:
    if isinstance(days, Daily):
        return {"type": "daily"}
    if isinstance(days, Weekly):
        return {"type": "weekly", "weekdays": list(days.weekdays)}
    if isinstance(days, MonthDays):
        return {"type": "monthly", "days": list(days.days), "last": days.last}
    if isinstance(days, NthWeekdays):
        return {"type": "nth", "positions": [[nth, day] for nth, day in days.positions]}
    if isinstance(days, DayFromEnd):
        return {"type": "from_end", "nth": days.nth}
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
        "month_days": days_json(days.month_days),
        "weekly": days_json(days.weekly),
    }


def days_from(data: object) -> Days:
    if not isinstance(data, Mapping):
        raise SpecError("days must be an object with a type")
    kind = data.get("type")
    if kind == "daily":
        return Daily()
    if kind == "weekly":
        return Weekly(words(list_of(data, "weekdays"), "weekdays"))
    if kind == "monthly":
        last = data.get("last", False)
        if not isinstance(last, bool):
            raise SpecError("last must be true or false")
        return MonthDays(numbers(list_of(data, "days"), "days"), last)
    if kind == "nth":
        positions: list[tuple[int, str]] = []
        for item in list_of(data, "positions"):
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
    if kind == "from_end":
        return DayFromEnd(_whole(data, "nth"))
    if kind == "workdays":
        return Workdays(_word(data, "calendar"))
    if kind == "month_workday":
        return MonthWorkday(_whole(data, "nth"), _whole(data, "near"), _word(data, "calendar"))
    if kind == "week_step":
        try:
            start = date.fromisoformat(_word(data, "start"))
        except ValueError:
            raise SpecError("start must be an ISO date") from None
        weekdays = words(list_of(data, "weekdays"), "weekdays")
        return WeekStep(weekdays, _whole(data, "weeks"), start)
    if kind == "festival":
        return Festival(_word(data, "name"))
    if kind == "either":
        month_days, weekly = days_from(data.get("month_days")), days_from(data.get("weekly"))
        if not isinstance(month_days, MonthDays) or not isinstance(weekly, Weekly):
            raise SpecError("either needs monthly month_days and weekly weekdays")
        return Either(month_days, weekly)
    raise SpecError(f"unknown days type {kind!r}")
