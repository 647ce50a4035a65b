"""How English speakers write a time of day, beyond "9am" and "09:30" (see `en`): compact
forms (1015am, 0930 a.m., 6p, 930pm), the 24-hour clock (at 1800, 1800 hours, 18h30, 18.45),
spelled-out numbers (nine fifteen pm, six forty, at eleven), minutes to or past an hour
(twenty past nine, ten to five, half nine), words (lunchtime, teatime, 5ish), and a minute past
every hour (on the half hour, at the top of the hour, at quarter past, at :15).

A spelled-out time needs a meridiem, a minute word or "at" before it ("one forty" alone could
be a count), as bare digits need "at" in `en`.
"""

from __future__ import annotations

import re
from typing import Literal

from workflows.schedule.numerals import EN_WORDS, number
from workflows.schedule.pieces import Clock, DayShift, Minute, Period, Piece, Step, rule

NOCASE = re.IGNORECASE | re.ASCII
ONES = {w: v for w, v in EN_WORDS.items() if 1 <= v <= 9 and w not in ("a", "an")}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14}
TEENS.update({"fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19})
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
HOURS = {**ONES, "ten": 10, "eleven": 11, "twelve": 12}
HOUR_WORD = "|".join(sorted(HOURS, key=len, reverse=True))
TEEN_WORD = "|".join(TEENS)
TEN_WORD = "|".join(TENS)
ONE_WORD = "|".join(ONES)
MINUTE_WORD = (
    rf"(?:(?:oh|o)\s+(?:{ONE_WORD})|(?:{TEN_WORD})(?:[\s-]+(?:{ONE_WORD}))?|{TEEN_WORD}"
    r"|o'?clock|hundred(?:\s+hours)?)"
)
AMPM = r"(?:\s*(?P<ap>[ap])\.?\s?m\b\.?|\s+in\s+the\s+(?P<pp>morning|afternoon|evening))"


def minute_words(text: str) -> int | None:
    """ "fifteen" 15, "forty-five" 45, "oh five" 5, "o'clock" 0; None when not a minute."""
    words = re.split(r"[\s-]+", text.lower().replace("o'clock", "oclock"))
    if words[0] in ("oclock", "hundred"):
        return 0
    if words[0] in ("oh", "o"):
        return ONES.get(words[1]) if len(words) == 2 else None
    if words[0] in TEENS:
        return TEENS[words[0]]
    value = TENS.get(words[0])
    if value is None:
        return None
    return value + (ONES.get(words[1], 0) if len(words) > 1 else 0)


def _meridiem(match: re.Match[str]) -> Literal["am", "pm"] | None:
    letter, part = match.group("ap"), match.group("pp")
    if letter:
        return "am" if letter.lower() == "a" else "pm"
    if part:
        return "am" if part.lower() == "morning" else "pm"
    return None


@rule(
    r"\b(?:(?P<at>at|@|by|around)\s+)?(?P<h>[01]?\d|2[0-3])(?P<m>[0-5]\d)"
    r"(?:\s*(?P<ap>[ap])(?:\.?\s?m\b\.?|\b)|\s*(?P<hrs>h\b|hrs\b|hours\b))",
    NOCASE,
)
def compact(match: re.Match[str]) -> list[Piece]:
    """1015am, 0930 a.m., 930pm, 1800 hours, 0900h."""
    hour, minute = int(match.group("h")), int(match.group("m"))
    letter = match.group("ap")
    if letter:
        meridiem: Literal["am", "pm"] = "am" if letter.lower() == "a" else "pm"
        return [Clock(match.start(), match.end(), hour, minute, "en", meridiem)]
    return [Clock(match.start(), match.end(), hour, minute, "en")]


@rule(r"\b(?:at|@)\s+(?P<h>[01]\d|2[0-3])(?P<m>[0-5]\d)\b(?![:.\d])", NOCASE)
def military(match: re.Match[str]) -> list[Piece]:
    """at 1800, at 0930 (four digits after "at": the 24-hour clock)."""
    return [Clock(match.start(), match.end(), int(match.group("h")), int(match.group("m")), "en")]


@rule(
    r"\b(?:(?P<at>at|@|by|around)\s+)?(?P<h>[01]?\d|2[0-3])(?:h(?P<m>[0-5]\d)\b|\.(?P<d>[0-5]\d)\b)"
    r"(?![.\d])",
    NOCASE,
)
def dotted(match: re.Match[str]) -> list[Piece]:
    """18.45, 18h30, at 9.15 (a dot after "at" or with an hour past 12)."""
    hour = int(match.group("h"))
    if match.group("d") is not None and not match.group("at") and hour < 13:
        return []
    minute = int(match.group("m") or match.group("d"))
    return [Clock(match.start(), match.end(), hour, minute, "en")]


@rule(r"\b(?:(?P<at>at|@|by|around)\s+)?(?P<h>\d{1,2})\s*(?P<ap>[ap])\b(?!\.?\s?m\b|')", NOCASE)
def letter(match: re.Match[str]) -> list[Piece]:
    """6p, 10a."""
    hour = int(match.group("h"))
    meridiem: Literal["am", "pm"] = "am" if match.group("ap").lower() == "a" else "pm"
    return [Clock(match.start(), match.end(), hour, 0, "en", meridiem)]


@rule(
    rf"\b(?:(?P<at>at|@|by|around)\s+)?(?P<w>{HOUR_WORD})(?:[\s-]+(?P<mw>{MINUTE_WORD}))?"
    rf"(?:{AMPM})?\b\.?",
    NOCASE,
)
def spelled(match: re.Match[str]) -> list[Piece]:
    """nine fifteen pm, six forty, at eleven, seven thirty in the morning, nine o'clock."""
    meridiem = _meridiem(match)
    minutes_text = match.group("mw")
    if not (match.group("at") or meridiem or minutes_text):
        return []
    minute = 0 if minutes_text is None else minute_words(minutes_text)
    if minute is None or minute > 59:
        return []
    hour = HOURS[match.group("w").lower()]
    bare = meridiem is None and minutes_text is None
    if minutes_text and minutes_text.lower().startswith("hundred"):
        return []
    return [Clock(match.start(), match.end(), hour, minute, "en", meridiem, bare=bare)]


@rule(
    rf"(?<!every )(?<!each )\b(?:(?:at|@|by|around)\s+)?(?P<n>\d{{1,2}}"
    rf"|{TEN_WORD}(?:[\s-]+(?:{ONE_WORD}))?|{TEEN_WORD}"
    rf"|{ONE_WORD}|ten)(?:\s+minutes?)?\s+(?P<rel>past|after|to|before|till|til)\s+"
    rf"(?P<h>\d{{1,2}}|{HOUR_WORD})(?:{AMPM}|\b(?![:.]\d))",
    NOCASE,
)
def minutes_to(match: re.Match[str]) -> list[Piece]:
    """twenty past nine, ten to five, 5 past 10 am (not "every 15 minutes till 5:30pm": a step
    and its end)."""
    written = match.group("n")
    minute = int(written) if written.isdigit() else minute_words(written)
    if minute is None and written.lower() in ONES:
        minute = ONES[written.lower()]
    if minute is None and written.lower() == "ten":
        minute = 10
    hour = number(match.group("h"))
    if minute is None or hour is None or not 1 <= minute <= 59 or not 1 <= hour <= 12:
        return []
    if match.group("rel").lower() == "before":  # 20 minutes before 3pm: a lead time, asked
        return []
    if match.group("rel").lower() in ("to", "till", "til"):
        hour, minute = (hour - 1) or 12, 60 - minute
    meridiem = _meridiem(match)
    bare = meridiem is None  # "ten to five": 04:50 or 16:50, like "at 5"
    return [Clock(match.start(), match.end(), hour, minute, "en", meridiem, bare=bare)]


@rule(rf"\b(?:at\s+)?half\s+(?P<h>{HOUR_WORD}|\d{{1,2}})\b(?!\s+(?:an?\s+)?hours?)", NOCASE)
def half_hour(match: re.Match[str]) -> list[Piece]:
    """half nine: 9:30 (British)."""
    hour = number(match.group("h"))
    if hour is None or not 1 <= hour <= 12:
        return []
    return [Clock(match.start(), match.end(), hour, 30, "en")]


@rule(r"\b(?:at\s+)?(?P<w>lunch\s*time|lunch|tea\s*time)\b", NOCASE)
def meal(match: re.Match[str]) -> list[Piece]:
    """lunchtime: 12:00; teatime: 16:00 (as at(1) reads it)."""
    word = match.group("w").lower()
    if word == "lunch" and not match.group(0).lower().startswith("at"):
        return []
    hour = 16 if word.startswith("tea") else 12
    return [Clock(match.start(), match.end(), hour, 0, "en")]


@rule(r"\b(?:at\s+|around\s+)?(?P<h>\d{1,2})\s*-?\s*ish\b", NOCASE)
def ish(match: re.Match[str]) -> list[Piece]:
    """5ish, 9-ish: the hour, read as "at 5"."""
    return [Clock(match.start(), match.end(), int(match.group("h")), 0, "en", bare=True)]


@rule(
    rf"\b(?:at\s+)?(?:the\s+)?(?:top\s+of\s+(?:the|(?P<e1>every|each))\s+hour|on\s+the\s+hour)\b"
    rf"|\bon\s+the\s+(?P<half>half)[\s-]hour\b"
    rf"|\b(?:at\s+)?(?P<n>\d{{1,2}}|(?:a\s+)?quarter|half)(?:\s+minutes?)?\s+(?P<rel>past|after|to)"
    rf"\s+(?:the|(?P<e2>every|each))\s+hour\b"
    r"|\bat\s+(?P<n2>(?:a\s+)?quarter|half)\s+(?P<rel2>past|after|to)\b"
    rf"(?!\s+(?:\d|(?:{HOUR_WORD})\b))"
    r"|\bat\s+:(?P<colon>[0-5]\d)\b|\bat\s+(?P<xx>[0-5]\d)\s+past\b",
    NOCASE,
)
def past_the_hour(match: re.Match[str]) -> list[Piece]:
    """A minute past every hour: on the half hour, at the top of the hour, at quarter past."""
    written = (match.group("n") or match.group("n2") or "").lower()
    relation = (match.group("rel") or match.group("rel2") or "past").lower()
    if match.group("half"):
        minute = 30
    elif match.group("colon") or match.group("xx"):
        minute = int(match.group("colon") or match.group("xx"))
    elif not written:
        minute = 0
    else:
        minute = 30 if written == "half" else 15 if "quarter" in written else int(written)
        if relation == "to":
            minute = 60 - minute
    if not 0 <= minute <= 59:
        return []
    pieces: list[Piece] = [Minute(match.start(), match.end(), minute)]
    if match.group("e1") or match.group("e2"):
        pieces.append(Step(match.start(), match.end(), 60))
    return pieces


@rule(r"\b(?:in\s+the\s+)?(?P<w>early\s+morning|first\s+thing)\b", NOCASE)
def early(match: re.Match[str]) -> list[Piece]:
    return [Period(match.start(), match.end(), "morning")]


@rule(
    r"\b(?:at\s+)?(?P<h>\d{1,2})(?::(?P<m>[0-5]\d))?\s+(?:in\s+the\s+(?P<p>morning|afternoon|evening)"
    r"|(?P<n>at\s+night|tonight))\b",
    NOCASE,
)
def hour_of_period(match: re.Match[str]) -> list[Piece]:
    """9 in the morning, 7 in the evening, 11 at night."""
    hour, minute = int(match.group("h")), int(match.group("m") or 0)
    if not 1 <= hour <= 12:
        return []
    part = (match.group("p") or "").lower()
    meridiem: Literal["am", "pm"] = "am" if part == "morning" else "pm"
    if match.group("n") and hour == 12:
        meridiem = "am"
    pieces: list[Piece] = [Clock(match.start(), match.end(), hour, minute, "en", meridiem)]
    if match.group("n") and "tonight" in match.group("n").lower():
        pieces.insert(0, DayShift(match.start(), match.end(), 0))
    return pieces


RULES = [
    hour_of_period,
    compact,
    military,
    dotted,
    letter,
    spelled,
    minutes_to,
    half_hour,
    meal,
    ish,
    past_the_hour,
    early,
]
