"""What people type after `/silence`, read into its matcher, duration and reason.

Matchers are copied from Alertmanager's UI and from alert text as often as they are typed, so
a matcher may be braced with spaces inside (`{alertname="Disk Full", instance=~"db-.*"}`),
have spaces around its commas and operators, and quote values that hold spaces or commas.
Durations come as people say them:

- `2h`, `1h30m`, `1.5h`, `90min`, `2 hours`, `1 day`, `1w` (a week, the longest silence);
- `2小时`, `2个小时`, `30分钟`, `1天`, `半小时`, `一个半小时`, `两小时`, `1小时30分`.

The order is matcher, duration, reason; a duration written first (`/silence 2h
alertname=DiskFull`) is read too, the matcher then being the terms after it.

    >>> said = split_request('{alertname="Disk Full", env="prod"} 2 小时 升级数据库')
    >>> said.matcher, said.duration, said.reason
    ('{alertname="Disk Full", env="prod"}', '2 小时', '升级数据库')
    >>> parse_duration("一个半小时")
    datetime.timedelta(seconds=5400)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

# a number: digits (with a decimal part) or Chinese numerals up to 99 (两 is two; 半 is a half)
_NUMBER = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十]{1,3}|半)"
_UNITS: dict[str, timedelta] = {
    **dict.fromkeys(
        ("w", "wk", "wks", "week", "weeks", "周", "星期", "个星期"), timedelta(weeks=1)
    ),
    **dict.fromkeys(("d", "day", "days", "天", "日"), timedelta(days=1)),
    **dict.fromkeys(
        ("h", "hr", "hrs", "hour", "hours", "小时", "个小时", "钟头", "个钟头", "个钟"),
        timedelta(hours=1),
    ),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "分钟", "分"), timedelta(minutes=1)),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds", "秒", "秒钟"), timedelta(seconds=1)),
}
# longest first, so that "hours" is not read as "h" + "ours"
_UNIT = "|".join(sorted((re.escape(unit) for unit in _UNITS), key=len, reverse=True))
# a quantity: number, unit, and the half of 一个半小时 (N个半 + unit)
_PART = re.compile(rf"\s*({_NUMBER})\s*(个半)?\s*({_UNIT})(?![A-Za-z])", re.IGNORECASE)
_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_OPERATOR = re.compile(r"=~|!~|!=|=")


@dataclass(frozen=True)
class SilenceRequest:
    matcher: str  # as written, for `parse_matcher` and the confirmation
    duration: str  # as written, for `parse_duration`
    reason: str


def parse_quantity(text: str) -> timedelta | None:
    """The duration `text` says in full (`1h30m`, `2 个小时`, `半小时`), or None."""
    total, at = timedelta(0), 0
    while at < len(text):
        part = _PART.match(text, at)
        if part is None:
            return total if at and not text[at:].strip() else None
        number, half, unit = part.groups()
        amount = _number(number)
        if amount is None:
            return None
        total += (amount + (0.5 if half else 0.0)) * _UNITS[unit.lower()]
        at = part.end()
    return total if at else None


def _number(text: str) -> float | None:
    """1.5, 两 (2), 十五 (15), 二十 (20), 半 (0.5); None for what is no number (二二)."""
    if text == "半":
        return 0.5
    if text[0].isdigit():
        return float(text)
    if "十" not in text:
        return float(_DIGITS[text]) if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        return None
    return float((_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0))


def chunks(text: str) -> list[str]:
    """`text` split at white space outside quotes and braces (a braced or quoted matcher
    stays one chunk)."""
    found: list[str] = []
    current: list[str] = []
    depth, quote, escaped = 0, "", False
    for char in text:
        if quote:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
        elif char.isspace() and depth == 0:
            if current:
                found.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        found.append("".join(current))
    return found


def split_request(args: str) -> SilenceRequest:
    """The matcher, duration and reason of `/silence <args>`. A part not found is empty (the
    reading of each part says what is wrong with it)."""
    words = chunks(args.strip())
    start, end = _duration_at(words)
    if start == 0:  # the duration first: the terms after it are the matcher
        terms, reason = _terms(words[end:])
        return SilenceRequest(" ".join(terms), " ".join(words[:end]), " ".join(reason))
    if start is None:  # none read: the word after the matcher is the duration not understood
        terms, rest = _terms(words)
        if not terms:
            terms, rest = words[:1], words[1:]
        return SilenceRequest(" ".join(terms), " ".join(rest[:1]), " ".join(rest[1:]))
    matcher, duration = " ".join(words[:start]), " ".join(words[start:end])
    return SilenceRequest(matcher, duration, " ".join(words[end:]))


def split_terms(text: str) -> list[str]:
    """A matcher's terms: `text` split at commas outside quotes (`env="a,b"` is one term)."""
    terms: list[str] = []
    current: list[str] = []
    quote, escaped = "", False
    for char in text:
        if quote:
            escaped = not escaped and char == "\\"
            quote = "" if char == quote and not escaped else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            terms.append("".join(current))
            current = []
            continue
        current.append(char)
    terms.append("".join(current))
    return terms


def _duration_at(words: list[str]) -> tuple[int | None, int]:
    """Where the first duration is among `words`: its first word and the one after its last
    (`2 hours` is two words, `1h 30m` too). (None, 0) when none."""
    for start in range(len(words)):
        if _OPERATOR.search(words[start]):
            continue
        longest = 0
        for end in range(start + 1, min(len(words), start + 4) + 1):
            if parse_quantity("".join(words[start:end])) is not None:
                longest = end
        if longest:
            return start, longest
    return None, 0


def _terms(words: list[str]) -> tuple[list[str], list[str]]:
    """The leading words that make up matcher terms (each has an operator, or joins two with
    a comma or an operator written apart), and the words after them."""
    taken = 0
    for n, word in enumerate(words):
        joins = word.startswith((",", "=", "!")) or (n and words[n - 1].endswith((",", "=", "~")))
        if _OPERATOR.search(word) or word.startswith("{") or joins:
            taken = n + 1
            continue
        break
    return words[:taken], words[taken:]
