"""The Chinese grammar of repetition: 每天, 工作日, 周末, 每周一三五, 周一到周五, 每月1号和15号,
每月最后一天, 每月第一个周一, 每年12月25日, 每30分钟, 每隔一天 … (see `zh` for times and dates).
"""

from __future__ import annotations

import re

from workflows.schedule.clock import ZH_PERIODS
from workflows.schedule.dates import date_problem
from workflows.schedule.numerals import NUMBER, number
from workflows.schedule.pieces import Period, Piece, Recur, Step, Unclear, rule
from workflows.schedule.spec import (
    WEEKDAYS,
    WEEKEND,
    WORKDAYS,
    Daily,
    MonthDays,
    NthWeekdays,
    Weekly,
    Workdays,
)
from workflows.schedule.zh import (
    DAY,
    DAY_CHAR,
    EVERY,
    JOIN,
    RANGE,
    WEEK,
    amount_of,
    weekday_index,
)


@rule(rf"(?<!非){EVERY}?(?P<work>工作日|工作天|上班日)|{EVERY}?周一{RANGE}(?:周)?五(?![点时])")
def workdays(match: re.Match[str]) -> list[Piece]:
    """工作日: the configured calendar's working days; 周一到周五: Monday to Friday."""
    days = Workdays() if match.group("work") else Weekly(WORKDAYS)
    return [Recur(match.start(), match.end(), days)]


@rule(rf"(?<![这本下上]){EVERY}?(?:周末|双休日)|{EVERY}{WEEK}六(?:和|、|,|，)?(?:{WEEK})?[日天]")
def weekend(match: re.Match[str]) -> list[Piece]:
    return [Recur(match.start(), match.end(), Weekly(WEEKEND))]


@rule(
    rf"(?<![下这本上])(?:{EVERY})?{WEEK}(?P<a>{DAY_CHAR}){RANGE}{WEEK}?(?P<b>{DAY})"
    rf"|{EVERY}{WEEK}(?:的)?{WEEK}?(?P<list>{DAY}(?:(?:{JOIN})?{WEEK}?{DAY})*)"
    rf"|(?<![下这本上每逢]){WEEK}(?P<bare>{DAY}(?:(?:{JOIN})?{WEEK}{DAY})+)"
)
def weekly(match: re.Match[str]) -> list[Piece]:
    """每周一三五, 每周二到周四, and a bare list 周二周四 / 周二和周四 (a list of days repeats:
    there is no one-shot on several days)."""
    days_text = match.group("list") or match.group("bare")
    if days_text is not None:
        chars = re.findall(DAY_CHAR, days_text)
        days = {weekday_index(char) for char in chars}
    else:
        first, last = weekday_index(match.group("a")), weekday_index(match.group("b"))
        if last < first:
            return []
        days = set(range(first, last + 1))
    names = tuple(WEEKDAYS[index] for index in sorted(days))
    return [Recur(match.start(), match.end(), Weekly(names))]


@rule(r"每天|每日|天天|每一天|日常")
def daily(match: re.Match[str]) -> list[Piece]:
    return [Recur(match.start(), match.end(), Daily())]


@rule(r"每个?(?=早上|早晨|上午|中午|下午|傍晚|晚上|夜里)|每(?P<q>早|晚|夜)(?![上晨间饭餐])")
def daily_period(match: re.Match[str]) -> list[Piece]:
    """每个早上 (the 早上 is read on its own, by `clock` or `period`), 每晚, 每早."""
    if not match.group("q"):
        return [Recur(match.start(), match.end(), Daily())]
    split = match.start("q")
    name = ZH_PERIODS.get(match.group("q"), "evening")
    return [Recur(match.start(), split, Daily()), Period(split, match.end(), name)]


MONTH_PREFIX = rf"{EVERY}月(?:的|份的)?\s*"
LAST_DAY = "(?:最后一天|月底|月末|底|末)"


@rule(
    rf"{MONTH_PREFIX}(?P<days>{NUMBER}(?:\s*[号日]?{JOIN}{NUMBER})*)\s*[号日]"
    rf"(?:{JOIN}(?P<last>最后一天|月底))?|{MONTH_PREFIX}(?P<only_last>{LAST_DAY})"
)
def month_days(match: re.Match[str]) -> list[Piece]:
    values: list[int] = []
    for text in re.findall(NUMBER, match.group("days") or ""):
        value = number(text)
        if value is None:
            return []
        values.append(value)
    last = bool(match.group("last") or match.group("only_last"))
    if any(not 1 <= value <= 31 for value in values):
        return [Unclear(match.start(), match.end(), "impossible", "bad_day")]
    return [Recur(match.start(), match.end(), MonthDays(tuple(sorted(set(values))), last))]


