"""The Chinese grammar of repetition: 每天, 工作日, 周末, 每周一三五, 周一到周五, 每月1号和15号,
每月最后一天, 每月第一个周一, 每年12月25日, 每30分钟, 每隔一天 … (see `zh` for times and dates).
"""

from __future__ import annotations

import re
from typing import Literal

from workflows.schedule.clock import ZH_PERIODS
from workflows.schedule.dates import date_problem
from workflows.schedule.numerals import NUMBER, number
from workflows.schedule.pieces import (
    Cycle,
    DateOf,
    Minute,
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
from workflows.schedule.zh import (
    DAY,
    DAY_CHAR,
    EVERY,
    JOIN,
    LATIN_UNIT,
    RANGE,
    WEEK,
    amount_of,
    unit_word,
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
    rf"|(?<![下这本上每逢]){WEEK}(?P<bare>{DAY}(?:(?:{JOIN})?{WEEK}{DAY})+|{DAY}(?:(?:{JOIN})?{DAY})+)"
)
def weekly(match: re.Match[str]) -> list[Piece]:
    """每周一三五, 每周二到周四, and a bare list 周二周四 / 周二和周四 / 周一三五 (a list of days
    repeats: there is no one-shot on several days)."""
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
DAY_JOIN = rf"(?:\s*[号日]?{JOIN}|\s*[号日]\s*)"
"""Between two days of a list: 和/、/, (the 号 optional), or a 号 alone (5号15号25号)."""
LAST_DAY = "(?:最后一天|最后1天|月底|月末|底|末)"


@rule(
    rf"{MONTH_PREFIX}(?P<days>{NUMBER}(?:{DAY_JOIN}{NUMBER})*)\s*[号日]"
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
    r"(?P<u>分钟|分(?!之)|小时|钟头|刻钟|天|日|秒钟?"
    rf"|{LATIN_UNIT})(?:一次|一回)?"
)
def step(match: re.Match[str]) -> list[Piece]:
    if match.group("u").isascii() and match.group("n") is None:
        return []  # 每 h…, 每s3: a Latin letter is a unit only after a number
    unit, amount = unit_word(match.group("u")), match.group("n")
    if unit.startswith("秒"):
        return [Unclear(match.start(), match.end(), "unsupported", "too_often")]
    if unit in ("天", "日") and amount is None and not match.group("gap"):
        return []
    value = amount_of(amount)
    if value is None:
        return []
    if unit in ("天", "日") and match.group("gap") and value == 1:
        value = 2  # 每隔一天: every other day; 每隔3天: every 3 days
    minutes = value * STEP_UNITS[unit]
    if minutes != int(minutes) or minutes < 1:
        return [Unclear(match.start(), match.end(), "unsupported", "too_often")]
    return [Step(match.start(), match.end(), int(minutes))]


@rule(r"每个?整点|每小时整点")
def on_the_hour(match: re.Match[str]) -> list[Piece]:
    return [Step(match.start(), match.end(), 60)]


_AND = r"\s*(?:和|及|与|、|或|跟|/)\s*"
_OFF = rf"(?:(?:周末|双休日?|休息日){_AND})?(?:法定)?节假日(?:{_AND}(?:周末|双休日?))?"
_WEEKEND = r"(?:周末|双休日?|周六日|周六周日|周六、周日|星期六日)"
_SKIP = (
    r"(?:(?:都|均|一律)\s*)?(?:除外|不提醒|不执行|不运行|不跑|不发|不用发?|不用执行|跳过|休息|暂停)"
)
_EXCEPT = r"(?:不含|不包括|跳过|避开|除去|除了?)"


@rule(
    rf"[（(]?\s*(?:{_OFF}{_SKIP}|{_EXCEPT}\s*{_OFF}(?:以外|之外|外)?|遇(?:到)?{_OFF}{_SKIP})\s*[）)]?"
    r"|[（(]\s*(?:含|包括|包含)?\s*(?:调休|补班)(?:日|上班日?)?[^（()）]{0,6}[）)]"
    r"|[（(]\s*(?:按|以)?\s*(?:国家|国务院)?\s*法定(?:节假日|工作日|日历)?(?:安排|为准)?\s*[）)]"
    r"|调休(?:上班|补班)日?(?:也|照常|正常)?(?:要)?(?:执行|上班|提醒|运行|发)"
)
def skip_holidays(match: re.Match[str]) -> list[Piece]:
    """节假日除外, 不含节假日, 周末和节假日不执行, (含调休), 调休上班日也执行: only on the working
    days of China's calendar (see `cycles`)."""
    return [SkipHolidays(match.start(), match.end())]


@rule(rf"[（(]?\s*(?:{_WEEKEND}{_SKIP}|{_EXCEPT}\s*{_WEEKEND}(?:以外|之外|外)?)\s*[）)]?")
def skip_weekends(match: re.Match[str]) -> list[Piece]:
    """周末除外, 除了周末, 跳过双休: Monday to Friday (每天9点，周末除外)."""
    return [SkipWeekends(match.start(), match.end())]


UNSUPPORTED = r"单周|顺延|非工作日|除了|除外|以外的|不包括"


@rule(UNSUPPORTED)
def unsupported(match: re.Match[str]) -> list[Piece]:
    return [Unclear(match.start(), match.end(), "unsupported", "unsupported")]


@rule(
    r"每个?季度?(?:的)?(?P<qlast>最后一天|末|最后1天)"
    rf"|(?P<two>双周|隔周)|每(?P<gap>隔)?\s*(?P<n>{NUMBER}|半)?\s*个?\s*"
    rf"(?P<u>{WEEK}|月(?![底末初中份])|季度|季(?!度)|年)(?:一次|一回)?"
    rf"(?:\s*(?:的|份的)?\s*(?P<d>{NUMBER})\s*[号日])?"
)
def cycle(match: re.Match[str]) -> list[Piece]:
    """每两周, 隔周, 每隔一个月, 每三个月, 每季度, 每半年, 每年 (the days come elsewhere)."""
    start, end = match.start(), match.end()
    pieces: list[Piece] = []
    if match.group("d"):
        day = number(match.group("d"))
        if day is None or not 1 <= day <= 31:
            return []
        end = match.start("d")
        pieces = [DateOf(end, match.end(), day)]
    if match.group("two"):
        return [Cycle(start, end, "week", 2)]
    if match.group("qlast"):
        return [Cycle(start, end, "quarter", last=True)]
    unit_text = match.group("u")
    amount = match.group("n")
    if amount == "半":
        return [Cycle(start, end, "month", 6)] if unit_text == "年" else []
    count = 1 if amount is None else number(amount)
    if count is None or count < 1:
        return []
    if match.group("gap") and count == 1:
        count = 2  # 每隔一周: every other week
    if unit_text.startswith("季"):
        return [Cycle(start, end, "quarter"), *pieces] if count == 1 else []
    unit: Literal["week", "month", "year"] = (
        "month" if unit_text == "月" else "year" if unit_text == "年" else "week"
    )
    if pieces and unit != "month":
        return []
    return [Cycle(start, end, unit, count), *pieces]


@rule(r"每个?季度?(?:的)?(?:第一天|第1天|首日|初)|每年(?:的)?(?P<y>第一天|最后一天)")
def quarter_or_year_edge(match: re.Match[str]) -> list[Piece]:
    """每季度第一天, 每年的最后一天."""
    if match.group("y") == "最后一天":
        return [Recur(match.start(), match.end(), MonthDays((), True), (12,))]
    if match.group("y"):
        return [Recur(match.start(), match.end(), MonthDays((1,)), (1,))]
    return [Recur(match.start(), match.end(), MonthDays((1,)), (1, 4, 7, 10))]


@rule(rf"{MONTH_PREFIX}(?P<n>第一个|第1个|首个|头一个|最后一个|最后1个|末个)\s*工作日")
def month_workday(match: re.Match[str]) -> list[Piece]:
    """每月第一个工作日, 每月首个工作日, 每月最后一个工作日 (the configured working-day
    calendar)."""
    nth = -1 if match.group("n").startswith(("最", "末")) else 1
    return [Recur(match.start(), match.end(), MonthWorkday(nth=nth, calendar="cn"))]


@rule(
    rf"(?:每年)?(?P<ms>{NUMBER}\s*月(?:(?:{JOIN}|{RANGE}){NUMBER}\s*月)*)(?:份)?"
    r"(?:的|里|中|期间|内)?(?=\s*(?:每|的每|工作日|周末|周[一二三四五六日天]))"
)
def in_months(match: re.Match[str]) -> list[Piece]:
    """3月的每周二, 12月每天, 3月和4月的工作日, 6月到8月的每周五."""
    values = [number(text) for text in re.findall(NUMBER, match.group("ms"))]
    if any(v is None or not 1 <= v <= 12 for v in values):
        return []
    months = [v for v in values if v is not None]
    if re.search(RANGE, match.group("ms")) and len(months) == 2:
        first, last = months
        months = (
            list(range(first, last + 1))
            if first <= last
            else [*range(first, 13), *range(1, last + 1)]
        )
    return [Months(match.start(), match.end(), tuple(sorted(set(months))))]


@rule(
    rf"(?<![\d月第每])(?P<list>{NUMBER}(?:{DAY_JOIN}{NUMBER})+)\s*[号日]"
    r"(?![机楼线库台服房柜位口端池盘卡区门车志报期常内前后来之子元])"
)
def month_day_list(match: re.Match[str]) -> list[Piece]:
    """10号和25号: a list of days repeats every month."""
    values = [number(text) for text in re.findall(NUMBER, match.group("list"))]
    if any(v is None or not 1 <= v <= 31 for v in values):
        return []
    days = tuple(sorted({v for v in values if v is not None}))
    return [Recur(match.start(), match.end(), MonthDays(days))]


@rule(
    rf"每(?:个|一个)?(?:小时|钟头)(?:的)?\s*(?:第)?(?:(?P<m>{NUMBER})\s*分钟?|(?P<half>半点|30分钟?))"
)
def minute_of_hour(match: re.Match[str]) -> list[Piece]:
    """每小时的15分, 每小时半点."""
    minute = 30 if match.group("half") else number(match.group("m") or "")
    if minute is None or not 0 <= minute <= 59:
        return []
    step = Step(match.start(), match.end(), 60)
    return [step, Minute(match.start(), match.end(), minute)]


@rule(rf"(?P<n>{NUMBER}|半|一个半)\s*个?\s*(?P<u>分钟|小时|钟头)\s*(?:一次|一回)")
def once_per(match: re.Match[str]) -> list[Piece]:
    """一小时一次, 30分钟一次: a step."""
    value = amount_of(match.group("n"))
    if value is None:
        return []
    minutes = value * STEP_UNITS[match.group("u")]
    if minutes != int(minutes) or minutes < 1:
        return []
    return [Step(match.start(), match.end(), int(minutes))]


@rule(r"(?:每天|一天|每日)(?:[两二三四五]|\d)次")
def times_a_day(match: re.Match[str]) -> list[Piece]:
    """每天两次 (at the times given)."""
    return [Recur(match.start(), match.end(), Daily())]


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
    cycle,
    quarter_or_year_edge,
    month_workday,
    in_months,
    month_day_list,
    minute_of_hour,
    times_a_day,
    skip_holidays,
    skip_weekends,
    once_per,
]
