"""The English grammar of repetition: every day, daily, weekdays, weekends, "every Mon, Wed and
Fri", "Monday through Friday", "on the 1st and 15th of every month", "the last day of every
month", "the second Tuesday of each month", "every year on December 25", "every 15 minutes",
"hourly", "every 2 days" … (see `en` for times and dates).
"""

from __future__ import annotations

import re
from typing import Literal

from workflows.schedule.clock import EN_PERIODS
from workflows.schedule.dates import date_problem
from workflows.schedule.en import (
    ADJECTIVE_GUARD,
    AND,
    FULL_WEEKDAY,
    MONTH,
    MONTHS,
    NOCASE,
    ORD,
    RANGE,
    UNIT,
    WEEKDAY,
    WEEKDAY_S,
    unit_minutes,
    weekday_of,
    weekdays_in,
)
from workflows.schedule.numerals import DAY_ORDINAL, EN_NUMBER, day_ordinal, number, ordinal
from workflows.schedule.pieces import (
    Cycle,
    DateOf,
    Months,
    Period,
    Piece,
    Recur,
    SkipHolidays,
    SkipWeekends,
    Step,
    Unclear,
    rule,
)
from workflows.schedule.spec import (
    WEEKDAYS,
    WEEKEND,
    WORKDAYS,
    Daily,
    MonthDays,
    MonthWorkday,
    NthWeekdays,
    Weekly,
    Workdays,
)


@rule(
    rf"\b(?:every|each)\s+(?P<list>{WEEKDAY_S}(?:(?:{AND}|\s+)(?:on\s+)?{WEEKDAY_S}\b)*)\b",
    NOCASE,
)
def weekly(match: re.Match[str]) -> list[Piece]:
    """every Monday, each Tue and Thu, every monday wednesday friday (a list with spaces)."""
    return [Recur(match.start(), match.end(), Weekly(weekdays_in(match.group("list"))))]


@rule(
    rf"\b(?:weekly\s+|on\s+)?(?P<list>{FULL_WEEKDAY}s(?:{AND}(?:on\s+)?{WEEKDAY}s?)*)\b"
    rf"|\b(?:weekly\s+on|on)\s+(?P<many>{WEEKDAY}(?:{AND}{WEEKDAY})+)\b"
    rf"|\b(?<!bi-)(?<!bi)(?:weekly|every\s+week)\s+on\s+(?P<one>{WEEKDAY})\b"
    rf"|\b(?P<bare>{WEEKDAY}(?:{AND}{WEEKDAY})+)\b",
    NOCASE,
)
def plural_weekdays(match: re.Match[str]) -> list[Piece]:
    text = match.group("list") or match.group("many") or match.group("one") or match.group("bare")
    return [Recur(match.start(), match.end(), Weekly(weekdays_in(text)))]


@rule(
    rf"\b(?:every\s+(?:day\s+)?|each\s+)?(?:from\s+)?(?P<a>{WEEKDAY}){RANGE}(?P<b>{WEEKDAY})\b",
    NOCASE,
)
def weekday_range(match: re.Match[str]) -> list[Piece]:
    first, last = weekday_of(match.group("a")), weekday_of(match.group("b"))
    if last < first:
        return []
    names = tuple(WEEKDAYS[index] for index in range(first, last + 1))
    return [Recur(match.start(), match.end(), Weekly(names))]


@rule(
    r"\b(?:(?:every|each|on)\s+)?(?:(?P<week>week\s*days?)|business\s+days?|working\s+days?"
    r"|work\s*days?)\b",
    NOCASE,
)
def workdays(match: re.Match[str]) -> list[Piece]:
    """weekdays: Monday to Friday; workdays, business days: the configured calendar's."""
    days = Weekly(WORKDAYS) if match.group("week") else Workdays()
    return [Recur(match.start(), match.end(), days)]


@rule(r"\b(?:(?:every|each|on)\s+)?weekends?\b", NOCASE)
def weekend(match: re.Match[str]) -> list[Piece]:
    return [Recur(match.start(), match.end(), Weekly(WEEKEND))]


