"""Calendar arithmetic for one-shot times: which date "下周一", "the 25th" or "Dec 25" is, and
whether a wall-clock time exists in a zone (it does not inside a spring-forward gap).

Weeks start on Monday: 下周一 / "next Monday" is the Monday of the next calendar week (on a
Sunday that is tomorrow, on a Monday it is in 7 days); 这周五 / "this Friday" is the Friday of
this week; a bare weekday (周五, "on Friday") is the coming one: today if the time is still
ahead, else next week's.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workflows.schedule.pieces import Clock, DateOf, Piece, Unclear, rule


def date_problem(year: int, month: int, day: int) -> str | None:
    """None when the date exists, else the topic of the question to ask."""
    if not 1 <= month <= 12:
        return "bad_date"
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return "bad_date"
    return None


def wall_time(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime | None:
    """The instant showing `hour:minute` on `day` in `zone` (the first one when the clock
    shows it twice), or None when the clock skips it (daylight saving gap)."""
    moment = datetime.combine(day, time(hour, minute), tzinfo=zone)
    back = moment.astimezone(UTC).astimezone(zone)
    if (back.hour, back.minute, back.date()) != (hour, minute, day):
        return None
    return back


def weekday_date(today: date, weekday: int, week: int | None) -> date:
    """The date of `weekday` (0 = Monday): `week` None the coming one (today included),
    0 in this week, 1 in the next week, 2 in the week after."""
    if week is None:
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    monday = today - timedelta(days=today.weekday())
    return monday + timedelta(days=7 * week + weekday)


def month_day_date(today: date, day: int, next_month: bool = False) -> date | None:
    """The coming day `day` of a month (this month if not yet past, else the next); with
    `next_month`, that day of next month. None when that month has no such day."""
    year, month = today.year, today.month
    if next_month or day < today.day:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if date_problem(year, month, day):
        return None
    return date(year, month, day)


def last_day(today: date, month: int | None, year: int | None, next_month: bool) -> date:
    """The last day of `month` (None: this month, or the next with `next_month`) of `year`
    (None: the coming one)."""
    if month is None:
        year, month = today.year, today.month
        if next_month:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    elif year is None:
        year = today.year if month >= today.month else today.year + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def calendar_date(today: date, month: int, day: int, year: int | None) -> date | None:
    """`month`/`day` in `year`, or (no year) the coming one: this year unless already past.
    None when it does not exist."""
    if year is not None:
        return None if date_problem(year, month, day) else date(year, month, day)
    for candidate in (today.year, today.year + 1, today.year + 2, today.year + 3, today.year + 4):
        if date_problem(candidate, month, day) is None and date(candidate, month, day) >= today:
            return date(candidate, month, day)
    return None


# ---- numeric dates, in either language ------------------------------------------------------


@rule(
    r"(?<![\d/.\-])(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?![\d/.\-])"
    r"(?:(?:T|\s+)(?P<hh>\d{1,2}):(?P<mm>\d{2})(?::00)?(?![\d:]))?"
)
def iso_date(match: re.Match[str]) -> list[Piece]:
    day = DateOf(match.start(), match.end(), int(match.group("d")), int(match.group("m")))
    day = DateOf(day.start, day.end, day.day, day.month, int(match.group("y")))
    if match.group("hh") is None:
        return [day]
    hour, minute = int(match.group("hh")), int(match.group("mm"))
    return [day, Clock(match.start("hh"), match.end(), hour, minute, "zh")]


@rule(r"(?<![\d/.:\-])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?(?![\d/])")
def slash_date(match: re.Match[str]) -> list[Piece]:
    first, second = int(match.group("a")), int(match.group("b"))
    year_text = match.group("y")
    year = None if year_text is None else int(year_text) + (2000 if len(year_text) == 2 else 0)
    if first > 12 and second <= 12:
        return [DateOf(match.start(), match.end(), first, second, year)]
    if second > 12 and first <= 12:
        return [DateOf(match.start(), match.end(), second, first, year)]
    if first == second and first <= 12:
        return [DateOf(match.start(), match.end(), first, first, year)]
    reason = "impossible" if first > 12 else "ambiguous"
    return [Unclear(match.start(), match.end(), reason, "day_month", match.group(0))]


ZH_TIME_AHEAD = (
    r"(?=\s*(?:\d{1,2}:\d{2}|\d{1,2}\s*[点时]|[零一二两三四五六七八九十]{1,3}\s*[点时]"
    r"|[早上中下晚凌傍夜午]))"
)
"""A Chinese time of day comes next (so "6-3" / "6.3" before it is a date, not a score)."""


@rule(
    r"(?<![\d/.:\-])(?P<m>0[1-9]|1[0-2])-(?P<d>0[1-9]|[12]\d|3[01])(?![\d/.:\-])"
    r"|(?<![\d/.:\-])(?P<m2>[1-9]|1[0-2])-(?P<d2>[1-9]|[12]\d|3[01])(?![\d/.:\-])"
    rf"(?=\s+\d{{1,2}}:\d{{2}}|{ZH_TIME_AHEAD[3:-1]}|\s*[\u4e00-\u9fff]|\s*$)"
    rf"|(?<![\d/.:\-\w])(?P<m3>[1-9]|1[0-2])\.(?P<d3>[1-9]|[12]\d|3[01])(?![\d/.:\-]){ZH_TIME_AHEAD}"
)
def month_dash_day(match: re.Match[str]) -> list[Piece]:
    """09-03, 9-3 21:15, 6-3晚上7点, 6.3晚上7点: month-day, as in ISO dates without the year."""
    month = int(match.group("m") or match.group("m2") or match.group("m3"))
    day = int(match.group("d") or match.group("d2") or match.group("d3"))
    return [DateOf(match.start(), match.end(), day, month)]


RULES = [iso_date, slash_date, month_dash_day]
