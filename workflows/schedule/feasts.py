"""Festivals and holidays named in a text, in either language: 除夕, 春节, 中秋, 国庆, 元旦…
(their day from `holidays`, the lunar calendar where it fixes one), and the fixed-date ones
English speakers name (Christmas, New Year's Eve, Halloween…); a date of one ("10-01 国庆")
is the same day said twice. A one-off is the coming one;
with 每年 / "every year" it repeats (see `cycles`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from workflows.schedule.days import NthWeekdays
from workflows.schedule.pieces import Feast, Piece, Recur, rule

ZH_FEASTS = {
    "除夕": "chuxi",
    "大年三十": "chuxi",
    "年三十": "chuxi",
    "春节": "chunjie",
    "大年初一": "chunjie",
    "正月初一": "chunjie",
    "元宵节": "yuanxiao",
    "元宵": "yuanxiao",
    "正月十五": "yuanxiao",
    "端午节": "duanwu",
    "端午": "duanwu",
    "七夕节": "qixi",
    "七夕": "qixi",
    "中秋节": "zhongqiu",
    "中秋": "zhongqiu",
    "重阳节": "chongyang",
    "重阳": "chongyang",
    "腊八节": "laba",
    "腊八": "laba",
    "国庆节": "guoqing",
    "国庆": "guoqing",
    "元旦": "yuandan",
    "劳动节": "laodong",
    "五一劳动节": "laodong",
    "清明节": "qingming",
    "清明": "qingming",
    "圣诞节": "christmas",
    "圣诞": "christmas",
    "平安夜": "christmas_eve",
    "跨年夜": "new_years_eve",
    "情人节": "valentines",
    "万圣节": "halloween",
    "三八妇女节": "womens_day",
    "妇女节": "womens_day",
    "植树节": "arbor_day",
    "愚人节": "april_fools",
    "五四青年节": "youth_day",
    "青年节": "youth_day",
    "六一儿童节": "childrens_day",
    "儿童节": "childrens_day",
    "六一": "childrens_day",
    "建党节": "party_day",
    "建军节": "army_day",
    "教师节": "teachers_day",
    "双十一": "singles_day",
    "双11": "singles_day",
    "光棍节": "singles_day",
    "双十二": "double_twelve",
    "双12": "double_twelve",
}
ZH_NTH_FEASTS = {"母亲节": ((2, "sun"), 5), "父亲节": ((3, "sun"), 6), "感恩节": ((4, "thu"), 11)}
"""Festivals on the n-th weekday of a month (yearly)."""
EN_FEASTS = {
    "chinese new year's eve": "chuxi",
    "lunar new year's eve": "chuxi",
    "chinese new year": "chunjie",
    "lunar new year": "chunjie",
    "spring festival": "chunjie",
    "lantern festival": "yuanxiao",
    "dragon boat festival": "duanwu",
    "mid-autumn festival": "zhongqiu",
    "mid autumn festival": "zhongqiu",
    "moon festival": "zhongqiu",
    "double ninth festival": "chongyang",
    "qingming festival": "qingming",
    "tomb-sweeping day": "qingming",
}
EN_FEASTS.update(
    {
        "christmas eve": "christmas_eve",
        "christmas day": "christmas",
        "christmas": "christmas",
        "xmas": "christmas",
        "new year's eve": "new_years_eve",
        "new years eve": "new_years_eve",
        "new year's day": "yuandan",
        "new years day": "yuandan",
        "halloween": "halloween",
        "valentine's day": "valentines",
        "valentines day": "valentines",
        "independence day": "independence",
        "boxing day": "boxing",
    }
)


def alternatives(words: Mapping[str, object]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@rule(
    r"(?:(?P<y>\d{4})\s*年\s*(?:的)?|(?P<rel>今年|明年|后年)\s*(?:的)?)?"
    rf"(?P<name>{alternatives(ZH_FEASTS)})(?:那天|当天|这天)?(?![假期间前后])"
)
def zh_feast(match: re.Match[str]) -> list[Piece]:
    """除夕, 中秋节当天, 2027年春节, 明年元旦."""
    name = ZH_FEASTS[match.group("name")]
    year = int(match.group("y")) if match.group("y") else None
    ahead = {"今年": 0, "明年": 1, "后年": 2}.get(match.group("rel") or "")
    return [Feast(match.start(), match.end(), name, year, ahead)]


@rule(
    rf"\b(?:on\s+)?(?:the\s+)?(?P<w>{alternatives(EN_FEASTS)})"
    r"(?:\s+day)?\b(?!\s+(?:party|sale|holiday|break|week))",
    re.IGNORECASE,
)
def en_feast(match: re.Match[str]) -> list[Piece]:
    word = " ".join(match.group("w").lower().replace("’", "'").split())
    return [Feast(match.start(), match.end(), EN_FEASTS[word])]


@rule(
    rf"(?:{alternatives(ZH_NTH_FEASTS)})(?:那天|当天|这天)?"
    r"|\b(?:on\s+)?(?P<en>mother'?s\s+day|father'?s\s+day)\b",
    re.IGNORECASE,
)
def nth_feast(match: re.Match[str]) -> list[Piece]:
    """母亲节 (the second Sunday of May), 父亲节, 感恩节: yearly, on that weekday."""
    word = (match.group("en") or "").lower()
    name = "母亲节" if word.startswith("mother") else "父亲节" if word else match.group(0)[:3]
    (nth, day), month = ZH_NTH_FEASTS[name]
    return [Recur(match.start(), match.end(), NthWeekdays(((nth, day),)), (month,))]