@rule(
    rf"{MONTH_PREFIX}(?:第(?P<n>{NUMBER})(?:个)?(?:{JOIN}第?(?P<n2>{NUMBER})个?)?|(?P<last>最后)一?个?)"
    rf"\s*{WEEK}(?P<w>{DAY_CHAR})"
)
def nth_weekday(match: re.Match[str]) -> list[Piece]:
    day = WEEKDAYS[weekday_index(match.group("w"))]
    if match.group("last"):
        return [Recur(match.start(), match.end(), NthWeekdays(((-1, day),)))]
    nths = [number(match.group(g)) for g in ("n", "n2") if match.group(g)]
    if any(n is None or not 1 <= n <= 5 for n in nths):
        return [Unclear(match.start(), match.end(), "impossible", "bad_day")]
    positions = tuple((n, day) for n in sorted({n for n in nths if n is not None}))
    return [Recur(match.start(), match.end(), NthWeekdays(positions))]


@rule(rf"每年(?:的)?\s*(?P<m>{NUMBER})\s*月\s*(?P<d>{NUMBER})\s*[号日]")
def yearly(match: re.Match[str]) -> list[Piece]:
    month, day = number(match.group("m")), number(match.group("d"))
    if month is None or day is None:
        return []
    problem = date_problem(2024, month, day)
    if problem:
        return [Unclear(match.start(), match.end(), "impossible", "bad_date", f"{month}/{day}")]
    return [Recur(match.start(), match.end(), MonthDays((day,)), (month,))]


STEP_UNITS = {"分钟": 1, "分": 1, "小时": 60, "钟头": 60, "刻钟": 15, "天": 1440, "日": 1440}


@rule(
    rf"每(?P<gap>隔)?\s*(?:(?P<n>{NUMBER}|半|一个半|{NUMBER}个半)\s*)?个?\s*"
    r"(?P<u>分钟|分(?!之)|小时|钟头|刻钟|天|日|秒钟?)(?:一次|一回)?"
)
def step(match: re.Match[str]) -> list[Piece]:
    unit, amount = match.group("u"), match.group("n")
    if unit.startswith("秒"):
        return [Unclear(match.start(), match.end(), "unsupported", "too_often")]
    if unit in ("天", "日") and amount is None and not match.group("gap"):
        return []
    value = amount_of(amount)
    if value is None:
        return []
    if unit in ("天", "日") and match.group("gap"):
        if value != 1:
            return [Unclear(match.start(), match.end(), "ambiguous", "every_other_day")]
        value = 2
    minutes = value * STEP_UNITS[unit]
    if minutes != int(minutes) or minutes < 1:
        return [Unclear(match.start(), match.end(), "unsupported", "too_often")]
    return [Step(match.start(), match.end(), int(minutes))]


@rule(r"每个?整点|每小时整点")
def on_the_hour(match: re.Match[str]) -> list[Piece]:
    return [Step(match.start(), match.end(), 60)]


UNSUPPORTED = (
    r"双周|隔周|单周|每(?:隔)?(?:两|二|2|三|3|四|4)个?(?:周|星期|礼拜)|每隔一(?:个)?(?:周|星期)"
    r"|每个?季度|每半年|节假日|非工作日|法定假日|除了|除外|以外的|不包括"
    rf"|{MONTH_PREFIX}(?:第一个|最后一个)工作日"
)


@rule(UNSUPPORTED)
def unsupported(match: re.Match[str]) -> list[Piece]:
    return [Unclear(match.start(), match.end(), "unsupported", "unsupported")]


@rule(
    rf"{EVERY}(?:{WEEK}|月)(?:一次|一回)|{EVERY}{WEEK}(?!{DAY}|末|{DAY_CHAR}{RANGE}|的)"
    r"|每(?:个|一个|一)?月(?!\s*(?:的|份)?\s*(?:\d|[零〇一二两三四五六七八九十]|第|最后|底|末|初|中))"
    r"|每年(?!\s*(?:的)?\s*(?:\d|[零〇一二两三四五六七八九十]))"
)
def which_day(match: re.Match[str]) -> list[Piece]:
    return [Unclear(match.start(), match.end(), "vague", "which_day")]


RULES = [
    workdays,
    weekend,
    weekly,
    daily,
    daily_period,
    month_days,
    nth_weekday,
    yearly,
    step,
    on_the_hour,
    unsupported,
    which_day,
]
