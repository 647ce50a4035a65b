"""The Chinese grammar of times and dates: regex rules that turn 早上9点, 九点半,
两点十五, 十二点一刻, 今晚12点, 9点到18点, 明天, 下周一, 12月25日, 30分钟后,
半小时后 … into pieces (see `pieces`); repetition (每天, 工作日, 每月最后一天,
每30分钟…) is in `zh_repeats`.

Numbers may be digits or Chinese numerals. Single-character parts of the day (早9点, 晚8点)
are read only when they do not belong to 今晚/明早/每晚. See `clock` for how hours are read.
"""

from __future__ import annotations

import re

from workflows.schedule.clock import ZH_PERIODS
from workflows.schedule.numerals import NUMBER, number
from workflows.schedule.pieces import (
    After,
    Clock,
    DateOf,
    DayShift,
    Feast,
    Period,
    Piece,
    Routine,
    Span,
    Unclear,
    WeekdayDate,
    rule,
)

WEEK = "(?:周|星期|礼拜)"
DAY_CHAR = "[一二三四五六日天1-7]"
DAY = r"(?:[一二三四五六日天](?![点时分次遍回])|[1-7](?![点时:：\d分次遍回]))"
EVERY = "(?:每(?:个|一个|一)?|每逢|逢)"
JOIN = r"\s*(?:[、,，/和及与跟或]|以及)\s*"
RANGE = r"\s*(?:到|至|~|～|-|—|–)\s*"
_TWO_CHAR_PERIODS = "|".join(sorted((p for p in ZH_PERIODS if len(p) > 1), key=len, reverse=True))
PERIOD = rf"(?:{_TWO_CHAR_PERIODS}|(?<![今明昨每])[早晚](?![上晨间饭餐点安]))"
_NOT_MINUTE = "(?![个次条人台号天日月年周小秒钟位项份件]|[0-9])"


def weekday_index(char: str) -> int:
    """周一 → 0 … 周日/周天 → 6."""
    if char.isdigit():
        return (int(char) - 1) % 7
    return "一二三四五六日".index("日" if char == "天" else char)


def clock_fragment(tag: str) -> str:
    """A Chinese time of day with named groups suffixed by `tag` (several in one regex)."""
    return (
        rf"(?:(?P<p{tag}>{PERIOD})\s*)?"
        rf"(?:(?P<h{tag}>{NUMBER})\s*(?:点钟?|时(?![间候刻]))"
        rf"(?:(?P<half{tag}>半)|(?P<qa{tag}>一刻)|(?P<qc{tag}>三刻)|(?P<whole{tag}>整)"
        rf"|过?(?P<m{tag}>{NUMBER})(?:分(?!钟)|{_NOT_MINUTE}))?"
        rf"|(?P<hh{tag}>\d{{1,2}})[:：](?P<mm{tag}>\d{{2}})(?!\d)(?P<mf{tag}>分(?!钟))?"
        rf"(?P<wz{tag}>\s*整)?)"
    )


def _span(match: re.Match[str], groups: tuple[str, ...]) -> tuple[int, int]:
    starts = [match.start(g) for g in groups if match.group(g) is not None]
    ends = [match.end(g) for g in groups if match.group(g) is not None]
    return min(starts), max(ends)


WEAK_HOURS = ("一", "二", "两", "俩", "三", "几")
"""Chinese-numeral hours that are often plain words (一点, 两点建议, 三点要求)."""


def clock_of(match: re.Match[str], tag: str = "") -> Clock | None:
    """The Clock the fragment `tag` matched, or None when its numbers are not a time."""
    names = ("p", "h", "half", "qa", "qc", "whole", "m", "hh", "mm", "mf", "wz")
    start, end = _span(match, tuple(name + tag for name in names))
    period = match.group(f"p{tag}")
    period_name = ZH_PERIODS.get(period) if period else None
    if match.group(f"hh{tag}") is not None:
        hours, minutes = int(match.group(f"hh{tag}")), int(match.group(f"mm{tag}"))
        return Clock(start, end, hours, minutes, "zh", period=period_name)
    written = match.group(f"h{tag}")
    hour = number(written)
    if hour is None:
        return None
    minute = 0
    minutes_written = True
    if match.group(f"half{tag}"):
        minute = 30
    elif match.group(f"qa{tag}"):
        minute = 15
    elif match.group(f"qc{tag}"):
        minute = 45
    elif match.group(f"m{tag}"):
        value = number(match.group(f"m{tag}"))
        if value is None:
            return None
        minute = value
    elif not match.group(f"whole{tag}"):
        minutes_written = False
    strong_period = period is not None and len(period) > 1
    weak = written in WEAK_HOURS and not (minutes_written or strong_period)
    bare = period is None  # 3点开会: the small hours or the afternoon?
    return Clock(start, end, hour, minute, "zh", period=period_name, bare=bare, weak=weak)


