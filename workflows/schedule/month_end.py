"""Days counted from the end of the month, in either language: 每月倒数第二天, 倒数第3天,
"the second-to-last day of every month", "the penultimate day of each month" (`DayFromEnd`);
倒数第一天 / 倒数第一个周五 are the last day / last Friday. The n-th weekday or working day
from the end (倒数第二个周五, "the second-to-last Friday") is asked about, never read as the
last one. "every last Friday" / "every first Monday" are of each month.
"""

from __future__ import annotations

import re

from workflows.schedule.en import DAY_NAMES, NOCASE, WEEKDAY
from workflows.schedule.en_repeats import OF_EVERY_MONTH
from workflows.schedule.numerals import NUMBER, number, ordinal
from workflows.schedule.pieces import Piece, Recur, Unclear, rule
from workflows.schedule.spec import WEEKDAYS, DayFromEnd, MonthDays, MonthWorkday, NthWeekdays
from workflows.schedule.zh import DAY_CHAR, WEEK, weekday_index
from workflows.schedule.zh_repeats import MONTH_PREFIX


@rule(
    rf"{MONTH_PREFIX}倒数\s*第?\s*(?P<n>{NUMBER})\s*"
    rf"(?:(?P<day>天|日|号)|个?\s*(?:{WEEK}(?P<w>{DAY_CHAR})|(?P<work>工作日)))"
)
def zh_from_end(match: re.Match[str]) -> list[Piece]:
    """每月倒数第二天 (the day before the last), 倒数第一天 (the last), 倒数第一个周五 / 工作日;
    the n-th weekday or working day from the end past the last is asked (not supported)."""
    nth = number(match.group("n"))
    start, end = match.start(), match.end()
    if nth is None or not 1 <= nth <= 28:
        return [Unclear(start, end, "impossible", "bad_day")]
    if match.group("day"):
        return [Recur(start, end, MonthDays((), True) if nth == 1 else DayFromEnd(nth))]
    if nth != 1:
        return [Unclear(start, end, "unsupported", "unsupported")]
    if match.group("work"):
        return [Recur(start, end, MonthWorkday(nth=-1, calendar="cn"))]
    day = WEEKDAYS[weekday_index(match.group("w"))]
    return [Recur(start, end, NthWeekdays(((-1, day),)))]


@rule(
    r"\b(?:on\s+)?(?:the\s+|every\s+|each\s+)?(?:(?P<n>second|third|fourth|fifth|2nd|3rd|4th|5th)"
    r"(?:[\s-]+(?:to|from))?[\s-]+(?:the[\s-]+)?last|(?P<pen>penultimate))(?:\s+day)?"
    rf"{OF_EVERY_MONTH}",
    NOCASE,
)
def en_from_end(match: re.Match[str]) -> list[Piece]:
    """the second-to-last (second last) day of every month, the penultimate day of each month."""
    nth = 2 if match.group("pen") else ordinal(match.group("n"))
    if nth is None:
        return []
    return [Recur(match.start(), match.end(), DayFromEnd(nth))]


@rule(
    r"\b(?:on\s+)?(?:the\s+|every\s+|each\s+)?(?:second|third|fourth|fifth|2nd|3rd|4th|5th)"
    rf"(?:[\s-]+(?:to|from))?[\s-]+(?:the[\s-]+)?last\s+(?:{WEEKDAY}|(?:week|business|working|work)"
    r"\s*day)s?(?:\s+of\s+(?:every|each|the)\s+month)?\b",
    NOCASE,
)
def en_nth_from_end(match: re.Match[str]) -> list[Piece]:
    """the second-to-last Friday (or working day) of the month: not supported, asked (never
    read as the last one)."""
    return [Unclear(match.start(), match.end(), "unsupported", "unsupported")]


@rule(
    rf"\b(?:every|each)\s+(?P<n>first|1st|last)\s+(?P<w>{WEEKDAY})\b"
    r"(?!\s+(?:of|in)\s+(?:the|each|every|a)\s+month)",
    NOCASE,
)
def en_first_or_last(match: re.Match[str]) -> list[Piece]:
    """every first Monday, every last Friday (no "of the month"): of each month."""
    nth = -1 if match.group("n").lower() == "last" else 1
    day = WEEKDAYS[DAY_NAMES[match.group("w").lower()[:3]]]
    return [Recur(match.start(), match.end(), NthWeekdays(((nth, day),)))]


ZH_RULES = [zh_from_end]
EN_RULES = [en_from_end, en_nth_from_end, en_first_or_last]
