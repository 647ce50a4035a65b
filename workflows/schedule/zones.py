"""Time zones named in a text: 北京时间, 纽约时间, UTC, UTC+8, New York time, PST, Europe/Berlin.

US abbreviations name the region's zone, daylight saving included: "EST", "EDT" and "ET" are all
America/New_York, "PST"/"PDT"/"PT" America/Los_Angeles (people say PST all year). "CST" and
"IST" name several zones and get a question. `UTC+8` is the fixed zone `Etc/GMT-8` (the IANA
sign is reversed).
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workflows.schedule.pieces import Piece, Unclear, Zone, rule

ZH_ZONES = {
    "北京": "Asia/Shanghai",
    "中国": "Asia/Shanghai",
    "上海": "Asia/Shanghai",
    "香港": "Asia/Hong_Kong",
    "台北": "Asia/Taipei",
    "东京": "Asia/Tokyo",
    "日本": "Asia/Tokyo",
    "首尔": "Asia/Seoul",
    "新加坡": "Asia/Singapore",
    "印度": "Asia/Kolkata",
    "悉尼": "Australia/Sydney",
    "伦敦": "Europe/London",
    "英国": "Europe/London",
    "柏林": "Europe/Berlin",
    "德国": "Europe/Berlin",
    "巴黎": "Europe/Paris",
    "法国": "Europe/Paris",
    "纽约": "America/New_York",
    "美东": "America/New_York",
    "美国东部": "America/New_York",
    "芝加哥": "America/Chicago",
    "美中": "America/Chicago",
    "洛杉矶": "America/Los_Angeles",
    "旧金山": "America/Los_Angeles",
    "硅谷": "America/Los_Angeles",
    "美西": "America/Los_Angeles",
    "美国西部": "America/Los_Angeles",
    "太平洋": "America/Los_Angeles",
    "格林尼治": "UTC",
    "格林威治": "UTC",
    "世界标准": "UTC",
    "协调世界": "UTC",
}
EN_ZONES = {
    "new york": "America/New_York",
    "ny": "America/New_York",
    "nyc": "America/New_York",
    "eastern": "America/New_York",
    "us eastern": "America/New_York",
    "chicago": "America/Chicago",
    "central": "America/Chicago",
    "los angeles": "America/Los_Angeles",
    "la": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles",
    "sf": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "pacific": "America/Los_Angeles",
    "us pacific": "America/Los_Angeles",
    "london": "Europe/London",
    "uk": "Europe/London",
    "berlin": "Europe/Berlin",
    "paris": "Europe/Paris",
    "amsterdam": "Europe/Amsterdam",
    "tokyo": "Asia/Tokyo",
    "japan": "Asia/Tokyo",
    "seoul": "Asia/Seoul",
    "singapore": "Asia/Singapore",
    "hong kong": "Asia/Hong_Kong",
    "beijing": "Asia/Shanghai",
    "china": "Asia/Shanghai",
    "shanghai": "Asia/Shanghai",
    "india": "Asia/Kolkata",
    "sydney": "Australia/Sydney",
}
ABBREVIATIONS = {
    "UTC": "UTC",
    "GMT": "UTC",
    "ET": "America/New_York",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "CT": "America/Chicago",
    "CDT": "America/Chicago",
    "PT": "America/Los_Angeles",
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "BST": "Europe/London",
    "CET": "Europe/Berlin",
    "CEST": "Europe/Berlin",
    "JST": "Asia/Tokyo",
    "KST": "Asia/Seoul",
    "SGT": "Asia/Singapore",
    "HKT": "Asia/Hong_Kong",
    "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney",
}
AMBIGUOUS = ("CST", "IST")


def known(name: str) -> bool:
    """Whether `name` is an IANA zone this system knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _alternatives(names: dict[str, str]) -> str:
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


def _offset_zone(sign: str, hours: str) -> str | None:
    value = int(hours)
    if value == 0:
        return "UTC"
    if value > 14:
        return None
    return f"Etc/GMT{'-' if sign == '+' else '+'}{value}"


@rule(rf"(?:用|按|按照|以)?(?P<place>{_alternatives(ZH_ZONES)})(?:标准)?时间")
def zh_zone(match: re.Match[str]) -> list[Piece]:
    return [Zone(match.start(), match.end(), ZH_ZONES[match.group("place")])]


@rule(
    rf"\b(?:in\s+|at\s+)?(?P<place>{_alternatives(EN_ZONES)})\s+(?:standard\s+)?time\b",
    re.IGNORECASE | re.ASCII,
)
def en_zone(match: re.Match[str]) -> list[Piece]:
    return [Zone(match.start(), match.end(), EN_ZONES[match.group("place").lower()])]


@rule(
    r"(?:\b(?:in\s+)?)?(?<![A-Za-z])(?P<abbr>UTC|GMT)\s*(?P<sign>[+-])\s*(?P<hours>\d{1,2})"
    r"(?:[:：]?(?P<minutes>\d{2}))?(?![\d:])(?:\s*时间)?"
)
def offset_zone(match: re.Match[str]) -> list[Piece]:
    """UTC+8, GMT-5, UTC+08:00; an offset with minutes (UTC+05:30) has no fixed IANA zone and
    is asked about (its region's zone, "India time", is what to write)."""
    if (match.group("minutes") or "00") != "00":
        return [Unclear(match.start(), match.end(), "unsupported", "bad_zone", match.group(0))]
    name = _offset_zone(match.group("sign"), match.group("hours"))
    if name is None:
        return [Unclear(match.start(), match.end(), "impossible", "bad_zone", match.group(0))]
    return [Zone(match.start(), match.end(), name)]


@rule(r"(?:\bin\s+)?(?<![A-Za-z])(?P<abbr>[A-Z]{2,4})(?![A-Za-z]|\s*[+-]\s*\d)(?:\s*时间)?")
def abbreviation(match: re.Match[str]) -> list[Piece]:
    abbr = match.group("abbr")
    if abbr in AMBIGUOUS:
        return [Unclear(match.start(), match.end(), "ambiguous", "which_zone", abbr)]
    if abbr not in ABBREVIATIONS:
        return []
    return [Zone(match.start(), match.end(), ABBREVIATIONS[abbr])]


@rule(r"(?:\bin\s+)?\b(?P<iana>[A-Z][a-z]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?)\b", re.ASCII)
def iana(match: re.Match[str]) -> list[Piece]:
    name = match.group("iana")
    if not known(name):
        return []
    return [Zone(match.start(), match.end(), name)]


RULES = [zh_zone, en_zone, offset_zone, abbreviation, iana]
