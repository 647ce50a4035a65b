"""When a repetition starts and stops, as people bound it: 到12月31日为止, 直到月底, 截止到周五,
持续一周, 连续3天, 下周每天…, 本月每个工作日…, 从下周开始, "until Dec 31", "through the end of
the month", "for two weeks", "starting next week".

An end is an `Until` piece (a day piece, or a length counted from the first fire); a start is the
day piece `reading` already knows (从明天开始). A week is Monday to Sunday; "下周" as a start is
next Monday, "下个月" the 1st of next month.
"""

from __future__ import annotations

import re
from dataclasses import replace

from workflows.schedule.en import MONTH, MONTHS, NOCASE
from workflows.schedule.en import clock_fragment as en_clock_fragment
from workflows.schedule.en import clock_of as en_clock_of
from workflows.schedule.feasts import ZH_FEASTS, alternatives
from workflows.schedule.numerals import NUMBER, number
from workflows.schedule.pieces import (
    DateOf,
    DayShift,
    Feast,
    Piece,
    Recur,
    Until,
    WeekdayDate,
    rule,
)
from workflows.schedule.spec import WEEKDAYS, Weekly
from workflows.schedule.zh import DAY_CHAR, WEEK, weekday_index
from workflows.schedule.zh import clock_fragment as zh_clock_fragment
from workflows.schedule.zh import clock_of as zh_clock_of

_ZH_UNITS = {"天": 1, "日": 1, "周": 7, "星期": 7, "礼拜": 7, "月": 0}
_EN_UNITS = {"day": 1, "week": 7, "month": 0}
_EN_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "six": 6}
_EN_COUNTS.update({"five": 5, "seven": 7, "eight": 8, "nine": 9, "ten": 10})


def _length(start: int, end: int, count: int | None, days: int) -> list[Piece]:
    """`count` units of `days` days each (0: months)."""
    if count is None or count < 1 or count > 366:
        return []
    if days == 0:
        return [Until(start, end, months=count)]
    return [Until(start, end, days=count * days)]


def _which_week(which: str) -> int | None:
    """下下周 2, 下周 1, 这周/本周 0, none: the coming one."""
    if which.startswith("下下"):
        return 2
    if which.startswith("下"):
        return 1
    return 0 if which else None


@rule(
    r"(?P<pre>(?:一直)?(?:直到|到|至|截止到?|截至))\s*(?:"
    rf"(?:(?P<y>\d{{4}})\s*年)?(?P<m>{NUMBER})\s*月\s*(?P<d>{NUMBER})\s*[日号]?"
    r"|(?P<which_m>这个?|本|下个?)?(?P<me>月底|月末)|(?P<ye>(?:今)?年底|年末)"
    rf"|(?P<mo>{NUMBER})\s*月(?:份)?\s*(?:底|末|最后一天)"
    rf"|(?P<which_w>下下个?|下个?|这个?|本)?{WEEK}(?P<w>{DAY_CHAR})"
    r"|(?P<shift>明天|后天)|(?P<feast>" + alternatives(ZH_FEASTS) + r"|过年)(?:那天|当天)?)"
    r"\s*(?P<post>为止|止|结束|截止)?"
    rf"|(?:持续|连续|为期|共)\s*(?P<n>{NUMBER}|半)\s*个?\s*(?P<u>天|日|周|星期|礼拜|月)"
)
def zh_until(match: re.Match[str]) -> list[Piece]:
    start, end = match.start(), match.end()
    if match.group("u"):
        count = number(match.group("n")) if match.group("n") != "半" else None
        return _length(start, end, count, _ZH_UNITS[match.group("u")])
    bare = match.group("pre") in ("到", "至") and not match.group("post")
    target: Piece
    if match.group("m"):
        day, month = number(match.group("d")), number(match.group("m"))
        year = int(match.group("y")) if match.group("y") else None
        if day is None or month is None:
            return []
        target = DateOf(start, end, day, month, year)
    elif match.group("me"):
        following = (match.group("which_m") or "").startswith("下")
        target = DateOf(start, end, 31, next_month=following, last=True)
    elif match.group("mo"):  # 到3月底为止: the last day of that month
        month = number(match.group("mo"))
        if month is None or not 1 <= month <= 12:
            return []
        target = DateOf(start, end, 31, month, last=True)
    elif match.group("ye"):
        target = DateOf(start, end, 31, 12, years_ahead=0, last=True)
    elif match.group("w"):
        if bare:  # 周一到周五: a range of weekdays, not an end
            return []
        which = _which_week(match.group("which_w") or "")
        target = WeekdayDate(start, end, weekday_index(match.group("w")), which)
    elif match.group("feast"):  # 到春节为止, 到过年 (the Spring Festival's day)
        name = ZH_FEASTS.get(match.group("feast"), ZH_FEASTS["春节"])
        target = Feast(start, end, name)
    else:
        if bare:
            return []
        target = DayShift(start, end, 1 if match.group("shift") == "明天" else 2)
    return [Until(start, end, target)]


