"""Rotations: the YAML `oncall:` section and who is on call at any instant.

A schedule (`Rota`) has ordered layers; a layer rotates through its `users`, one shift each, and
hands over at `handoff` (local time in its zone). Shifts are `daily`, `weekly`, `monthly`, `<n>d`
(calendar days) or `<n>h` (hours of elapsed time). A layer with `hours: "09:00-21:00"` covers
only that part of each day (follow-the-sun: give each region a layer in its own zone); one with
`days: offdays` only weekends and the schedule's `holidays` less its make-up `workdays` (China's
calendar: a holiday layer). Later
layers win over earlier ones where they cover; an override (`Cover`: the configuration's or one
made with `/oncall override`) wins over every layer, the newest first.

Calendar shifts are counted in local days, so a hand-off stays at 09:00 local across a DST change
(the shift is then 23 or 25 hours long); a monthly hand-off on day 31 happens on the last day of
shorter months.

    rota = Rota(layers=(Layer(users=("ou_alice", "ou_bob"), shift="daily"),))
    watch = on_call(rota, [("ou_alice", "ou_bob")], [], at, ZoneInfo("Asia/Shanghai"))
    watch.people, watch.until                         # ("ou_bob",), the next 09:00
    when, after = next_handoff(rota, members, [], at, zone)
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

_ID = r"[A-Za-z0-9_-]{1,64}"
_MEMBER = re.compile(rf"(ou_{_ID}|dept:{_ID}|chat:oc_{_ID})")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_SHIFT = re.compile(r"(daily|weekly|monthly|(\d{1,3})([dh]))")
Unit = Literal["days", "months", "hours"]
MAX_STEPS = 64  # edges looked at for the next hand-off (layers × windows × covers)


def _member(value: str) -> str:
    if not _MEMBER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a person or group: use an open_id (ou_…), dept:<id> "
            "or chat:<chat_id>"
        )
    return value


Member = Annotated[str, AfterValidator(_member)]


def clock(value: str) -> time:
    """`09:00` as a time; ValueError otherwise."""
    match = _CLOCK.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a time of day (HH:MM)")
    return time(int(match.group(1)), int(match.group(2)))


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name)") from None


class Layer(BaseModel):
    """One rotation of people (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: tuple[Member, ...] = Field(min_length=1, max_length=500)
    shift: str = "weekly"
    handoff: str = "09:00"
    zone: str | None = None  # None: the schedule's, else LARKOPS_TIMEZONE
    start: date = date(2024, 1, 1)  # the first user's first shift starts here at `handoff`
    hours: str | None = None  # "09:00-21:00": the part of each day this layer covers
    # which days it covers: all, work days or days off (weekends and the schedule's holidays,
    # less its make-up work days: China's calendar, where a holiday layer may differ)
    days: Literal["all", "workdays", "offdays"] = "all"

    @field_validator("shift")
    @classmethod
    def _shift(cls, value: str) -> str:
        if not _SHIFT.fullmatch(value) or value in ("0d", "0h"):
            raise ValueError(f"{value!r}: use daily, weekly, monthly, <n>d or <n>h")
        return value

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        clock(value)
        return value

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_named(value)
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parts = value.split("-")
            if len(parts) != 2:
                raise ValueError(f"{value!r}: write the covered hours as HH:MM-HH:MM")
            clock(parts[0])
            clock(parts[1])
        return value

    def length(self) -> tuple[Unit, int]:
        """The shift as (unit, count): daily is (days, 1), weekly (days, 7), `12h` (hours, 12)."""
        fixed: dict[str, tuple[Unit, int]] = {
            "daily": ("days", 1),
            "weekly": ("days", 7),
            "monthly": ("months", 1),
        }
        if self.shift in fixed:
            return fixed[self.shift]
        count, unit = int(self.shift[:-1]), self.shift[-1]
        return ("hours", count) if unit == "h" else ("days", count)

    def window(self) -> tuple[time, time] | None:
        if self.hours is None:
            return None
        first, last = self.hours.split("-")
        return clock(first), clock(last)


class Cover(BaseModel):
    """Someone on call instead of the layers from `start` until `end` (an override)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: Member
    start: datetime
    end: datetime


class Rota(BaseModel):
    """One named on-call schedule (YAML `oncall.schedules.<name>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: tuple[Layer, ...] = Field(min_length=1, max_length=20)
    overrides: tuple[Cover, ...] = ()
    zone: str | None = None
    chat: str | None = None  # where hand-off messages go (else LARKOPS_ALERT_CHAT_ID)
    holidays: tuple[date, ...] = ()  # days off besides weekends (国务院 each year's holidays)
    workdays: tuple[date, ...] = ()  # weekend days that are work days (调休)

    def day_off(self, day: date) -> bool:
        """Whether `day` is a day off in this schedule's calendar."""
        if day in self.workdays:
            return False
        return day.weekday() >= 5 or day in self.holidays

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_named(value)
        return value


_PLAIN = Rota(layers=(Layer(users=("ou_nobody",)),))  # a calendar without holidays


class OncallConfig(BaseModel):
    """The YAML `oncall:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedules: dict[str, Rota] = Field(default_factory=dict)
    handoff_messages: bool = True  # a message to the schedule's chat at each shift change


@dataclass(frozen=True)
class Shift:
    """The `index`th shift of a layer (its person is `users[index % len(users)]`)."""

    index: int
    starts: datetime
    ends: datetime


@dataclass(frozen=True)
class Watch:
    """Who is on call: `people` (empty: nobody), from which layer (None: an override), and
    the bounds of that shift or override."""

    people: tuple[str, ...]
    layer: int | None
    since: datetime | None
    until: datetime | None


@dataclass(frozen=True)
class Standing:
    """An override as the arithmetic needs it (from the configuration or the database)."""

    user: str
    starts: datetime
    ends: datetime


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The instant `moment` on local `day` (a time a DST gap skips counts as after it)."""
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def _month_day(months: int, day: int) -> date:
    year, month = divmod(months, 12)
    return date(year, month + 1, min(day, calendar.monthrange(year, month + 1)[1]))


def shift_at(layer: Layer, zone: ZoneInfo, at: datetime) -> Shift:
    """The shift of `layer` that contains `at` (starts <= at < ends)."""
    unit, count = layer.length()
    moment = clock(layer.handoff)
    if unit == "hours":
        anchor, step = _at(layer.start, moment, zone), timedelta(hours=count)
        index = (at - anchor) // step
        return Shift(index, anchor + index * step, anchor + (index + 1) * step)
    local = at.astimezone(zone).date()
    if unit == "days":
        if at < _at(local, moment, zone):
            local -= timedelta(days=1)
        index = (local - layer.start).days // count
        first = layer.start + timedelta(days=index * count)
        return Shift(
            index, _at(first, moment, zone), _at(first + timedelta(days=count), moment, zone)
        )
    months = local.year * 12 + local.month - 1
    if at < _at(_month_day(months, layer.start.day), moment, zone):
        months -= 1
    base = layer.start.year * 12 + layer.start.month - 1
    index = (months - base) // count
    opening = base + index * count
    return Shift(
        index,
        _at(_month_day(opening, layer.start.day), moment, zone),
        _at(_month_day(opening + count, layer.start.day), moment, zone),
    )


def covers(layer: Layer, zone: ZoneInfo, at: datetime, rota: Rota | None = None) -> bool:
    """Whether `at` is on a day the layer covers (its local calendar day: `days`, with the
    schedule's holidays) and within its daily hours (always, without `hours`)."""
    if layer.days != "all":
        off = (rota or _PLAIN).day_off(at.astimezone(zone).date())
        if off != (layer.days == "offdays"):
            return False
    window = layer.window()
    if window is None or window[0] == window[1]:
        return True
    now, (first, last) = at.astimezone(zone).time(), window
    return first <= now < last if first < last else now >= first or now < last


def _zone_of(layer: Layer, rota: Rota, default: ZoneInfo) -> ZoneInfo:
    name = layer.zone or rota.zone
    return ZoneInfo(name) if name else default


def standing(rota: Rota, zone: ZoneInfo) -> list[Standing]:
    """The configuration's overrides (a time without a zone is in the schedule's zone)."""
    here = ZoneInfo(rota.zone) if rota.zone else zone
    return [
        Standing(
            c.user,
            (c.start if c.start.tzinfo else c.start.replace(tzinfo=here)).astimezone(UTC),
            (c.end if c.end.tzinfo else c.end.replace(tzinfo=here)).astimezone(UTC),
        )
        for c in rota.overrides
    ]


def on_call(
    rota: Rota,
    members: Sequence[tuple[str, ...]],
    overrides: Sequence[Standing],
    at: datetime,
    zone: ZoneInfo,
) -> Watch:
    """Who is on call at `at`. `members[i]`: layer i's people in rotation order (its `users`
    with groups expanded, `expand`); `overrides`: oldest first (the newest wins)."""
    for cover in reversed(overrides):
        if cover.starts <= at < cover.ends:
            return Watch((cover.user,), None, cover.starts, cover.ends)
    for number in reversed(range(len(rota.layers))):
        layer = rota.layers[number]
        here = _zone_of(layer, rota, zone)
        people = members[number] if number < len(members) else ()
        if not people or not covers(layer, here, at, rota):
            continue
        shift = shift_at(layer, here, at)
        return Watch((people[shift.index % len(people)],), number, shift.starts, shift.ends)
    return Watch((), None, None, None)


def _edges(
    rota: Rota, overrides: Sequence[Standing], at: datetime, zone: ZoneInfo
) -> list[datetime]:
    """Every instant after `at` at which the answer of `on_call` may change next."""
    found = [moment for c in overrides for moment in (c.starts, c.ends) if moment > at]
    for layer in rota.layers:
        here = _zone_of(layer, rota, zone)
        found.append(shift_at(layer, here, at).ends)
        local = at.astimezone(here).date()
        if layer.days != "all":  # the day changes at local midnight
            found += [_at(local + timedelta(days=n), time(0, 0), here) for n in (1, 2)]
        window = layer.window()
        if window is None:
            continue
        for offset in (-1, 0, 1, 2):
            day = local + timedelta(days=offset)
            found += [m for m in (_at(day, window[0], here), _at(day, window[1], here)) if m > at]
    return found


def next_handoff(
    rota: Rota,
    members: Sequence[tuple[str, ...]],
    overrides: Sequence[Standing],
    at: datetime,
    zone: ZoneInfo,
) -> tuple[datetime, Watch] | None:
    """When the people on call next change after `at`, and who takes over (None when nobody
    changes within `MAX_STEPS` edges: a one-person rotation)."""
    now = on_call(rota, members, overrides, at, zone).people
    moment = at
    for _ in range(MAX_STEPS):
        edges = _edges(rota, overrides, moment, zone)
        if not edges:
            return None
        moment = min(edges)
        after = on_call(rota, members, overrides, moment, zone)
        if after.people != now:
            return moment, after
    return None


def expand(users: Sequence[str], groups: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    """A layer's people in rotation order: open_ids as listed, a `chat:`/`dept:` entry as its
    members (sorted; `groups` holds what the lookups found), each person once."""
    people: list[str] = []
    for user in users:
        found = sorted(groups.get(user, frozenset())) if ":" in user else [user]
        people += [p for p in found if p not in people]
    return tuple(people)