@rule(r"(?<!双)(?<!双十)" + clock_fragment(""))
def clock(match: re.Match[str]) -> list[Piece]:
    found = clock_of(match)
    return [found] if found else []


@rule(
    r"(?:(?<![今明昨每])(?P<p>[早晚])|(?<=[今明每][早晚]))\s*(?P<h>1?\d|2[0-3])"
    r"(?![\d点时:：.．分个次号天日月年周小秒钟位项份件%])"
)
def clipped(match: re.Match[str]) -> list[Piece]:
    """早9, 晚8, 每晚8 (chat shorthand without 点): the hour in that part of the day."""
    word = match.group("p") or match.string[match.start() - 1]
    hour = int(match.group("h"))
    return [Clock(match.start(), match.end(), hour, 0, "zh", period=ZH_PERIODS[word])]


@rule(
    r"(?<=[上午晚早晨里天日号一二三四五六末])\s*(?P<h>[01]?\d|2[0-3])[.．](?P<m>[0-5]\d)(?![\d.])"
)
def dotted(match: re.Match[str]) -> list[Piece]:
    """每天9.30, 早上8.45: a dot for the colon, right after a day or a part of the day (not in
    a version number: 升级到1.20)."""
    hour, minute = int(match.group("h")), int(match.group("m"))
    return [Clock(match.start("h"), match.end(), hour, minute, "zh")]


_BEFORE = rf"(?:(?P<q>一刻)|(?P<m>{NUMBER})\s*分钟?)"


@rule(
    rf"(?:(?P<p>{PERIOD})\s*)?(?:差\s*{_BEFORE}\s*(?P<h>{NUMBER})\s*点"
    rf"|(?P<h2>{NUMBER})\s*点\s*差\s*{_BEFORE.replace('<q>', '<q2>').replace('<m>', '<m2>')})"
)
def minutes_to(match: re.Match[str]) -> list[Piece]:
    """差五分十点, 十点差一刻: minutes before the hour (09:55, 09:45)."""
    hour = number(match.group("h") or match.group("h2"))
    written = match.group("m") or match.group("m2")
    minutes = 15 if match.group("q") or match.group("q2") else number(written or "")
    if hour is None or minutes is None or not 1 <= minutes <= 59 or not 1 <= hour <= 24:
        return []
    if hour == 1:  # 差五分一点: 00:55 or 12:55?
        return [Unclear(match.start(), match.end(), "ambiguous", "noon_or_midnight")]
    period = match.group("p")
    name = ZH_PERIODS.get(period) if period else None
    found = Clock(match.start(), match.end(), hour - 1, 60 - minutes, "zh", period=name)
    return [found]


@rule(
    rf"(?:从|在)?\s*(?:{clock_fragment('a')}|(?P<bare>\d{{1,2}})){RANGE}"
    rf"(?:次日|第二天|隔天|翌日|明天|明日)?\s*{clock_fragment('b')}"
    r"\s*(?:之间|期间|以内|内|这段时间)?"
)
def window(match: re.Match[str]) -> list[Piece]:
    last = clock_of(match, "b")
    if last is None:
        return []
    if match.group("bare") is not None:
        first: Clock | None = Clock(
            match.start("bare"), match.end("bare"), int(match.group("bare")), 0, "zh"
        )
    else:
        first = clock_of(match, "a")
    if first is None:
        return []
    return [Span(match.start(), match.end(), first, last)]


def amount_of(text: str | None) -> float | None:
    if text is None:
        return 1
    if text == "半":
        return 0.5
    if text.endswith("个半"):
        whole = number(text[:-2])
        return None if whole is None else whole + 0.5
    value = number(text)
    return None if value is None else float(value)


DAY_WORDS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
DAY_WORDS.update({"今儿": 0, "今儿个": 0, "明儿": 1, "明儿个": 1, "后儿": 2, "后儿个": 2})
"""Days by name, with the spoken northern forms people type in chat (明儿, 今儿个)."""
DAY_PERIODS = {"今早": (0, "morning"), "明早": (1, "morning"), "今晚": (0, "evening")}
DAY_PERIODS.update({"明晚": (1, "evening"), "今夜": (0, "evening"), "明夜": (1, "evening")})


