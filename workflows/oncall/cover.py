"""When someone's cover of a shift ends, as people say it in a sentence: a length (`2h`, `1h30m`,
`90分钟`, `3个小时`, `两个半小时`, `半小时`, `一天`) or a time of day (`18:00`, `18点`,
`下午6点半`, `今晚8点`, `明天早上9点`, `后天9:30`), with or without `到` before it.

    until("明天早上9点", now)           # 09:00 tomorrow, in now's zone
    until("替我值班3个小时", now)       # now + 3 h
    until("下周", now)                  # ValueError: names no end

A time of day without a day is the next one to come; with a day (今天, 明天, 后天) it must not
have passed. A length wins only when no time of day is named.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from workflows.oncall.spans import span

_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = r"\d{1,4}(?:\.\d{1,2})?|[零一二两三四五六七八九十]{1,4}"
_UNITS = {"d": 86400, "h": 3600, "m": 60}
_UNIT = {
    **dict.fromkeys(("天", "日", "d", "day", "days"), "d"),
    **dict.fromkeys(("小时", "钟头", "h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("分钟", "分", "m", "min", "mins", "minute", "minutes"), "m"),
}
_LENGTH = re.compile(
    rf"(?:(?P<n>{_NUMBER})\s*个?\s*(?P<half>半)?|(?P<only>半)\s*个?)\s*"
    r"(?P<unit>小时|钟头|分钟|分|天|日|hours?|hrs?|minutes?|mins?|days?|[hmd])(?![A-Za-z])",
    re.IGNORECASE,
)
_DAY = {"今天": 0, "今日": 0, "今晚": 0, "明天": 1, "明日": 1, "明早": 1, "明晚": 1, "后天": 2}
_EVENING = ("下午", "傍晚", "晚上", "夜里", "夜间", "今晚", "明晚")
_CLOCK = re.compile(
    r"(?P<day>今天|今日|今晚|明天|明日|明早|明晚|后天)?\s*"
    r"(?P<part>凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|夜间)?\s*"
    r"(?P<h>\d{1,2}|[零一二两三四五六七八九十]{1,3})\s*"
    r"(?:[:：]\s*(?P<m>\d{2})|[点時时]\s*(?:(?P<half>半)|(?P<mm>\d{1,2}|[零一二三四五六七八九十]{1,3})\s*分?)?)"
)


def number(text: str) -> float:
    """`12`, `1.5`, `十二`, `二十四`, `两` as a number; ValueError otherwise."""
    if text[:1].isdigit():
        return float(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        if len(text) > 3 or (tens and tens not in _DIGITS) or (ones and ones not in _DIGITS):
            raise ValueError(f"{text!r} is not a number")
        return float(_DIGITS.get(tens, 1) * 10 + _DIGITS.get(ones, 0))
    if len(text) != 1 or text not in _DIGITS:
        raise ValueError(f"{text!r} is not a number")
    return float(_DIGITS[text])


def until(text: str, now: datetime) -> datetime:
    """When the cover `text` names ends (aware, in `now`'s zone); ValueError when it names no
    end, or one that has passed."""
    found = _CLOCK.search(text)
    if found is not None:
        return _at(found, now)
    length = _length(text)
    if length <= timedelta(0):
        raise ValueError(f"{text!r} names no end")
    return now + length


def _length(text: str) -> timedelta:
    """The sum of the lengths `text` names (`1h30m`, `1小时30分钟`); zero when none."""
    seconds = 0.0
    for found in _LENGTH.finditer(text):
        count = 0.5 if found["only"] else number(found["n"]) + (0.5 if found["half"] else 0.0)
        seconds += count * _UNITS[_UNIT[found["unit"].lower()]]
    if not seconds:
        compact = [word for word in text.split() if re.fullmatch(r"[\dhmsd]+", word.lower())]
        seconds = sum(span(word).total_seconds() for word in compact)
    return timedelta(seconds=seconds)


def _at(found: re.Match[str], now: datetime) -> datetime:
    hour = int(number(found["h"]))
    minute = 30 if found["half"] else int(number(found["m"] or found["mm"] or "0"))
    part = found["part"] or found["day"] or ""
    if (part in _EVENING and hour < 12) or (part == "中午" and hour < 6):
        hour += 12
    elif part == "凌晨" and hour == 12:
        hour = 0
    extra = 0
    if hour == 24 and minute == 0:
        hour, extra = 0, 1
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{found[0]!r} is not a time of day")
    day = found["day"]
    local = now.astimezone(now.tzinfo)
    date = local.date() + timedelta(days=_DAY[day] + extra if day else extra)
    end = datetime.combine(date, time(hour, minute), tzinfo=local.tzinfo)
    if end <= local:
        if day:
            raise ValueError(f"{found[0]!r} has passed")
        end += timedelta(days=1)
    return end
