"""From the pieces of one time expression to a spec, or to the reason a question is needed.

Decisions (each one a corpus case):

- Anything `Unclear` in the expression (4/5, 每月初, "every other Monday", CST…) → a question.
- A delay (30分钟后, "in 2 hours") is a one-shot at now + the delay, in elapsed time (across a
  DST change too); it takes no other time.
- A step (每30分钟, "every 2 hours") may have a daily window and weekdays; day steps (每隔一天,
  "every 2 days") need one time of day and start at its next occurrence.
- Days (每天, 每周五, 每月1号…) need at least one time of day; 早上/"morning" alone is vague.
- A date (明天, 下周一, 12月25日, "next Tuesday") needs exactly one time of day; the instant must
  exist (not in a DST gap; in a repeated hour the first one is taken) and be in the future.
- A time alone (9点检查磁盘) is today; if that has passed we ask (tomorrow? every day?) —
  except 零点/midnight, which is always the coming one.
- 每月29–31号 gets a question (not every month has them: the last day, or skip those months?).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from workflows.schedule import dates
from workflows.schedule.clock import EXACT_PERIODS, Problem, Resolved, resolve
from workflows.schedule.pieces import (
    After,
    Clock,
    DateOf,
    DayShift,
    Period,
    Piece,
    Recur,
    Span,
    Step,
    Unclear,
    WeekdayDate,
)
from workflows.schedule.spec import (
    MINUTES_PER_DAY,
    WEEKDAYS,
    Calendar,
    Daily,
    Days,
    Every,
    MonthDays,
    Once,
    Spec,
    TimeOfDay,
    Weekly,
    Window,
)


@dataclass(frozen=True)
class Clarify:
    """A question is needed: `topic` names it (see `wording.question`), `reason` is vague |
    ambiguous | unsupported | impossible | passed | conflict | no_time | unreadable, `values`
    fill the question in."""

    topic: str
    reason: str
    values: dict[str, str] = field(default_factory=dict)


Reading = Spec | Clarify


def _nearest_period(clock: Clock, periods: Sequence[Period]) -> str | None:
    if clock.period is not None or not periods:
        return clock.period
    return min(periods, key=lambda p: abs(p.start - clock.start)).name


def _times(clocks: Sequence[Clock], periods: Sequence[Period]) -> list[Resolved] | Clarify:
    found: list[Resolved] = []
    for clock in clocks:
        result = resolve(clock, _nearest_period(clock, periods))
        if isinstance(result, Problem):
            return Clarify(result.topic, result.reason, {"hour": str(clock.hour)})
        found.append(result)
    if not clocks and periods:
        exact = [p for p in periods if p.name in EXACT_PERIODS]
        if not exact:
            return Clarify("vague_period", "vague", {"period": periods[0].name})
        hour, minute, next_day = EXACT_PERIODS[exact[0].name]
        found.append(Resolved(hour, minute, next_day))
    return found


def _window(span: Span, periods: Sequence[Period]) -> Window | Clarify:
    ends: list[Resolved] = []
    for clock in (span.first, span.last):
        result = resolve(clock, _nearest_period(clock, periods), window=True)
        if isinstance(result, Problem):
            return Clarify(result.topic, result.reason, {"hour": str(clock.hour)})
        ends.append(result)
    first, last = ends
    start = TimeOfDay(first.hour, first.minute)
    end = TimeOfDay(last.hour, last.minute)
    plain = span.last.meridiem is None and span.last.period is None and span.last.hour <= 12
    if plain and end <= start and end.hour + 12 > start.hour and end.hour < 12:
        end = TimeOfDay(end.hour + 12, end.minute)  # "from 9 to 5", 9点到6点
    if start == end:
        return Clarify("conflict", "conflict")
    return Window(start, end)


def _shift(days: Days) -> Days | None:
    """The days after `days` (for times past the midnight ending them), when expressible."""
    if isinstance(days, Daily):
        return days
    if isinstance(days, Weekly):
        names = {WEEKDAYS[(WEEKDAYS.index(d) + 1) % 7] for d in days.weekdays}
        return Weekly(tuple(sorted(names, key=WEEKDAYS.index)))
    if isinstance(days, MonthDays) and not days.last and all(d < 28 for d in days.days):
        return MonthDays(tuple(d + 1 for d in days.days))
    return None


def _calendar(recur: Recur, times: Sequence[Resolved], zone: str) -> Reading:
    days: Days = recur.days
    if isinstance(days, MonthDays) and any(day >= 29 for day in days.days):
        return Clarify("short_month", "ambiguous", {"day": str(max(days.days))})
    if any(t.next_day for t in times):
        if not all(t.next_day for t in times):
            return Clarify("unsupported", "unsupported")
        shifted = _shift(days)
        if shifted is None or recur.months:
            return Clarify("unsupported", "unsupported")
        days = shifted
    clock_times = tuple(sorted({TimeOfDay(t.hour, t.minute) for t in times}))
    return Calendar(clock_times, days, zone, recur.months)


def _aligned(minutes: int) -> bool:
    """Steps the clock can carry (`*/15`, `0 */2`) with no anchor."""
    if minutes < 60:
        return 60 % minutes == 0
    return minutes % 60 == 0 and MINUTES_PER_DAY % minutes == 0


def _step(
    step: Step,
    recurs: Sequence[Recur],
    spans: Sequence[Span],
    times: Sequence[Resolved],
    periods: Sequence[Period],
    now: datetime,
) -> Reading:
    zone = str(now.tzinfo)
    weekdays: tuple[str, ...] = ()
    if len(recurs) > 1 or len(spans) > 1:
        return Clarify("conflict", "conflict")
    if recurs:
        days = recurs[0].days
        if isinstance(days, Weekly):
            weekdays = days.weekdays
        elif not isinstance(days, Daily):
            return Clarify("unsupported", "unsupported")
    if step.minutes >= MINUTES_PER_DAY and step.minutes % MINUTES_PER_DAY == 0:
        if spans or weekdays or len(times) != 1:
            topic = "what_time" if not times else "unsupported"
            return Clarify(topic, "no_time" if not times else "unsupported")
        first = _next_wall(now, times[0])
        if isinstance(first, Clarify):
            return first
        return Every(step.minutes, zone, anchor=first)
    if times:
        return Clarify("unsupported", "unsupported")
    window = None
    if spans:
        found = _window(spans[0], periods)
        if isinstance(found, Clarify):
            return found
        window = found
        if weekdays and window.end <= window.start:
            return Clarify("unsupported", "unsupported")
    anchor = None
    if window is None and not weekdays and not _aligned(step.minutes):
        start = now.replace(second=0, microsecond=0)
        anchor = (start.astimezone(UTC) + timedelta(minutes=step.minutes)).astimezone(now.tzinfo)
    return Every(step.minutes, zone, window, weekdays, anchor)


def _next_wall(now: datetime, time: Resolved) -> datetime | Clarify:
    zone = ZoneInfo(str(now.tzinfo))
    for offset in range(3):
        day = now.date() + timedelta(days=offset + (1 if time.next_day else 0))
        moment = dates.wall_time(day, time.hour, time.minute, zone)
        if moment is not None and moment > now:
            return moment
    return Clarify("dst_gap", "impossible")


def _date_of(piece: Piece, now: datetime) -> date | Clarify:
    today = now.date()
    if isinstance(piece, DayShift):
        return today + timedelta(days=piece.days)
    if isinstance(piece, WeekdayDate):
        return dates.weekday_date(today, piece.weekday, piece.week)
    assert isinstance(piece, DateOf)
    if piece.month is None:
        found = dates.month_day_date(today, piece.day, piece.next_month)
    else:
        found = dates.calendar_date(today, piece.month, piece.day, piece.year)
    if found is None:
        month = "" if piece.month is None else str(piece.month)
        return Clarify("bad_date", "impossible", {"month": month, "day": str(piece.day)})
    return found


def _once(day: date, time: Resolved, now: datetime, *, today_only: bool) -> Reading:
    zone = ZoneInfo(str(now.tzinfo))
    if time.next_day:
        day += timedelta(days=1)
    moment = dates.wall_time(day, time.hour, time.minute, zone)
    clock = f"{time.hour:02d}:{time.minute:02d}"
    if moment is None:
        return Clarify("dst_gap", "impossible", {"time": f"{day.isoformat()} {clock}"})
    if moment <= now:
        if today_only and (time.hour, time.minute) == (0, 0):
            return _once(day + timedelta(days=1), time, now, today_only=False)
        topic = "passed_today" if today_only else "passed_date"
        topic += "_pm" if today_only and time.plain and 1 <= time.hour <= 6 else ""
        values = {"time": clock, "date": day.isoformat(), "hour": str(time.hour)}
        return Clarify(topic, "passed", values)
    return Once(moment, str(zone))


def read(pieces: Sequence[Piece], now: datetime) -> Reading:
    """The spec the pieces of one time expression mean at `now` (aware, in the schedule's
    zone), or the question to ask."""
    for piece in pieces:
        if isinstance(piece, Unclear):
            return Clarify(piece.topic, piece.reason, {"text": piece.detail})
    recurs = [p for p in pieces if isinstance(p, Recur)]
    steps = [p for p in pieces if isinstance(p, Step)]
    spans = [p for p in pieces if isinstance(p, Span)]
    clocks = [p for p in pieces if isinstance(p, Clock)]
    periods = [p for p in pieces if isinstance(p, Period)]
    afters = [p for p in pieces if isinstance(p, After)]
    days = [p for p in pieces if isinstance(p, DayShift | WeekdayDate | DateOf)]
    zone = str(now.tzinfo)
    if len(recurs) > 1 and len([r for r in recurs if not isinstance(r.days, Daily)]) == 1:
        recurs = [r for r in recurs if not isinstance(r.days, Daily)]  # 周一至周五每天18点
    if afters:
        if len(afters) > 1 or recurs or steps or spans or clocks or days:
            return Clarify("conflict", "conflict")
        moment = (now.astimezone(UTC) + timedelta(minutes=afters[0].minutes)).astimezone(now.tzinfo)
        return Once(moment.replace(microsecond=0), zone)
    times = _times(clocks, [] if steps and spans else periods)
    if isinstance(times, Clarify):
        return times
    if steps:
        if len(steps) > 1 or days:
            return Clarify("conflict", "conflict")
        return _step(steps[0], recurs, spans, times, periods, now)
    if spans:
        return Clarify("how_often", "vague")
    if not times:
        for piece in days:  # an impossible date is the first thing to say
            found = _date_of(piece, now)
            if isinstance(found, Clarify):
                return found
        return Clarify("what_time", "no_time")
    if recurs:
        if len(recurs) > 1 or days:
            return Clarify("conflict", "conflict")
        return _calendar(recurs[0], times, zone)
    if len(times) > 1:
        return Clarify("one_time", "ambiguous")
    if days:
        if len({type(p) for p in days}) > 1 or len(days) > 1:
            shifts = [p for p in days if isinstance(p, DayShift)]
            if len(days) != 2 or len(shifts) != 1 or shifts[0].days != 0:
                return Clarify("conflict", "conflict")
            days = [p for p in days if not isinstance(p, DayShift)]
        day = _date_of(days[0], now)
        if isinstance(day, Clarify):
            return day
        once = _once(day, times[0], now, today_only=False)
        coming = isinstance(days[0], WeekdayDate) and days[0].week is None
        if coming and isinstance(once, Clarify) and once.reason == "passed":
            return _once(day + timedelta(days=7), times[0], now, today_only=False)
        return once
    return _once(now.date(), times[0], now, today_only=True)