@rule(
    r"\b(?:every\s*day|each\s+day|every\s+single\s+day|once\s+a\s+day)\b"
    rf"|\bdaily{ADJECTIVE_GUARD}",
    NOCASE,
)
def daily(match: re.Match[str]) -> list[Piece]:
    return [Recur(match.start(), match.end(), Daily())]


@rule(
    r"\b(?:every|each)\s+(?P<p>morning|afternoon|evening|night|noon|midday|midnight)\b"
    rf"|\b(?P<n>nightly){ADJECTIVE_GUARD}",
    NOCASE,
)
def daily_period(match: re.Match[str]) -> list[Piece]:
    word = (match.group("p") or "night").lower()
    name = EN_PERIODS[word]
    return [Recur(match.start(), match.end(), Daily()), Period(match.start(), match.end(), name)]


ORD_JOIN = rf"(?:{AND}|\s+)"
"""Between two days of a list: and, a comma, or a space alone ("the 5th 15th 25th")."""
OF_EVERY_MONTH = r"\s+(?:day\s+)?of\s+(?:every|each|the|every\s+single)\s+month\b"
EVERY_MONTH_ON = r"\b(?:(?:every|each)\s+month|monthly)\s+on\s+(?:the\s+)?"


def _month_days(text: str) -> tuple[tuple[int, ...], bool] | None:
    days: set[int] = set()
    last = False
    for item in re.findall(ORD, text, NOCASE):
        value = ordinal(item)
        if value == -1:
            last = True
        elif value is not None and 1 <= value <= 31:
            days.add(value)
        else:
            return None
    return tuple(sorted(days)), last


@rule(
    rf"\b(?:on\s+)?(?:the\s+|every\s+|each\s+)?(?P<list>{ORD}(?:\s+day)?(?:{ORD_JOIN}(?:the\s+)?{ORD}(?:\s+day)?)*)"
    rf"{OF_EVERY_MONTH}"
    rf"|{EVERY_MONTH_ON}(?P<list2>{ORD}(?:\s+day)?(?:{ORD_JOIN}(?:the\s+)?{ORD}(?:\s+day)?)*)"
    rf"(?!\s+(?:{WEEKDAY}|week\s*day|business|working|work\s*day))"
    r"|\b(?:at\s+)?(?:the\s+)?end\s+of\s+(?:every|each|the)\s+month\b",
    NOCASE,
)
def month_days(match: re.Match[str]) -> list[Piece]:
    text = match.group("list") or match.group("list2")
    if text is None:
        return [Recur(match.start(), match.end(), MonthDays((), True))]
    found = _month_days(text)
    if found is None:
        return [Unclear(match.start(), match.end(), "impossible", "bad_day")]
    days, last = found
    if not days and not last:
        return []
    return [Recur(match.start(), match.end(), MonthDays(days, last))]


NTH = r"(?:first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th)"


@rule(
    rf"\b(?:on\s+)?(?:the\s+|every\s+|each\s+)?(?P<n>{NTH})(?:{AND}(?:the\s+)?(?P<n2>{NTH}))?"
    rf"\s+(?P<w>{WEEKDAY})\s+of\s+(?:every|each|the)\s+month\b"
    rf"|{EVERY_MONTH_ON}(?P<n3>{NTH})\s+(?P<w3>{WEEKDAY})\b",
    NOCASE,
)
def nth_weekday(match: re.Match[str]) -> list[Piece]:
    day = WEEKDAYS[weekday_of(match.group("w") or match.group("w3"))]
    nths = {ordinal(match.group(g)) for g in ("n", "n2", "n3") if match.group(g)}
    positions = tuple((n, day) for n in sorted(n for n in nths if n is not None))
    if not positions:
        return []
    return [Recur(match.start(), match.end(), NthWeekdays(positions))]


@rule(
    rf"\b(?:(?:every\s+year|annually|yearly)\s+on\s+|every\s+)(?:the\s+)?"
    rf"(?:(?P<m>{MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{MONTH}))\b",
    NOCASE,
)
def yearly(match: re.Match[str]) -> list[Piece]:
    month = MONTHS[(match.group("m") or match.group("m2")).lower()[:3]]
    day = int(match.group("d") or match.group("d2"))
    if date_problem(2024, month, day):
        return [Unclear(match.start(), match.end(), "impossible", "bad_date", f"{month}/{day}")]
    return [Recur(match.start(), match.end(), MonthDays((day,)), (month,))]


