"""The English grammar of times and dates: regex rules that turn "at 9am", "half past nine",
"noon", "between 9am and 5pm", "tomorrow", "next Tuesday at 10", "on Dec 25", "in 2 hours",
"tonight at 11" … into pieces (see `pieces`); repetition ("every weekday", "the second Tuesday
of each month", "every 15 minutes"…) is in `en_repeats`.

Bare numbers are hours only after "at"/"@" or before "o'clock" (so "restart web-3" and "logs
older than 7 days" stay in the task); see `clock` for how hours are read.
"""

from __future__ import annotations

import re
from typing import Literal

from workflows.schedule.clock import EN_PERIODS
from workflows.schedule.numerals import DAY_ORDINAL, EN_WORDS, day_ordinal, number
from workflows.schedule.pieces import (
    Clock,
    DateOf,
    DayShift,
    Period,
    Piece,
    Recur,
    Span,
    Unclear,
    WeekdayDate,
    rule,
)
from workflows.schedule.spec import WEEKDAYS, MonthDays

NOCASE = re.IGNORECASE | re.ASCII
"""English rules: any case; `\\b` and `\\w` are ASCII, so "每天9am检查" has word edges."""
ADJECTIVE_GUARD = r"(?=\s*(?:$|[,.;:!?]|at\b|@|on\b|from\b|in\b|between\b|please\b|\d))"
"""After daily/weekly/nightly…: only when not an adjective ("the daily report")."""
DAY_NAMES = {
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
WEEKDAY = (
    r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?)"
)
WEEKDAY_S = rf"{WEEKDAY}s?"
FULL_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
AND = r"\s*(?:,\s*(?:and\s+|&\s*)?|\s+and\s+|\s*&\s*|\s*/\s*|\s+or\s+)"
RANGE = r"\s*(?:-|–|—|\bto\b|\bthrough\b|\bthru\b|\buntil\b|\btill\b)\s*"
AT = r"(?:(?:at|@|by|around)\s+)?"
MERIDIEM = r"(?P<ap{t}>[ap])\.?\s?m\b\.?"
ORD = r"(?:\d{1,2}(?:st|nd|rd|th)|first|second|third|fourth|fifth|last)"


def weekday_of(text: str) -> int:
    return DAY_NAMES[text.lower()[:3]]


def weekdays_in(text: str) -> tuple[str, ...]:
    found = {weekday_of(item) for item in re.findall(WEEKDAY, text, NOCASE)}
    return tuple(WEEKDAYS[index] for index in sorted(found))


SHARP = r"(?:\s+sharp\b|\s+on\s+the\s+dot\b)?"
"""3pm sharp, at 9 on the dot: exactly that time (the words go with it, not into the task)."""


def clock_fragment(t: str) -> str:
    """An English time of day (hour with am/pm, or HH:MM) with groups suffixed by `t`."""
    return (
        rf"(?:(?P<h{t}>\d{{1,2}})(?:[:.](?P<m{t}>\d{{2}}))?\s*{MERIDIEM.format(t=t)}"
        rf"|(?P<hh{t}>\d{{1,2}}):(?P<mm{t}>\d{{2}})(?![\d:])"
        rf"|(?P<bare{t}>\d{{1,2}})(?![\d:.]|\s*(?:%|min|hour|hr|day|week|month|year|[ap]\.?m\b)))"
        rf"|(?P<word{t}>noon|midday|midnight)"
    )


def _meridiem(letter: str | None) -> Literal["am", "pm"] | None:
    if letter is None:
        return None
    return "am" if letter.lower() == "a" else "pm"


def _group(match: re.Match[str], name: str) -> str | None:
    return match.group(name) if name in match.re.groupindex else None


def clock_of(match: re.Match[str], t: str, bare_ok: bool) -> Clock | None:
    """The Clock the fragment `t` matched (bare hours only when `bare_ok`), or None."""
    names = [g + t for g in ("h", "m", "ap", "hh", "mm", "bare", "word")]
    present = [g for g in names if _group(match, g) is not None]
    if not present:
        return None
    start = min(match.start(g) for g in present)
    end = max(match.end(g) for g in present)
    word, hour, full = _group(match, "word" + t), _group(match, "h" + t), _group(match, "hh" + t)
    if word is not None:
        period = "midnight" if word.lower() == "midnight" else None
        return Clock(start, end, 12, 0, "en", period=period)
    if hour is not None:
        meridiem = _meridiem(_group(match, "ap" + t) or "p")
        minute = int(_group(match, "m" + t) or 0)
        return Clock(start, end, int(hour), minute, "en", meridiem=meridiem)
    if full is not None:
        return Clock(start, end, int(full), int(_group(match, "mm" + t) or 0), "en")
    bare = _group(match, "bare" + t)
    if not bare_ok or bare is None:
        return None
    return Clock(start, end, int(bare), 0, "en", bare=True)