@rule(
    r"(?P<which>这|本|下下?)\s*个?\s*(?P<u>周|星期|礼拜|月)\s*(?:内|里|之内)?\s*(?:的)?"
    r"(?=\s*(?:每|天天|工作日))"
    r"|(?:从\s*)?(?P<swhich>下下?)\s*个?\s*(?P<su>周|星期|礼拜|月)\s*(?:开始|起)"
)
def zh_scope(match: re.Match[str]) -> list[Piece]:
    """下周每天…: from next Monday to next Sunday; 本月每个工作日…: to the month's end;
    从下周开始 / 下个月起: from next Monday / the 1st of next month."""
    start, end = match.start(), match.end()
    which = match.group("which") or match.group("swhich")
    month = (match.group("u") or match.group("su")) == "月"
    ahead = 2 if which.startswith("下下") else 1 if which.startswith("下") else 0
    if month and ahead > 1:
        return []
    first: list[Piece] = []
    if ahead and month:
        first = [DateOf(start, end, 1, next_month=True)]
    elif ahead:
        first = [WeekdayDate(start, end, 0, ahead)]
    if match.group("swhich"):
        return first
    last: Piece
    if month:
        last = DateOf(start, end, 31, next_month=bool(ahead), last=True)
    else:
        last = WeekdayDate(start, end, 6, ahead)
    return [*first, Until(start, end, last)]


@rule(
    rf"(?P<which>下下?|这|本)\s*个?\s*{WEEK}(?P<a>{DAY_CHAR})\s*(?:到|至|~|～|-)\s*(?:{WEEK})?"
    rf"(?P<b>{DAY_CHAR})(?:\s*每天)?"
)
def zh_week_days(match: re.Match[str]) -> list[Piece]:
    """下周一到周五: each of those days of that one week (from the first, up to the last)."""
    start, end = match.start(), match.end()
    first, last = weekday_index(match.group("a")), weekday_index(match.group("b"))
    if last <= first:
        return []
    week = _which_week(match.group("which"))
    names = WEEKDAYS[first : last + 1]
    starts: list[Piece] = [WeekdayDate(start, end, first, week)] if week else []
    recur = Recur(start, end, Weekly(names))
    return [*starts, recur, Until(start, end, WeekdayDate(start, end, last, week))]


@rule(
    r"\b(?:until|till|til|through|thru|up\s+to|ending(?:\s+on)?|to)\s+(?:"
    rf"(?P<m>{MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?"
    rf"|(?:the\s+)?(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{MONTH})\b\.?"
    r"|(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?(?P<eo>month|year)"
    r"|(?:the\s+)?end\s+of\s+next\s+(?P<en>month)"
    rf"|(?:the\s+)?end\s+of\s+(?P<me>{MONTH}))\b"
    r"|\bfor\s+(?:the\s+next\s+)?(?P<n>a|an|one|two|three|four|six|\d{1,3})\s+"
    r"(?P<u>day|week|month)s?\b",
    NOCASE,
)
def en_until(match: re.Match[str]) -> list[Piece]:
    start, end = match.start(), match.end()
    if match.group("u"):
        written = match.group("n").lower()
        count = int(written) if written.isdigit() else _EN_COUNTS.get(written)
        return _length(start, end, count, _EN_UNITS[match.group("u").lower()])
    target: Piece
    if match.group("eo") or match.group("en"):
        year_end = (match.group("eo") or "").lower() == "year"
        month = 12 if year_end else None
        ahead = 0 if year_end else None
        target = DateOf(
            start, end, 31, month, years_ahead=ahead, next_month=bool(match.group("en")), last=True
        )
    elif match.group("me"):  # until the end of March
        target = DateOf(start, end, 31, MONTHS[match.group("me").lower()[:3]], last=True)
    else:
        month = MONTHS[(match.group("m") or match.group("m2")).lower()[:3]]
        day = int(match.group("d") or match.group("d2"))
        year = int(match.group("y")) if match.group("y") else None
        target = DateOf(start, end, day, month, year)
    return [Until(start, end, target)]


@rule(r"\b(?:starting|from|beginning)\s+(?:(?P<w>next\s+week)|next\s+month)(?:\s+on)?\b", NOCASE)
def en_start(match: re.Match[str]) -> list[Piece]:
    """ "starting next week": next Monday; "from next month": the 1st of next month."""
    if match.group("w"):
        return [WeekdayDate(match.start(), match.end(), 0, 1)]
    return [DateOf(match.start(), match.end(), 1, next_month=True)]


