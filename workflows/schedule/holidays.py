"""Working days and festivals: China's State Council calendar (holidays off, 调休 weekends on),
Monday–Friday, and the Chinese festivals whose day the lunar calendar fixes.

The State Council publishes each year's arrangement in the autumn before; `chinese-calendar`
ships it (2004 up to the year its release covers). For a year it does not cover yet we still
know the statutory holidays (全国年节及纪念日放假办法, 2025: 元旦 1 day, 春节 4 from 除夕,
清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3) and skip those, but not the 调休 swaps nobody
knows yet: `covered(year)` is False and the card says so.

Usage::

    is_workday(date(2026, 10, 1), "cn")        # False: 国庆
    is_workday(date(2026, 2, 14), "cn")        # True: a 调休 Saturday
    is_workday(date(2027, 1, 1), "cn")         # False: 元旦 (statutory; year not published)
    covered(2027)                              # False (chinese-calendar 1.11)
    festival_date("zhongqiu", 2026)            # date(2026, 9, 25)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from functools import cache
from typing import Literal

import chinese_calendar
from lunardate import LunarDate

WorkdayCalendar = Literal["cn", "mon-fri"]
WORKDAY_CALENDARS: tuple[WorkdayCalendar, ...] = ("cn", "mon-fri")
LUNAR = {
    "chuxi": (12, 0),  # the last day of the twelfth month (29th or 30th)
    "chunjie": (1, 1),
    "yuanxiao": (1, 15),
    "duanwu": (5, 5),
    "qixi": (7, 7),
    "zhongqiu": (8, 15),
    "chongyang": (9, 9),
    "laba": (12, 8),
}
"""Festivals of the lunar calendar: (month, day); day 0 is the month's last day."""
SOLAR = {"yuandan": (1, 1), "laodong": (5, 1), "guoqing": (10, 1), "christmas": (12, 25)}
SOLAR.update({"christmas_eve": (12, 24), "new_years_eve": (12, 31), "halloween": (10, 31)})
SOLAR.update({"valentines": (2, 14), "independence": (7, 4), "boxing": (12, 26)})
SOLAR.update({"womens_day": (3, 8), "arbor_day": (3, 12), "april_fools": (4, 1)})
SOLAR.update({"youth_day": (5, 4), "childrens_day": (6, 1), "party_day": (7, 1)})
SOLAR.update({"army_day": (8, 1), "teachers_day": (9, 10), "singles_day": (11, 11)})
SOLAR.update({"double_twelve": (12, 12)})
FESTIVALS = (*LUNAR, *SOLAR, "qingming")
_LUNAR_DAY = re.compile(r"^lunar-(1[0-2]|[1-9])-([12]?\d|30)$")
"""Any day of the lunar calendar: `lunar-8-15` (农历八月十五)."""


def is_festival(name: str) -> bool:
    """Whether `name` is a festival we know, or a day of the lunar calendar."""
    return name in FESTIVALS or _LUNAR_DAY.match(name) is not None


def workdays_for(timezone: str, language: str) -> WorkdayCalendar:
    """The default working-day calendar: China's with the zone Asia/Shanghai or Chinese."""
    return "cn" if timezone == "Asia/Shanghai" or language == "zh" else "mon-fri"


def covered(year: int) -> bool:
    """Whether the State Council's arrangement for `year` is known (shipped by the package)."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def uncovered(calendar: str | None, years: Iterable[int]) -> tuple[int, ...]:
    """The years among `years` whose State Council arrangement `calendar` needs but lacks."""
    if calendar != "cn":
        return ()
    return tuple(sorted({year for year in years if not covered(year)}))


@cache
def festival_date(name: str, year: int) -> date | None:
    """The day of festival `name` in Gregorian `year` (除夕 and 腊月 of the lunar year that ends
    in it), or None when it has none that year."""
    if name in SOLAR:
        month, day = SOLAR[name]
        return date(year, month, day)
    if name == "qingming":
        terms = chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 10))
        return next((day for day, term in terms if term == "清明"), None)
    lunar = _LUNAR_DAY.match(name)
    month, day = (int(lunar.group(1)), int(lunar.group(2))) if lunar else LUNAR[name]
    try:
        if name == "chuxi":
            start: date = LunarDate(year, 1, 1).to_solar_date()
            return start - timedelta(days=1)
        found: date = LunarDate(year, month, day).to_solar_date()
        if found.year > year:  # 腊月 of the lunar year that ends in this Gregorian year
            found = LunarDate(year - 1, month, day).to_solar_date()
    except ValueError:
        return None
    return found if found.year == year else None


@cache
def _statutory(year: int) -> frozenset[date]:
    """The statutory days off of `year` by law, without the State Council's swaps."""
    days = {date(year, 1, 1), date(year, 5, 1), date(year, 5, 2)}
    days.update(date(year, 10, 1) + timedelta(days=n) for n in range(3))
    new_year = festival_date("chuxi", year)
    if new_year is not None:
        days.update(new_year + timedelta(days=n) for n in range(4))
    for name in ("qingming", "duanwu", "zhongqiu"):
        found = festival_date(name, year)
        if found is not None:
            days.add(found)
    return frozenset(days)


def is_workday(day: date, calendar: str) -> bool:
    """Whether `day` is a working day in `calendar` (`cn` or `mon-fri`)."""
    if calendar == "mon-fri":
        return day.weekday() < 5
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5 and day not in _statutory(day.year)


@cache
def festival_months(name: str) -> tuple[int, ...]:
    """The months festival `name` can fall in (2000–2099)."""
    found = {day.month for year in range(2000, 2100) if (day := festival_date(name, year))}
    return tuple(sorted(found))