STEP_ORDINALS = {"second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
STEP_ORDINALS.update({"fifth": 5, "5th": 5, "sixth": 6, "6th": 6})
STEP_ORDINAL = "|".join(STEP_ORDINALS)
"""every second day, every 3rd week: a step of that many (not the n-th of something)."""


@rule(
    rf"\bevery\s+(?:(?P<n>\d+(?:\.\d+)?|{EN_NUMBER}|other|{STEP_ORDINAL}|couple\s+of|few)\s*)?{UNIT}"
    r"|\bevery\s+half(?:\s+an|-)?\s*hour\b|\bevery\s+quarter(?:\s+of\s+an|-)?\s*hour\b"
    r"|\bhourly\b",
    NOCASE,
)
def step(match: re.Match[str]) -> list[Piece]:
    text = match.group(0).lower()
    if "half" in text and match.group("u") is None:
        return [Step(match.start(), match.end(), 30)]
    if "quarter" in text and match.group("u") is None:
        return [Step(match.start(), match.end(), 15)]
    if text == "hourly":
        return [Step(match.start(), match.end(), 60)]
    amount = (match.group("n") or "").lower()
    unit = unit_minutes(match.group("u"))
    if unit is None:
        return [Unclear(match.start(), match.end(), "unsupported", "too_often")]
    if amount == "few":
        return [Unclear(match.start(), match.end(), "vague", "how_often")]
    if not amount and unit == 1440:
        return []
    value: float = 2 if amount == "other" or amount.startswith("couple") else 1
    if amount in STEP_ORDINALS:
        value = STEP_ORDINALS[amount]
    elif amount and amount[0].isdigit():
        value = float(amount)
    elif amount not in ("", "other") and not amount.startswith("couple"):
        value = float(number(amount) or 0)
    minutes = value * unit
    if minutes < 1 or minutes != int(minutes):
        return [Unclear(match.start(), match.end(), "unsupported", "too_often")]
    return [Step(match.start(), match.end(), int(minutes))]


UNSUPPORTED = r"\b(?:except|excluding|but\s+not)\b"


@rule(UNSUPPORTED, NOCASE)
def unsupported(match: re.Match[str]) -> list[Piece]:
    return [Unclear(match.start(), match.end(), "unsupported", "unsupported")]


CYCLE_UNITS: dict[str, Literal["week", "month", "quarter", "year"]] = {
    "week": "week",
    "month": "month",
    "quarter": "quarter",
    "year": "year",
}


@rule(
    rf"\b(?:every|each)\s+(?P<n>other|{STEP_ORDINAL}|\d+|{EN_NUMBER})\s+(?P<u>week|month|year)s?\b"
    r"|\b(?P<bi>bi-?weekly|fortnightly|every\s+fortnight|each\s+fortnight|semi-?annually"
    r"|twice\s+a\s+year|bi-?annually)\b"
    r"|\b(?P<q>quarterly|every\s+quarter|each\s+quarter|once\s+a\s+quarter)\b"
    r"|\b(?:every|each|once\s+a|once\s+every)\s+(?P<one>week|month|year)\b"
    rf"|\b(?P<adj>weekly|monthly|yearly|annually){ADJECTIVE_GUARD}"
    r"|\b(?P<after>weekly|monthly|yearly|annually|every\s+year|each\s+year)$",
    NOCASE,
)
def cycle(match: re.Match[str]) -> list[Piece]:
    """every other week, biweekly, every 3 months, quarterly, every year, monthly…"""
    start, end = match.start(), match.end()
    if match.group("q"):
        return [Cycle(start, end, "quarter")]
    if match.group("bi"):
        text = match.group("bi").lower()
        if "annual" in text or "year" in text:
            return [Cycle(start, end, "month", 6)]
        return [Cycle(start, end, "week", 2)]
    word = (match.group("one") or match.group("adj") or match.group("after") or "").lower()
    if word:
        unit = "year" if word.startswith(("year", "annual", "every", "each")) else word[:4]
        unit = "month" if unit == "mont" else unit
        return [Cycle(start, end, CYCLE_UNITS.get(unit, "year"))]
    amount = match.group("n").lower()
    count = 2 if amount == "other" else STEP_ORDINALS.get(amount) or number(amount)
    if count is None or count < 1:
        return []
    return [Cycle(start, end, CYCLE_UNITS[match.group("u").lower()], count)]


@rule(
    r"\b(?:on\s+)?(?:the\s+)?(?P<which>first|last)\s+day\s+of\s+(?:every|each)\s+"
    r"(?:quarter|(?P<y>year))\b"
    r"|\b(?:on\s+)?(?:the\s+)?(?P<once>first|last)\s+day\s+of\s+(?:the|this)\s+year\b"
    r"|\b(?:every|each)\s+(?:quarter|(?P<y2>year))\s+on\s+the\s+(?P<which2>first|last)\s+day\b",
    NOCASE,
)
def period_edge(match: re.Match[str]) -> list[Piece]:
    """the first / last day of every quarter (or year), "every quarter on the first day": as
    每季度第一天, 每季度最后一天; "the
    last day of the year": this year's December 31st (the first day: the coming January 1st)."""
    start, end = match.start(), match.end()
    if match.group("once"):
        if match.group("once").lower() == "last":
            return [DateOf(start, end, 31, 12, years_ahead=0, last=True)]
        return [DateOf(start, end, 1, 1)]
    last = (match.group("which") or match.group("which2")).lower() == "last"
    if match.group("y") or match.group("y2"):
        months = (12,) if last else (1,)
        return [Recur(start, end, MonthDays((), True) if last else MonthDays((1,)), months)]
    if last:
        return [Cycle(start, end, "quarter", last=True)]
    return [Recur(start, end, MonthDays((1,)), (1, 4, 7, 10))]


@rule(rf"\b(?:every|each)\s+other\s+(?P<w>{WEEKDAY_S}(?:{AND}(?:on\s+)?{WEEKDAY_S})*)\b", NOCASE)
def other_weekday(match: re.Match[str]) -> list[Piece]:
    """every other Monday (and Thursday): those days every two weeks."""
    return [
        Recur(match.start(), match.end(), Weekly(weekdays_in(match.group("w")))),
        Cycle(match.end(), match.end(), "week", 2),
    ]


@rule(
    r"\b(?:(?:on|every|each)\s+)?(?:the\s+)?(?P<n>first|last)\s+(?P<k>week\s*day|business\s+day"
    r"|working\s+day|work\s*day)(?:\s+of\s+(?:the|every|each)\s+month|\s+every\s+month)?\b"
    r"|\b(?:(?:on|every|each)\s+)?(?:the\s+)?(?:(?:week\s*day|business\s+day|working\s+day)\s+"
    rf"(?:nearest|closest)\s+(?:to\s+)?|(?:nearest|closest)\s+(?:week\s*day|business\s+day"
    rf"|working\s+day)\s+to\s+)(?:the\s+)?(?P<near>{DAY_ORDINAL})"
    r"(?:\s+of\s+(?:the|every|each)\s+month)?",
    NOCASE,
)
def month_workday(match: re.Match[str]) -> list[Piece]:
    """the last weekday of the month, first business day, the weekday nearest the 15th."""
    near = match.group("near")
    if near is not None:
        day = day_ordinal(near)
        if day is None or not 1 <= day <= 31:
            return []
        return [Recur(match.start(), match.end(), MonthWorkday(near=day))]
    nth = 1 if match.group("n").lower() == "first" else -1
    kind = match.group("k").lower().replace(" ", "")
    calendar = "mon-fri" if kind == "weekday" else "cn"
    return [Recur(match.start(), match.end(), MonthWorkday(nth=nth, calendar=calendar))]


@rule(
    rf"\b(?:on\s+)?the\s+(?P<n>{NTH})\s+(?P<w>{WEEKDAY})\b(?!\s+of\b)",
    NOCASE,
)
def nth_weekday_alone(match: re.Match[str]) -> list[Piece]:
    """the third Monday (of each month)."""
    value = ordinal(match.group("n"))
    if value is None:
        return []
    day = WEEKDAYS[weekday_of(match.group("w"))]
    return [Recur(match.start(), match.end(), NthWeekdays(((value, day),)))]


@rule(
    rf"\b(?:only\s+)?(?:in|during)\s+(?P<ms>{MONTH}(?:{AND}{MONTH})*)\b(?!\.?\s*\d)"
    rf"|\b(?:only\s+)?(?:in|during)\s+(?P<a>{MONTH}){RANGE}(?P<b>{MONTH})\b",
    NOCASE,
)
def in_months(match: re.Match[str]) -> list[Piece]:
    """only in December, in January and July, during March to May."""
    if match.group("ms"):
        found = {MONTHS[m.lower()[:3]] for m in re.findall(MONTH, match.group("ms"), NOCASE)}
        return [Months(match.start(), match.end(), tuple(sorted(found)))]
    first, last = MONTHS[match.group("a").lower()[:3]], MONTHS[match.group("b").lower()[:3]]
    span = range(first, last + 1) if first <= last else [*range(first, 13), *range(1, last + 1)]
    return [Months(match.start(), match.end(), tuple(sorted(span)))]


@rule(
    rf"\b(?:on\s+)?(?:the\s+)?(?P<n>{NTH})\s+(?P<w>{WEEKDAY})\s+(?:of|in)\s+(?P<m>{MONTH})\b"
    r"|\b(?:on\s+)?(?P<t>thanksgiving)(?:\s+day)?\b",
    NOCASE,
)
def nth_weekday_of_month(match: re.Match[str]) -> list[Piece]:
    """the last Friday of November, Thanksgiving (the fourth Thursday of November): yearly."""
    if match.group("t"):
        return [Recur(match.start(), match.end(), NthWeekdays(((4, "thu"),)), (11,))]
    nth = ordinal(match.group("n"))
    if nth is None:
        return []
    day = WEEKDAYS[weekday_of(match.group("w"))]
    month = MONTHS[match.group("m").lower()[:3]]
    return [Recur(match.start(), match.end(), NthWeekdays(((nth, day),)), (month,))]


HOLIDAYS = (
    r"\b(?:except|excluding|skipping|skip|but\s+not\s+on|not\s+on)\s+(?:public\s+|bank\s+"
    r"|national\s+|statutory\s+)?holidays\b"
)


@rule(HOLIDAYS, NOCASE)
def skip_holidays(match: re.Match[str]) -> list[Piece]:
    """except holidays: only on the working days of China's calendar (see `cycles`)."""
    return [SkipHolidays(match.start(), match.end())]


@rule(
    r"\b(?:except|excluding|skipping|skip|but\s+not\s+on|not\s+on|no)\s+(?:on\s+)?weekends?\b"
    r"|\b(?:weekdays|week\s+days)\s+only\b",
    NOCASE,
)
def skip_weekends(match: re.Match[str]) -> list[Piece]:
    """except weekends, skip weekends, weekdays only: every day becomes Monday to Friday."""
    return [SkipWeekends(match.start(), match.end())]


@rule(
    rf"\b(?:twice|(?P<n>{EN_NUMBER})\s+times)\s+(?:a|per|each|every)\s+day\b|\btwice\s+daily\b",
    NOCASE,
)
def times_a_day(match: re.Match[str]) -> list[Piece]:
    """twice a day (at 8am and 6pm): every day, at the times given."""
    return [Recur(match.start(), match.end(), Daily())]


RULES = [
    weekly,
    plural_weekdays,
    weekday_range,
    workdays,
    weekend,
    daily,
    daily_period,
    month_days,
    nth_weekday,
    yearly,
    step,
    unsupported,
    cycle,
    other_weekday,
    period_edge,
    month_workday,
    nth_weekday_alone,
    in_months,
    times_a_day,
    nth_weekday_of_month,
    skip_holidays,
    skip_weekends,
]