_AFTER_DAYS = re.compile(r"(?:\b(?:days?|weekdays?|workdays?|[ap]m)|\d)\s*$", NOCASE)


@rule(r"\b(?:(?:of|for|during)\s+)?(?P<which>this|next)\s+(?P<u>week|month)\b", NOCASE)
def en_scope(match: re.Match[str]) -> list[Piece]:
    """ "every day this week", "every weekday next month": those days of that week or month."""
    start, end = match.start(), match.end()
    ahead = (match.group("which") or match.group("which2")).lower() == "next"
    month = (match.group("u") or match.group("u2")).lower() == "month"
    first: list[Piece] = []
    if ahead:
        first = [DateOf(start, end, 1, next_month=True) if month else WeekdayDate(start, end, 0, 1)]
    last: Piece = (
        DateOf(start, end, 31, next_month=ahead, last=True)
        if month
        else WeekdayDate(start, end, 6, int(ahead))
    )
    return [*first, Until(start, end, last)]


@rule(
    rf"(?P<pre>(?:一直)?(?:直到|到|至|截止到?|截至))\s*(?P<today>今天|今日|今晚)?\s*"
    rf"{zh_clock_fragment('u')}\s*(?P<post>为止|止|结束|截止)?"
)
def zh_until_time(match: re.Match[str]) -> list[Piece]:
    """直到晚上10点, 到18点为止: a step ends at that time (a bare 到18点 is a window's end)."""
    if match.group("pre") in ("到", "至") and not match.group("post"):
        return []
    clock = zh_clock_of(match, "u")
    if clock is None:
        return []
    if match.group("today") == "今晚" and clock.period is None:
        clock = replace(clock, period="evening", bare=False)
    return [Until(match.start(), match.end(), clock)]


@rule(
    rf"\b(?:until|till|til|up\s+to)\s+(?:{en_clock_fragment('u')})(?:\s+(?:today|tonight)\b)?",
    NOCASE,
)
def en_until_time(match: re.Match[str]) -> list[Piece]:
    """ "every 30 minutes until 6pm": a step ends at that time (bare "until 6" is not read)."""
    clock = en_clock_of(match, "u", bare_ok=False)
    return [] if clock is None else [Until(match.start(), match.end(), clock)]


_COUNT_MAX = 1000
"""More fires than this are no count a person means to bound a job with."""


_RUN = "执行|运行|提醒|发送?|跑|触发|重复"


def _count(match: re.Match[str], written: str | None) -> list[Piece]:
    value = None if written is None else _EN_COUNTS.get(written.lower(), number(written))
    if value is None or not 1 <= value <= _COUNT_MAX:
        return []
    return [Until(match.start(), match.end(), runs=value)]


@rule(
    rf"(?:共|一共|总共|累计|合计)\s*(?:{_RUN})?\s*(?P<n>{NUMBER})\s*(?:次|遍|回)"
    rf"(?:\s*(?:就|后|以后|之后)?\s*(?:停止?|结束|为止))?"
    rf"|(?:{_RUN})?\s*(?P<n2>{NUMBER})\s*次\s*(?:就|后|以后|之后)\s*(?:停止?|结束|为止)"
    rf"|(?:{_RUN})?\s*(?P<n3>{NUMBER})\s*次为止"
)
def zh_count(match: re.Match[str]) -> list[Piece]:
    """共4次, 一共执行3次, 5次后停止: the repetition ends with that fire."""
    return _count(match, match.group("n") or match.group("n2") or match.group("n3"))


@rule(
    r"(?:\b(?:for|a\s+total\s+of|only)\s+|(?<=,)\s*|(?<=;)\s*|\(\s*)"
    r"(?P<n>\d{1,4}|two|three|four|five|six|seven|eight|nine|ten)\s+(?:times|runs|occurrences)\b"
    r"(?:\s+(?:in\s+total|total|only|(?:and|then)\s+(?:then\s+)?stop))?\s*\)?"
    r"(?!\s*(?:a|an|per|each|every|daily|weekly|hourly)\b)",
    NOCASE,
)
def en_count(match: re.Match[str]) -> list[Piece]:
    """ "…, 4 times", "for 10 runs", "a total of 3 times": the repetition ends with that fire
    (not "3 times a day", a frequency)."""
    return _count(match, match.group("n"))


ZH_RULES = [zh_until, zh_until_time, zh_scope, zh_week_days, zh_count]
EN_RULES = [en_until, en_until_time, en_start, en_scope, en_count]