@rule(r"大后天|后天|今天|今日|明天|明日|[今明后]儿个?|今早|明早|今晚|明晚|今夜|明夜")
def day_word(match: re.Match[str]) -> list[Piece]:
    word = match.group(0)
    if word in DAY_WORDS:
        return [DayShift(match.start(), match.end(), DAY_WORDS[word])]
    days, period = DAY_PERIODS[word]
    return [
        DayShift(match.start(), match.start() + 1, days),
        Period(match.start() + 1, match.end(), period),
    ]


@rule(rf"(?<![每逢])(?P<which>下下个?|下个?|这个?|本|上个?)?{WEEK}(?P<w>{DAY_CHAR})(?![次遍回])")
def weekday_date(match: re.Match[str]) -> list[Piece]:
    which = match.group("which") or ""
    weekday = weekday_index(match.group("w"))
    if which.startswith("上"):
        return [Unclear(match.start(), match.end(), "impossible", "past")]
    week = 2 if which.startswith("下下") else 1 if which.startswith("下") else None
    week = 0 if which.startswith(("这", "本")) else week
    return [WeekdayDate(match.start(), match.end(), weekday, week)]


YEAR = r"(?:(?P<y>\d{4}|[零〇一二三四五六七八九]{4})\s*年|(?P<rel>今年|明年|后年))\s*(?:的)?\s*"
YEARS_AHEAD = {"今年": 0, "明年": 1, "后年": 2}


def _year(match: re.Match[str]) -> tuple[int | None, int | None]:
    """(year, years ahead) of the `YEAR` fragment."""
    if match.group("rel"):
        return None, YEARS_AHEAD[match.group("rel")]
    return (number(match.group("y")) if match.group("y") else None), None


@rule(
    rf"(?:{YEAR})?(?P<m>{NUMBER})\s*月(?:份)?\s*(?P<d>{NUMBER})\s*(?:[号日]|(?![\d号日个])"
    r"(?=\s*(?:\d{1,2}[:：]\d{2}|\d{1,2}\s*[点时]|[零一二两三四五六七八九十]{1,3}\s*[点时]"
    r"|[早上中下晚凌傍夜午]|\s|$)))"
)
def month_day(match: re.Match[str]) -> list[Piece]:
    month, day = number(match.group("m")), number(match.group("d"))
    year, ahead = _year(match)
    if month is None or day is None:
        return []
    return [DateOf(match.start(), match.end(), day, month, year, years_ahead=ahead)]


LAST = r"(?:的)?\s*(?:最后一天|最后1天|末日)"


@rule(
    rf"(?<!每)(?:{YEAR})?(?:(?P<m>{NUMBER})\s*月(?:份)?)?{LAST}|(?P<which>下个?月|这个?月|本月){LAST}"
    r"|(?<![每个])(?P<end>(?:下个?|这个?|本)?月(?:底|末))(?![班])"
)
def last_day(match: re.Match[str]) -> list[Piece]:
    """2026年最后一天, 今年最后一天, 3月最后一天, 下个月最后一天, 月底, 下个月底."""
    year, ahead = _year(match)
    which = match.group("which") or match.group("end")
    if not (which or match.group("m") or match.group("y") or match.group("rel")):
        return []
    if which:
        following = which.startswith("下")
        return [DateOf(match.start(), match.end(), 31, next_month=following, last=True)]
    month = 12 if match.group("m") is None else number(match.group("m"))
    if month is None or not 1 <= month <= 12:
        return []
    return [DateOf(match.start(), match.end(), 31, month, year, years_ahead=ahead, last=True)]


@rule(rf"(?P<next>下个?月|这个?月|本月)(?:的)?\s*(?P<d>{NUMBER})\s*[号日]")
def day_next_month(match: re.Match[str]) -> list[Piece]:
    day = number(match.group("d"))
    if day is None:
        return []
    following = match.group("next").startswith("下")
    return [DateOf(match.start(), match.end(), day, next_month=following)]


@rule(
    rf"(?<![\d月第每])(?P<d>{NUMBER})\s*[号日]"
    r"(?![机楼线库台服房柜位口端池盘卡区门车志报期常内前后来之子元])"
)
def bare_day(match: re.Match[str]) -> list[Piece]:
    day = number(match.group("d"))
    if day is None:
        return []
    return [DateOf(match.start(), match.end(), day)]