@rule(
    rf"\b{AT}(?:(?P<h>\d{{1,2}})(?:[:.](?P<m>\d{{2}}))?\s*{MERIDIEM.format(t='')}"
    rf"|(?P<hh>\d{{1,2}}):(?P<mm>\d{{2}})(?![\d:])|(?P<oc>\d{{1,2}})\s*o'?clock\b){SHARP}",
    NOCASE,
)
def clock(match: re.Match[str]) -> list[Piece]:
    if match.group("oc"):
        return [Clock(match.start(), match.end(), int(match.group("oc")), 0, "en", bare=True)]
    found = clock_of(match, "", bare_ok=False)
    if found is None:
        return []
    return [Clock(match.start(), match.end(), found.hour, found.minute, "en", found.meridiem)]


BARE = r"\d{1,2}(?![\d:.]|\s*(?:%|min|hour|hr|day|week|month|year|times?\b|[ap]\.?m\b))"


@rule(rf"\b(?:at|@)\s+(?P<bare>{BARE})(?P<more>(?:{AND}{BARE})*){SHARP}", NOCASE)
def bare_hour(match: re.Match[str]) -> list[Piece]:
    """at 9; at 9, 12 and 15 (several hours); at 9 sharp."""
    end = match.end("bare") if match.group("more") else match.end()
    found: list[Piece] = [Clock(match.start(), end, int(match.group("bare")), 0, "en", bare=True)]
    for item in re.finditer(r"\d{1,2}", match.group("more") or ""):
        start = match.start("more") + item.start()
        found.append(Clock(start, start + len(item.group()), int(item.group()), 0, "en", bare=True))
    return found


HOUR_WORDS = "|".join(w for w, v in EN_WORDS.items() if 1 <= v <= 12 and w not in ("a", "an"))
MINUTE_WORDS = {"o'clock": 0, "oclock": 0, "fifteen": 15, "thirty": 30, "forty-five": 45}


@rule(
    rf"\b(?:at|@)\s+(?P<w>{HOUR_WORDS})(?:\s+(?P<mw>o'?clock|fifteen|thirty|forty-five))?"
    rf"(?:\s*(?P<ap>[ap])\.?m\b\.?)?",
    NOCASE,
)
def word_hour(match: re.Match[str]) -> list[Piece]:
    hour = EN_WORDS[match.group("w").lower()]
    minute = MINUTE_WORDS.get((match.group("mw") or "").lower().replace("oclock", "o'clock"), 0)
    meridiem = _meridiem(match.group("ap"))
    bare = meridiem is None and match.group("mw") is None
    return [Clock(match.start(), match.end(), hour, minute, "en", meridiem, bare=bare)]


@rule(
    rf"\b{AT}(?P<frac>half|(?:a\s+)?quarter)\s+(?P<rel>past|after|to)\s+(?P<h>\d{{1,2}}|{HOUR_WORDS})"
    rf"(?:\s*(?P<ap>[ap])\.?m\b\.?)?",
    NOCASE,
)
def fraction_hour(match: re.Match[str]) -> list[Piece]:
    hour = number(match.group("h"))
    if hour is None:
        return []
    minutes = 30 if match.group("frac").lower() == "half" else 15
    if match.group("rel").lower() == "to":
        if minutes == 30:
            return []
        hour, minutes = (hour - 1) % 24 or 12, 45
    meridiem = _meridiem(match.group("ap"))
    bare = meridiem is None  # "half past 3": 03:30 or 15:30, like "at 3" (see `clock`)
    return [Clock(match.start(), match.end(), hour, minutes, "en", meridiem, bare=bare)]


@rule(r"\b(?:at\s+)?(?:12\s*)?(?P<w>noon|midday|midnight)\b", NOCASE)
def noon_midnight(match: re.Match[str]) -> list[Piece]:
    return [Period(match.start(), match.end(), EN_PERIODS[match.group("w").lower()])]


@rule(
    r"\b(?:in\s+the\s+(?P<p>morning|afternoon|evening)|at\s+night|tonight"
    r"|this\s+(?P<q>morning|afternoon|evening))\b",
    NOCASE,
)
def period(match: re.Match[str]) -> list[Piece]:
    text = match.group(0).lower()
    word = match.group("p") or match.group("q")
    if text == "tonight" or (word is not None and text.startswith("this")):
        name = "evening" if text == "tonight" else EN_PERIODS[(word or "").lower()]
        return [DayShift(match.start(), match.end(), 0), Period(match.start(), match.end(), name)]
    name = "evening" if word is None else EN_PERIODS[word.lower()]
    return [Period(match.start(), match.end(), name)]


