"""One-off instants: the date a piece names (明天, 下周一, the 20th, 除夕…), the instant a time
of day has on it, and the questions a one-off may need (passed, a bare small hour, a weekday
and a date that disagree, a month and day that passed lately this year)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from workflows.schedule import dates
from workflows.schedule.clarify import Clarify, Reading
from workflows.schedule.clock import Resolved
from workflows.schedule.holidays import festival_date
from workflows.schedule.pieces import DateOf, DayShift, Feast, Piece, WeekdayDate
from workflows.schedule.spec import WEEKDAYS, Calendar, MonthDays, Once, Spec, TimeOfDay

PAST_DAYS = 183
"""A month and day that passed at most this many days ago this year gets a question (next
year's, or every year?); longer ago it is next year's (in December, 1月5日 is next January)."""


def next_wall(now: datetime, time: Resolved) -> datetime | Clarify:
    """The next instant after `now` that shows `time` on the wall clock."""
    zone = ZoneInfo(str(now.tzinfo))
    for offset in range(3):
        day = now.date() + timedelta(days=offset + (1 if time.next_day else 0))
        moment = dates.wall_time(day, time.hour, time.minute, zone)
        if moment is not None and moment > now:
            return moment
    return Clarify("dst_gap", "impossible")


def date_of(piece: Piece, now: datetime) -> date | Clarify:
    """The date a day piece names at `now` (the coming one when no year or week is given)."""
    today = now.date()
    if isinstance(piece, DayShift):
        return today + timedelta(days=piece.days)
    if isinstance(piece, WeekdayDate):
        return dates.weekday_date(today, piece.weekday, piece.week)
    if isinstance(piece, Feast) and (piece.year is not None or piece.years_ahead is not None):
        in_year = piece.year if piece.year is not None else today.year + (piece.years_ahead or 0)
        written = festival_date(piece.name, in_year)
        return written if written is not None else Clarify("bad_date", "impossible")
    if isinstance(piece, Feast):
        for candidate in (today.year, today.year + 1):
            found_feast = festival_date(piece.name, candidate)
            if found_feast is not None and found_feast >= today:
                return found_feast
        return Clarify("bad_date", "impossible")
    assert isinstance(piece, DateOf)
    year: int | None = piece.year
    if piece.years_ahead is not None:
        year = today.year + piece.years_ahead
    found: date | None
    if piece.last:
        found = dates.last_day(today, piece.month, year, piece.next_month)
    elif piece.month is None:
        found = dates.month_day_date(today, piece.day, piece.next_month)
    else:
        found = dates.calendar_date(today, piece.month, piece.day, year)
    if found is None:
        month = "" if piece.month is None else str(piece.month)
        return Clarify("bad_date", "impossible", {"month": month, "day": str(piece.day)})
    return found


def instant_on(day: date, time: Resolved, now: datetime, *, today_only: bool) -> Reading:
    """`time` on `day` as a one-off, or the question when it does not exist or has passed
    (`today_only`: no day was written, so the question offers tomorrow or every day)."""
    zone = ZoneInfo(str(now.tzinfo))
    if time.next_day:
        day += timedelta(days=1)
    moment = dates.wall_time(day, time.hour, time.minute, zone)
    clock = f"{time.hour:02d}:{time.minute:02d}"
    if moment is None:
        return Clarify("dst_gap", "impossible", {"time": f"{day.isoformat()} {clock}"})
    if moment <= now:
        if today_only and (time.hour, time.minute) == (0, 0):
            return instant_on(day + timedelta(days=1), time, now, today_only=False)
        topic = "passed_today" if today_only else "passed_date"
        topic += "_pm" if today_only and time.plain and 1 <= time.hour <= 6 else ""
        values = {"time": clock, "date": day.isoformat(), "hour": str(time.hour)}
        return Clarify(topic, "passed", values)
    return Once(moment, str(zone))


def small_hour(day: date | None, time: Resolved, now: datetime) -> Clarify:
    """A bare 1–6 点 for a one-off: the small hours or the afternoon? Both, as options."""
    options: list[Spec] = []
    for hour in (time.hour, time.hour + 12):
        at = Resolved(hour, time.minute)
        for offset in range(2 if day is None else 1):
            found = instant_on(
                (day or now.date()) + timedelta(days=offset), at, now, today_only=False
            )
            if isinstance(found, Once):
                options.append(found)
                break
    return Clarify("am_or_pm", "ambiguous", {"hour": str(time.hour)}, tuple(options))


def past_this_year(piece: DateOf, time: Resolved, now: datetime) -> Clarify | None:
    """A month and day without a year that passed lately this year: next year's, or yearly?"""
    if piece.month is None or piece.year is not None or piece.years_ahead is not None:
        return None
    if piece.last or dates.date_problem(now.year, piece.month, piece.day):
        return None
    this_year = date(now.year, piece.month, piece.day)
    if not timedelta(0) < now.date() - this_year <= timedelta(days=PAST_DAYS):
        return None
    zone = str(now.tzinfo)
    options: list[Spec] = []
    following = instant_on(this_year.replace(year=now.year + 1), time, now, today_only=False)
    if isinstance(following, Once):
        options.append(following)
    at = (TimeOfDay(time.hour, time.minute),)
    options.append(Calendar(at, MonthDays((piece.day,)), zone, (piece.month,)))
    values = {"date": this_year.isoformat(), "time": f"{time.hour:02d}:{time.minute:02d}"}
    return Clarify("past_this_year", "passed", values, tuple(options))


def one_off(days: list[Piece], time: Resolved, now: datetime, *, small: bool) -> Reading:
    """A one-off at `time` on the day the `days` pieces name (today when none); `small`: a
    bare 1–6点 that may be morning or afternoon."""
    if not days:
        if small:
            return small_hour(None, time, now)
        return instant_on(now.date(), time, now, today_only=True)
    if len(days) > 1:
        shifts = [p for p in days if isinstance(p, DayShift) and p.days == 0]
        days = [p for p in days if p not in shifts]
    dated = [p for p in days if not isinstance(p, WeekdayDate)]
    if len(dated) > 1:
        found = {str(date_of(p, now)) for p in dated}
        if len(found) == 1:  # 10-01 and 国庆: one day written twice
            days = [p for p in days if p not in dated] + [dated[0]]
    if len(days) == 2:
        named = [p for p in days if isinstance(p, WeekdayDate)]
        dated = [p for p in days if not isinstance(p, WeekdayDate)]
        if len(named) != 1 or len(dated) != 1:
            return Clarify("conflict", "conflict")
        day = date_of(dated[0], now)
        if isinstance(day, Clarify):
            return day
        if day.weekday() != named[0].weekday:
            values = {"date": day.isoformat(), "weekday": WEEKDAYS[named[0].weekday]}
            return Clarify("weekday_mismatch", "conflict", values)
        days = dated
    if len(days) != 1:
        return Clarify("conflict", "conflict")
    piece = days[0]
    day = date_of(piece, now)
    if isinstance(day, Clarify):
        return day
    if isinstance(piece, DateOf):
        past = past_this_year(piece, time, now)
        if past is not None:
            return past
    if small:
        return small_hour(day, time, now)
    once = instant_on(day, time, now, today_only=False)
    coming = isinstance(piece, WeekdayDate) and piece.week is None
    if coming and isinstance(once, Clarify) and once.reason == "passed":
        return instant_on(day + timedelta(days=7), time, now, today_only=False)
    if isinstance(piece, Feast) and isinstance(once, Clarify) and once.reason == "passed":
        following = festival_date(piece.name, day.year + 1)
        if following is not None:
            return instant_on(following, time, now, today_only=False)
    return once