LATIN_UNIT = r"(?i:min(?:ute)?s?|m|hours?|hrs?|h|days?|d|sec(?:ond)?s?|s)(?![A-Za-z])"
"""每隔 15 min, 2h后: the Latin units people mix into Chinese (`unit_word` names them)."""
_LATIN_UNITS = {"m": "分钟", "h": "小时", "d": "天", "s": "秒"}


def unit_word(written: str) -> str:
    """The Chinese unit word of a unit as written (a Latin one as its Chinese word)."""
    if not written.isascii():
        return written
    return _LATIN_UNITS[written.lower()[0]]


RELATIVE_UNITS = {"分钟": 1, "分": 1, "小时": 60, "钟头": 60, "刻钟": 15}
RELATIVE_UNITS.update({"天": 1440, "日": 1440, "周": 10080, "星期": 10080, "礼拜": 10080})


@rule(
    rf"(?:过\s*)?(?P<h>{NUMBER})\s*个?\s*(?:小时|钟头)\s*(?:零|又)?\s*(?P<m>{NUMBER})\s*分钟?"
    r"\s*(?:后|以后|之后)"
)
def relative_hours_minutes(match: re.Match[str]) -> list[Piece]:
    """1小时30分钟后, 两个小时零五分钟后."""
    hours, minutes = number(match.group("h")), number(match.group("m"))
    if hours is None or minutes is None or minutes >= 60 or hours * 60 + minutes >= 1440:
        return []
    return [After(match.start(), match.end(), hours * 60 + minutes)]