@rule(r"\b(?P<p>morning|afternoon|evening|night)s?\b", NOCASE)
def bare_period(match: re.Match[str]) -> list[Piece]:
    """tomorrow morning, Sunday night, weekday mornings."""
    return [Period(match.start(), match.end(), EN_PERIODS[match.group("p").lower()])]


def _window(match: re.Match[str], opened: bool) -> list[Piece]:
    first = clock_of(match, "a", bare_ok=opened)
    last = clock_of(match, "b", bare_ok=opened)
    if first is None and last is not None and last.meridiem is not None:
        bare = clock_of(match, "a", bare_ok=True)  # 2-3pm: the first hour shares the pm
        if bare is not None and 1 <= bare.hour <= 12:
            later = bare.hour % 12 > last.hour % 12
            meridiem: Literal["am", "pm"] = (
                "am" if later and last.meridiem == "pm" else last.meridiem
            )
            first = Clock(bare.start, bare.end, bare.hour, bare.minute, "en", meridiem)
    if first is None or last is None:
        return []
    return [Span(match.start(), match.end(), first, last)]


NEXT_DAY = r"(?:,?\s+(?:on\s+)?(?:the\s+)?(?:next|following)\s+(?:morning|day)\b)?"
"""A window's end said to fall on the next day ("from 10pm to 6am the next morning"): the
window wraps past midnight, which its two times already say (not a day of its own)."""


@rule(
    rf"\b(?:between|from)\s+(?:{clock_fragment('a')})\s*(?:and|to|until|till|through|-|–|—)"
    rf"\s*(?:{clock_fragment('b')}){NEXT_DAY}",
    NOCASE,
)
def window(match: re.Match[str]) -> list[Piece]:
    """between 9am and 5pm, from 9 to 5 (bare hours allowed after between/from)."""
    return _window(match, opened=True)


@rule(
    rf"\b(?:{clock_fragment('a')})\s*(?:-|–|—|to|until|till)\s*(?:{clock_fragment('b')}){NEXT_DAY}",
    NOCASE,
)
def dash_window(match: re.Match[str]) -> list[Piece]:
    """9am-5pm, 09:00 to 18:00 (never "9am and 6pm": two times)."""
    return _window(match, opened=False)


UNITS = {"min": 1, "m": 1, "hour": 60, "hr": 60, "h": 60, "day": 1440, "d": 1440}
UNIT = r"(?P<u>minutes?|mins?|m|hours?|hrs?|h|days?|d|seconds?|secs?|s)\b"


def unit_minutes(text: str) -> int | None:
    lowered = text.lower()
    for key in ("min", "hour", "hr", "day"):
        if lowered.startswith(key):
            return UNITS[key]
    return UNITS.get(lowered)


@rule(
    r"\b(?P<w>today|tomorrow|tmrw|tmr|the\s+day\s+after\s+tomorrow|day\s+after\s+tomorrow)\b",
    NOCASE,
)
def day_word(match: re.Match[str]) -> list[Piece]:
    word = match.group("w").lower()
    days = 0 if word == "today" else 2 if "after" in word else 1
    return [DayShift(match.start(), match.end(), days)]


@rule(
    rf"\b(?:(?P<which>next|this|coming|this\s+coming|on)\s+)(?P<w>{WEEKDAY})\b(?!s)"
    rf"|\bnext\s+week\s+(?:on\s+)?(?P<nw>{WEEKDAY})\b(?!s)"
    rf"|\b(?P<wn>{WEEKDAY})\s+(?:of\s+)?next\s+week\b"
    rf"|\b(?P<full>{FULL_WEEKDAY})\b(?!s)"
    r"|\b(?P<abbr>mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)\b\.?"
    rf"(?=\s*,?\s*(?:\d|at\b|@|noon|{MONTH}\b))",
    NOCASE,
)
def weekday_date(match: re.Match[str]) -> list[Piece]:
    which = (match.group("which") or "").lower()
    if match.group("nw") or match.group("wn"):
        which = "next"
    written = match.group("w") or match.group("nw") or match.group("wn") or match.group("full")
    weekday = weekday_of(written or match.group("abbr"))
    week = 1 if which == "next" else 0 if which == "this" else None
    return [WeekdayDate(match.start(), match.end(), weekday, week)]


@rule(
    rf"\b(?:on\s+)?(?:(?P<m>{MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?"
    rf"|(?:the\s+)?(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{MONTH})\b\.?)"
    r"(?:,?\s+(?P<y>\d{4}))?\b",
    NOCASE,
)
def month_day(match: re.Match[str]) -> list[Piece]:
    month = MONTHS[(match.group("m") or match.group("m2")).lower()[:3]]
    day = int(match.group("d") or match.group("d2"))
    year = int(match.group("y")) if match.group("y") else None
    return [DateOf(match.start(), match.end(), day, month, year)]


