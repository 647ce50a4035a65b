"""From the pieces of one time expression to a spec, or to the reason a question is needed.

Decisions (each one a corpus case):

- Anything `Unclear` in the expression (4/5, 每月初, CST…) → a question.
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
- A repetition written apart from its days (每两周 + 周三, "every year" + "July 4th"), months
  named (3月的每周二), a day of the month beside a weekday (either day): see `cycles`.
- Minutes past every hour ("every hour at quarter past", 每小时15分) are fixed times of day.
- A range with no step (明天下午3点至8点) asks: once at its start, or every hour? (options)
- One-off dates and their questions (a bare 1–6点, a weekday and a date that disagree, a month
  and day that passed lately this year): see `moments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from workflows.schedule.clarify import Clarify, Reading
from workflows.schedule.clock import EXACT_PERIODS, Problem, Resolved, resolve
from workflows.schedule.compiler import next_runs
from workflows.schedule.cycles import (
    cycle_recur,
    either,
    on_calendar,
    with_months,
    without_holidays,
    without_weekends,
)
from workflows.schedule.moments import date_of, instant_on, next_wall, one_off
from workflows.schedule.pieces import (
    After,
    Clock,
    Cycle,
    DateOf,
    DayShift,
    Feast,
    Minute,
    Months,
    Period,
    Piece,
    Recur,
    SkipHolidays,
    SkipWeekends,
    Span,
    Step,
    Unclear,
    Until,
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
    WeekStep,
    Window,
    Workdays,
)
from workflows.schedule.until import bounded


def _nearest_period(clock: Clock, periods: Sequence[Period]) -> str | None:
    if clock.period is not None or not periods:
        return clock.period
    return min(periods, key=lambda p: abs(p.start - clock.start)).name


def _about(clock: Clock, period: str | None) -> dict[str, str]:
    """What a question about `clock` read in `period` says: its hour and part of the day."""
    return {"hour": str(clock.hour), "period": period or ""}


def _times(clocks: Sequence[Clock], periods: Sequence[Period]) -> list[Resolved] | Clarify:
    found: list[Resolved] = []
    for clock in clocks:
        period = _nearest_period(clock, periods)
        result = resolve(clock, period)
        if isinstance(result, Problem):
            return Clarify(result.topic, result.reason, _about(clock, period))
        found.append(result)
    if not clocks and periods:
        exact = [p for p in periods if p.name in EXACT_PERIODS]
        if not exact:
            return Clarify("vague_period", "vague", {"period": periods[0].name})
        hour, minute, next_day = EXACT_PERIODS[exact[0].name]
        found.append(Resolved(hour, minute, next_day))
    elif clocks and all(c.meridiem or c.period for c in clocks):
        for written in periods:  # "at 8am, noon and 6pm": noon is a time of its own
            if written.name in EXACT_PERIODS:
                hour, minute, next_day = EXACT_PERIODS[written.name]
                found.append(Resolved(hour, minute, next_day))
    return found


def _window(span: Span, periods: Sequence[Period]) -> Window | Clarify:
    ends: list[Resolved] = []
    for clock in (span.first, span.last):
        period = _nearest_period(clock, periods)
        result = resolve(clock, period, window=True)
        if isinstance(result, Problem):
            return Clarify(result.topic, result.reason, _about(clock, period))
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


def _short(days: Sequence[int], months: Sequence[int]) -> bool:
    """Some month of `months` (none: every month) lacks one of `days` (February: 29 in leap
    years only, so it counts as lacking it)."""
    longest = {m: (29 if m == 2 else 30 if m in (4, 6, 9, 11) else 31) for m in range(1, 13)}
    return any(day > longest[m] - (m == 2) for day in days for m in (months or range(1, 13)))


def _calendar(recur: Recur, times: Sequence[Resolved], zone: str) -> Reading:
    days: Days = recur.days
    if isinstance(days, MonthDays) and _short(days.days, recur.months):
        day = str(max(days.days))
        if recur.months == (2,):  # 每年2月29号: a leap day, not a short month every month
            return Clarify("leap_day", "ambiguous", {"day": day})
        return Clarify("short_month", "ambiguous", {"day": day})
    if any(t.next_day for t in times):
        if not all(t.next_day for t in times):
            return Clarify("unsupported", "unsupported")
        shifted = _shift(days)
        if shifted is None or recur.months:  # on 1 January at midnight: its start or its end?
            start = Calendar((TimeOfDay(0),), days, zone, recur.months)
            return Clarify("midnight_of_day", "ambiguous", options=(start,))
        days = shifted
    clock_times = tuple(sorted({TimeOfDay(t.hour, t.minute) for t in times}))
    return Calendar(clock_times, days, zone, recur.months)


def _first_week(reading: Reading, now: datetime) -> Reading:
    """Every N weeks counts from the week of the first fire."""
    if not isinstance(reading, Calendar) or not isinstance(reading.days, WeekStep):
        return reading
    weekly = Calendar(reading.times, Weekly(reading.days.weekdays), reading.timezone)
    first = next_runs(weekly, now, 1)
    if not first:
        return reading
    monday = first[0].date() - timedelta(days=first[0].weekday())
    step = WeekStep(reading.days.weekdays, reading.days.weeks, monday)
    return Calendar(reading.times, step, reading.timezone, reading.months)


def _small_hour_every(recur: Recur, time: Resolved, now: datetime) -> Clarify:
    """每天3点开会: the small hours or the afternoon, every time? Both, as options."""
    options: list[Spec] = []
    for hour in (time.hour, time.hour + 12):
        found = _first_week(_calendar(recur, [Resolved(hour, time.minute)], str(now.tzinfo)), now)
        if isinstance(found, Calendar):
            options.append(found)
    return Clarify("am_or_pm", "ambiguous", {"hour": str(time.hour)}, tuple(options))


def _starting_on(recur: Recur, times: Sequence[Resolved], day: Piece, now: datetime) -> Reading:
    """A repetition from a day on: 从明天开始每天9点, "starting next Monday, every weekday"."""
    first = date_of(day, now)
    if isinstance(first, Clarify):
        return first
    reading = _calendar(recur, times, str(now.tzinfo))
    if not isinstance(reading, Calendar):
        return reading
    start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    reading = _first_week(reading, max(now, start))
    assert isinstance(reading, Calendar)
    return replace(reading, start=first) if first > now.date() else reading


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
    calendar = ""
    if recurs:
        days = recurs[0].days
        if isinstance(days, Weekly):
            weekdays = days.weekdays
        elif isinstance(days, Workdays):
            calendar = days.calendar
        elif not isinstance(days, Daily) or recurs[0].months:
            return Clarify("unsupported", "unsupported")
    if step.minutes >= MINUTES_PER_DAY and step.minutes % MINUTES_PER_DAY == 0:
        if spans or weekdays or calendar or len(times) != 1:
            topic = "what_time" if not times else "unsupported"
            return Clarify(topic, "no_time" if not times else "unsupported")
        first = next_wall(now, times[0])
        if isinstance(first, Clarify):
            return first
        return Every(step.minutes, zone, anchor=first)
    if times:
        return _starting(step, times, recurs, spans, now)
    window = None
    if spans:
        found = _window(spans[0], periods)
        if isinstance(found, Clarify):
            return found
        window = found
        if (weekdays or calendar) and window.end <= window.start:
            return Clarify("unsupported", "unsupported")
    anchor = None
    if calendar and window is None and not _aligned(step.minutes):
        return Clarify("unsupported", "unsupported")
    if window is None and not weekdays and not calendar and not _aligned(step.minutes):
        start = now.replace(second=0, microsecond=0)
        anchor = (start.astimezone(UTC) + timedelta(minutes=step.minutes)).astimezone(now.tzinfo)
    return Every(step.minutes, zone, window, weekdays, anchor, calendar)


def _starting(
    step: Step,
    times: Sequence[Resolved],
    recurs: Sequence[Recur],
    spans: Sequence[Span],
    now: datetime,
) -> Reading:
    """A step from a time of day ("every two hours starting at 8am", 从8点开始每2小时): the
    times it reaches in a day when the step divides one, else every step from the next 8:00."""
    if len(times) != 1 or spans or times[0].next_day:
        return Clarify("unsupported", "unsupported")
    start = times[0].hour * 60 + times[0].minute
    if MINUTES_PER_DAY % step.minutes == 0:
        found = sorted({(start + n * step.minutes) % MINUTES_PER_DAY for n in range(1440)})
        clock = [Resolved(m // 60, m % 60) for m in found]
        recur = recurs[0] if recurs else Recur(step.start, step.end, Daily())
        return _calendar(recur, clock, str(now.tzinfo))
    if recurs:
        return Clarify("unsupported", "unsupported")
    first = next_wall(now, times[0])
    if isinstance(first, Clarify):
        return first
    return Every(step.minutes, str(now.tzinfo), anchor=first)


def _hourly(
    step: Step, minute: Minute, recurs: Sequence[Recur], spans: Sequence[Span], zone: str
) -> Reading:
    """Every N hours at a minute past ("every hour at quarter past", 每小时15分): fixed times."""
    if step.minutes % 60 or MINUTES_PER_DAY % step.minutes or len(recurs) > 1 or len(spans) > 1:
        return Clarify("unsupported", "unsupported")
    start, end = 0, MINUTES_PER_DAY - 1
    if spans:
        window = _window(spans[0], [])
        if isinstance(window, Clarify):
            return window
        start, end = window.start.minutes, window.end.minutes
        if end <= start:
            return Clarify("unsupported", "unsupported")
    first = start - start % 60 + minute.minute
    first += 60 if first < start else 0
    times = tuple(
        TimeOfDay(m // 60, m % 60) for m in range(first, end + 1, step.minutes) if m < 1440
    )
    if not times:
        return Clarify("conflict", "conflict")
    recur = recurs[0] if recurs else Recur(step.start, step.end, Daily())
    if isinstance(recur.days, Workdays):
        return Calendar(times, recur.days, zone, recur.months)
    return _calendar(recur, [Resolved(t.hour, t.minute) for t in times], zone)


def _span_question(
    span: Span, periods: Sequence[Period], now: datetime, day: date | None, recur: Recur | None
) -> Clarify:
    """A range with no step: once at its start, or every hour in it? For one day (明天下午3点至8点)
    or on repeating days (每周三下午两点到四点: each Wednesday at 14:00, or hourly then?)."""
    window = _window(span, periods)
    if isinstance(window, Clarify):
        return window
    start = Resolved(window.start.hour, window.start.minute)
    options: tuple[Spec, ...] = ()
    weekdays: tuple[str, ...] = ()
    if recur is not None:
        at_start = _calendar(recur, [start], str(now.tzinfo))
        options = (at_start,) if isinstance(at_start, Calendar) else ()
        weekdays = recur.days.weekdays if isinstance(recur.days, Weekly) else ()
        hourly_ok = isinstance(recur.days, Daily | Weekly) and not recur.months
    else:
        once = instant_on(day or now.date(), start, now, today_only=False)
        options = (once,) if isinstance(once, Once) else ()
        hourly_ok = True
    if hourly_ok and window.start.minute == 0 and window.start < window.end:
        options += (Every(60, str(now.tzinfo), window, weekdays),)
    values = {"start": str(window.start), "end": str(window.end)}
    return Clarify("once_or_hourly", "vague", values, options)


def _apart(recurs: Sequence[Recur], clocks: Sequence[Clock]) -> bool:
    """A time of day written between two repetitions: each has its own (not 周一至周五每天18点)."""
    first, last = min(r.start for r in recurs), max(r.start for r in recurs)
    return any(first < clock.start < last for clock in clocks)


def _listed_after(day: Piece, recur: Recur) -> bool:
    """A plain weekday written after a repetition (每周一9点和周五18点) is one more day of it, not
    the day it starts (从周五开始每周一9点, 下周一开始每天9点)."""
    return isinstance(day, WeekdayDate) and day.week is None and day.start > recur.start


def _another_date(recur: Recur, day: Piece) -> Recur | Clarify | None:
    """每年6月30日和12月31日, "every year on March 1 and September 1": a date written after a
    yearly date is one more date of it, never the day it starts. Same day of the month: one
    rule over both months; different days: two jobs (asked). None: not such a date."""
    if not (recur.months and isinstance(recur.days, MonthDays) and isinstance(day, DateOf)):
        return None
    if day.month is None or day.year is not None or day.years_ahead is not None:
        return None
    if day.start < recur.start:
        return None
    if recur.days.days != (day.day,) or recur.days.last or day.last:
        return Clarify("two_dates", "unsupported")
    return Recur(recur.start, day.end, recur.days, tuple(sorted({*recur.months, day.month})))


def _month_day(piece: Piece) -> bool:
    """A day of any month (每周一和1号: either day), not 下个月1号 (a start: 从下个月1号开始)."""
    return isinstance(piece, DateOf) and piece.month is None and not piece.next_month


def read(
    pieces: Sequence[Piece], now: datetime, workdays: str = "mon-fri", *, daytime: bool = False
) -> Reading:
    """The spec the pieces of one time expression mean at `now` (aware, in the schedule's
    zone), or the question to ask. `workdays` is the calendar 工作日 / "workday" mean;
    `daytime`: the task is something people do by day (开会…), so a repeating bare 1–6点 asks.
    An end (到12月31日为止, 持续一周) bounds the repetition the other pieces mean."""
    ends = [p for p in pieces if isinstance(p, Until)]
    reading = _read([p for p in pieces if not isinstance(p, Until)], now, workdays, daytime)
    if not ends or isinstance(reading, Clarify):
        return reading
    if len(ends) > 1 or isinstance(reading, Once):
        return Clarify("conflict", "conflict")
    return bounded(reading, ends[0], now)


def _read(pieces: Sequence[Piece], now: datetime, workdays: str, daytime: bool) -> Reading:
    for piece in pieces:
        if isinstance(piece, Unclear):
            return Clarify(piece.topic, piece.reason, {"text": piece.detail})
    recurs = [p for p in pieces if isinstance(p, Recur)]
    steps = [p for p in pieces if isinstance(p, Step)]
    spans = [p for p in pieces if isinstance(p, Span)]
    clocks = [p for p in pieces if isinstance(p, Clock)]
    periods = [p for p in pieces if isinstance(p, Period)]
    afters = [p for p in pieces if isinstance(p, After)]
    cycles = [p for p in pieces if isinstance(p, Cycle)]
    months = [p for p in pieces if isinstance(p, Months)]
    minutes = [p for p in pieces if isinstance(p, Minute)]
    days: list[Piece] = [
        p for p in pieces if isinstance(p, DayShift | WeekdayDate | DateOf | Feast)
    ]
    zone = str(now.tzinfo)
    if len(recurs) > 1 and len([r for r in recurs if not isinstance(r.days, Daily)]) == 1:
        if _apart(recurs, clocks):  # "every day at 9am and every friday at 5pm": two rules
            return Clarify("conflict", "conflict")
        recurs = [r for r in recurs if not isinstance(r.days, Daily)]  # 周一至周五每天18点
    recurs = [Recur(r.start, r.end, on_calendar(r.days, workdays), r.months) for r in recurs]
    recurs = either(recurs)
    if any(isinstance(p, SkipWeekends) for p in pieces):
        weekdays = without_weekends(recurs, bool(steps))
        if weekdays is None:
            return Clarify("unsupported", "unsupported")
        recurs = weekdays
    if any(isinstance(p, SkipHolidays) for p in pieces):
        skipping = without_holidays(recurs, bool(steps))
        if skipping is None:
            return Clarify("unsupported", "unsupported")
        recurs = skipping
    if afters:
        if len(afters) > 1 or recurs or steps or spans or clocks or days or cycles:
            return Clarify("conflict", "conflict")
        moment = (now.astimezone(UTC) + timedelta(minutes=afters[0].minutes)).astimezone(now.tzinfo)
        return Once(moment.replace(microsecond=0), zone)
    if cycles:
        if len(cycles) > 1 or steps:
            return Clarify("conflict", "conflict")
        found_recur = cycle_recur(cycles[0], recurs, days, now.date())
        if isinstance(found_recur, tuple):
            return Clarify(*found_recur)
        recurs, days = [found_recur], []
    if months:
        if len(recurs) != 1:
            return Clarify("conflict", "conflict")
        limited = with_months(recurs[0], months)
        if isinstance(limited, tuple):
            return Clarify(*limited)
        recurs = [limited]
    if minutes and not clocks:
        if len(minutes) > 1 or days:
            return Clarify("conflict", "conflict")
        if not steps and not recurs and not spans:  # "at the top of the hour": the next one
            at = now.replace(minute=minutes[0].minute, second=0, microsecond=0)
            at += timedelta(hours=1) if at <= now else timedelta(0)
            return Once(at, zone)
        step = steps[0] if steps else Step(minutes[0].start, minutes[0].end, 60)
        return _hourly(step, minutes[0], recurs, spans, zone)
    times = _times(clocks, [] if steps and spans else periods)
    if isinstance(times, Clarify):
        return times
    if steps:
        if len(steps) > 1 or days:
            return Clarify("conflict", "conflict")
        return _step(steps[0], recurs, spans, times, periods, now)
    if spans:
        if len(recurs) == 1 and not days and not times and len(spans) == 1:
            return _span_question(spans[0], periods, now, None, recurs[0])
        if not recurs and len(days) <= 1 and not times:
            day = now.date() if not days else date_of(days[0], now)
            if isinstance(day, date):
                return _span_question(spans[0], periods, now, day, None)
        return Clarify("how_often", "vague")
    if not times:
        for piece in days:  # an impossible date is the first thing to say
            found = date_of(piece, now)
            if isinstance(found, Clarify):
                return found
        return Clarify("what_time", "no_time")
    if recurs and days and all(_month_day(d) for d in days):
        month_days = tuple(sorted({d.day for d in days if isinstance(d, DateOf)}))
        recurs = either([*recurs, Recur(days[0].start, days[0].end, MonthDays(month_days))])
        days = []  # the 1st and every Monday: either day
    if recurs and len(days) == 1 and len(recurs) == 1:
        if _listed_after(days[0], recurs[0]):  # 每周一早上9点和周五下午6点: not a start
            return Clarify("conflict", "conflict")
        yearly = _another_date(recurs[0], days[0])
        if isinstance(yearly, Clarify):
            return yearly
        if yearly is not None:
            return _calendar(yearly, times, zone)
        return _starting_on(recurs[0], times, days[0], now)  # 从明天开始每天9点
    small = any(c.language == "zh" and c.bare and 1 <= c.hour <= 6 for c in clocks)
    small = small and len(times) == 1 and times[0].plain
    if recurs:
        if len(recurs) > 1 or days:
            return Clarify("conflict", "conflict")
        if small and daytime:  # 每天3点开会: a meeting at 03:00 or 15:00?
            return _small_hour_every(recurs[0], times[0], now)
        return _first_week(_calendar(recurs[0], times, zone), now)
    if len(times) > 1:
        daily = _calendar(Recur(0, 0, Daily()), times, zone)  # the likelier answer: every day
        return Clarify("one_time", "ambiguous", {}, (daily,) if isinstance(daily, Calendar) else ())
    return one_off(days, times[0], now, small=small)