@rule(
    rf"(?:过\s*)?(?P<n>{NUMBER}|半|一个半|{NUMBER}个半|几)\s*个?\s*"
    rf"(?P<u>分钟|小时|钟头|刻钟|天|日|周|星期|礼拜|{LATIN_UNIT})\s*(?:后|以后|之后)"
    rf"|过\s*(?P<n2>{NUMBER}|半|几)\s*个?\s*(?P<u2>分钟|小时|钟头|刻钟|天|周|星期|礼拜)"
)
def relative(match: re.Match[str]) -> list[Piece]:
    amount = match.group("n") or match.group("n2")
    unit = unit_word(match.group("u") or match.group("u2"))
    if unit not in RELATIVE_UNITS:  # 30s后: seconds are no delay a job takes
        return []
    if amount == "几":
        return [Unclear(match.start(), match.end(), "vague", "when")]
    value = amount_of(amount)
    if value is None:
        return []
    minutes = value * RELATIVE_UNITS[unit]
    if minutes >= 1440 and minutes % 1440 == 0:
        return [DayShift(match.start(), match.end(), int(minutes // 1440))]
    if minutes != int(minutes) or minutes >= 1440:
        return [Unclear(match.start(), match.end(), "vague", "when")]
    return [After(match.start(), match.end(), int(minutes))]


@rule(_TWO_CHAR_PERIODS)
def period(match: re.Match[str]) -> list[Piece]:
    return [Period(match.start(), match.end(), ZH_PERIODS[match.group(0)])]


VAGUE = (
    r"一会儿?|待会儿?|等会儿?|稍后|晚点|晚些时候|回头|过几天|改天|有空|抽空|尽快"
    r"|(?:每个?|每一个)(?:月|年|季度?)(?:的)?(?:初(?![一二三四五六七八九十])|中旬|中(?=[\s,，上下早晚凌傍中午\d]|$))"
    r"|月初|月中|年底|年初"
    r"|这周末|本周末|下周末|下个?星期(?![一二三四五六日天1-7])|下周(?![一二三四五六日天1-7末])"
    r"|下个?月(?!\d|[零〇一二两三四五六七八九十]|的|份)"
)


LUNAR_MONTH = rf"(?P<lm>正|冬|腊|{NUMBER})月"
LUNAR_DAY = (
    r"(?P<ld>初[一二三四五六七八九十]|十[一二三四五六七八九]|二十[一二三四五六七八九]?"
    r"|廿[一二三四五六七八九]|三十|[十二]十)"
)


@rule(
    rf"(?:农历|阴历)\s*{LUNAR_MONTH}\s*{LUNAR_DAY}"
    rf"|(?P<named>腊|冬)月\s*{LUNAR_DAY.replace('ld', 'ld2')}"
)
def lunar_day(match: re.Match[str]) -> list[Piece]:
    """农历八月十五, 腊月二十三: that day of the lunar calendar (the coming one, or yearly)."""
    month_text = match.group("lm") or match.group("named")
    month = {"正": 1, "冬": 11, "腊": 12}.get(month_text) or number(month_text)
    day_text = (match.group("ld") or match.group("ld2")).replace("廿", "二十").removeprefix("初")
    day = number(day_text)
    if month is None or day is None or not (1 <= month <= 12 and 1 <= day <= 30):
        return []
    return [Feast(match.start(), match.end(), f"lunar-{month}-{day}")]


@rule(
    r"(?P<p1>早上|早晨|上午|早)\s*(?:和|与|、|跟|及)?\s*(?P<p2>晚上|下午|傍晚|晚)\s*(?:各)?\s*"
    rf"(?P<h>{NUMBER})\s*[点时](?:(?P<half>半)|(?P<m>{NUMBER})分?)?"
)
def two_periods(match: re.Match[str]) -> list[Piece]:
    """早晚8点, 早上和晚上8点: the hour in both parts of the day."""
    hour = number(match.group("h"))
    minute = 30 if match.group("half") else number(match.group("m") or "0")
    if hour is None or minute is None or not 1 <= hour <= 12 or minute > 59:
        return []
    first, second = ZH_PERIODS[match.group("p1")], ZH_PERIODS[match.group("p2")]
    return [
        Clock(match.start(), match.start("p2"), hour, minute, "zh", period=first),
        Clock(match.start("p2"), match.end(), hour, minute, "zh", period=second),
    ]


@rule(
    rf"(?:过\s*)?(?:{NUMBER}|半|几)\s*个\s*月\s*(?:后|以后|之后)|(?:{NUMBER}|几)\s*年\s*(?:后|以后|之后)"
)
def months_later(match: re.Match[str]) -> list[Piece]:
    """3个月后, 一年后: which day exactly? (ask)."""
    return [Unclear(match.start(), match.end(), "vague", "when")]


@rule(r"(?<=[点半刻])\s*(?:之前|以前|前|之后|以后|后)(?![天面后年])|(?<=分)\s*(?:之前|以前)")
def around(match: re.Match[str]) -> list[Piece]:
    """3点半之前, 下午3点以后: some time before or after it, not at it (asked)."""
    return [Unclear(match.start(), match.end(), "vague", "before_after")]


ROUTINE = r"[上下]班[前后时]|午饭[前后]|饭[前后]|睡前|睡觉前"


@rule(ROUTINE)
def routine(match: re.Match[str]) -> list[Piece]:
    """下班前, 饭后: when exactly? (asked, unless a time of day is written with it)."""
    return [Routine(match.start(), match.end(), "vague", "when")]


@rule(VAGUE)
def vague(match: re.Match[str]) -> list[Piece]:
    """一会儿, 月初, 每月初 (a repeating day not named: which day? not when?)."""
    topic = "which_day" if match.group(0).startswith("每") else "when"
    return [Unclear(match.start(), match.end(), "vague", topic)]


RULES = [
    clock,
    around,
    minutes_to,
    dotted,
    clipped,
    window,
    day_word,
    weekday_date,
    month_day,
    last_day,
    day_next_month,
    bare_day,
    relative,
    relative_hours_minutes,
    period,
    lunar_day,
    months_later,
    two_periods,
    vague,
    routine,
]
CUES = re.compile(r"提醒|定时|定期|闹钟|叫我|通知我|记得|别忘|日程|预约")
"""Words asking for a schedule even when no time could be read (then: ask when)."""
PAST = re.compile(r"昨天|前天|昨晚|上周|上个?月|刚才|去年")
QUESTION = re.compile(r"[?？]|什么|吗|为什么|怎么|多少|哪些|哪个|是否|有没有|几点了")
REMARK = re.compile(
    r"(?:每|天天|总是|老是)[^，。,.!！?？;；]{0,8}?(?:都|总|老|一直|经常|又)\s*(?:会|在)?\s*"
    r"(?:有|是|这样|那样|报错|报警|告警|出问题|出错|挂|炸|超时|失败|卡|抖)"
    r"|(?<!别)(?<!不要)太(?:频繁|多|吵|烦|密)了|[烦吵]死了"
)
"""A repetition said of what happens, not asked for (这个告警每天都有, 每次都超时), or judged
(每5分钟跑一次，太频繁了): a remark."""
DONE = re.compile(r"(?:了[吗吧呢没啊]?|没有?)[\s。.!！?？~～]*$")
"""A sentence ending on what was done or not (取消了, 处理了没): with the time naming a thing
(明天10点的会议取消了), news about it, not a request."""