@rule(
    rf"\b(?:on\s+)?(?:the\s+)?(?:(?P<d>{DAY_ORDINAL})(?:\s+day)?|(?P<last>last\s+day))\s+of\s+"
    r"(?P<which>next|this|the\s+next|the\s+coming|the)\s+month\b(?!\s+(?:every|each))"
    r"|\b(?:at\s+|by\s+)?(?:the\s+)?end\s+of\s+(?P<which2>next|this|the)\s+month\b"
    r"|\b(?:at\s+|by\s+)?(?:the\s+)?end\s+of\s+month\b"
    rf"|\bnext\s+month\s+on\s+the\s+(?P<nd>{DAY_ORDINAL})\b",
    NOCASE,
)
def day_of_month(match: re.Match[str]) -> list[Piece]:
    """the 3rd of next month, first day of next month, the last day of this month, end of month."""
    which = (match.group("which") or match.group("which2") or "this").lower()
    following = "next" in which or "coming" in which
    if match.group("nd"):
        nd = day_ordinal(match.group("nd"))
        return [] if nd is None else [DateOf(match.start(), match.end(), nd, next_month=True)]
    if match.group("last") or match.group("d") is None:
        return [DateOf(match.start(), match.end(), 31, next_month=following, last=True)]
    day = day_ordinal(match.group("d"))
    if day is None or not 1 <= day <= 31:
        return []
    return [DateOf(match.start(), match.end(), day, next_month=following)]


@rule(
    rf"\b(?:on\s+)?the\s+(?P<list>{DAY_ORDINAL}(?:{AND}(?:the\s+)?{DAY_ORDINAL})*)\b"
    rf"(?!\s+(?:day\s+)?of\b|\s+{WEEKDAY}|\s+(?:time|week|month|year|hour|minute|quarter)s?\b)"
    r"|\bon\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b",
    NOCASE,
)
def ordinal_day(match: re.Match[str]) -> list[Piece]:
    """on the 20th, the thirteenth; a list (the 10th and 25th) repeats every month."""
    if match.group("d"):
        return [DateOf(match.start(), match.end(), int(match.group("d")))]
    found = {day_ordinal(item) for item in re.findall(DAY_ORDINAL, match.group("list"), NOCASE)}
    values = sorted(d for d in found if d is not None)
    if not values or any(not 1 <= d <= 31 for d in values):
        return []
    if len(values) == 1:
        return [DateOf(match.start(), match.end(), values[0])]
    return [Recur(match.start(), match.end(), MonthDays(tuple(values)))]


VAGUE = (
    r"\b(?:in\s+a\s+(?:bit|while|few\s+(?:minutes|hours|days))|later(?:\s+today|\s+on)?|soon"
    r"|sometime|at\s+some\s+point|next\s+week|next\s+month|this\s+weekend|next\s+weekend"
    r"|end\s+of\s+(?:the\s+)?day|eod|cob|close\s+of\s+business"
    r"|(?:during\s+)?(?:business|working|office)\s+hours|in\s+a\s+few)\b"
)


@rule(VAGUE, NOCASE)
def vague(match: re.Match[str]) -> list[Piece]:
    return [Unclear(match.start(), match.end(), "vague", "when")]


RULES = [
    clock,
    bare_hour,
    word_hour,
    fraction_hour,
    noon_midnight,
    period,
    bare_period,
    window,
    dash_window,
    day_word,
    weekday_date,
    month_day,
    day_of_month,
    ordinal_day,
    vague,
]
CUES = re.compile(
    r"\b(?:remind|reminder|schedule\s+(?:a|an|the|it|this|that|my|our|me|us|to)|alarm"
    r"|ping\s+me|notify\s+me|nudge\s+me|don't\s+forget)\b",
    NOCASE,
)
"""Words asking for a schedule even when no time could be read (then: ask when)."""
REMARK = re.compile(
    r"\b(?:ran|was|were|fired|went\s+off|happened|failed|crashed|restarted|alerted|paged"
    r"|triggered|spiked|flapped|timed\s+out|(?:has|have|had)\s+been\s+\w+ing|keeps?\s+\w+ing"
    r"|kept\s+\w+ing)\s+(?:again\s+)?(?:every|each|hourly|daily|nightly|twice|once\s+an?)\b",
    NOCASE,
)
"""A repetition said of what happened, not asked for ("the job ran every 5 minutes", "it keeps
failing every night"): a remark."""
PAST = re.compile(r"\b(?:yesterday|last\s+(?:night|week|month|year)|ago|earlier\s+today)\b", NOCASE)
QUESTION = re.compile(
    r"\?|^\s*(?:why|what|how|who|which|when\s+(?:did|was|were|is)|is|are|was|were|did|does)\b",
    NOCASE,
)
