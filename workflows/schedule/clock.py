"""Times of day: parts of the day (凌晨, 傍晚, tonight…) and how a written hour becomes a
24-hour time.

The rules (documented in the README of the scheduling issue and tested by the corpus):

- A number with no meridiem and no part of the day is a 24-hour clock hour: 每天3点 is 03:00,
  15点 / "at 15" are 15:00 (English exceptions below).
- Chinese 12点 alone is noon (12:00); English "at 12" alone is ambiguous (noon or midnight?) and
  gets a question. "12:00" (minutes written) is noon in both.
- English "at 1" … "at 6" with no am/pm and no part of the day get a question too (spoken
  English means the afternoon, the 24-hour clock the small hours); "at 7" … "at 11" are the
  morning, "at 13" … "at 23" the 24-hour clock. Chinese 每天3点 is 03:00 (the 24-hour reading
  Chinese ops usage follows; 下午3点 or 15点 say the afternoon).
- 凌晨 keeps the hour (凌晨12点 is 00:00); 早上/上午 keep it; 中午 1–3 → 13–15; 下午/傍晚 add 12;
  晚上 5–11 add 12, 晚上12点 is the midnight *ending* that day; 晚上1–4点 gets a question;
  半夜/深夜 12 is the midnight ending that day, 1–5 are the small hours after it.
- A 24-hour hour (13–23) must fall in the part of the day written with it: 下午15点 is 15:00,
  上午15点 / 凌晨15点 / 早上20点 / "15:00 in the morning" contradict themselves and get a question,
  as do 凌晨9点, 中午5点, 傍晚2点 (`SMALL_CONFLICTS`). A window's end read with its start's part of
  the day (早上9点到18点) is not held to it.
- 零点 / 0点 is the midnight *starting* a day; 午夜, "midnight" and 今晚12点 the one *ending* it
  (so 今晚12点 and 明天零点 are the same instant).
- 中午 / noon alone is 12:00, midnight alone the coming midnight; 早上, 下午, 晚上, "morning",
  "tonight"… alone are vague and get a question.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.schedule.pieces import Clock

ZH_PERIODS = {
    "凌晨": "dawn",
    "清晨": "morning",
    "早上": "morning",
    "早晨": "morning",
    "上午": "morning",
    "中午": "noon",
    "午间": "noon",
    "正午": "noon",
    "下午": "afternoon",
    "午后": "afternoon",
    "傍晚": "dusk",
    "晚上": "evening",
    "晚间": "evening",
    "夜里": "night",
    "夜间": "night",
    "半夜": "night",
    "深夜": "night",
    "午夜": "midnight",
    "子夜": "midnight",
    "早": "morning",
    "晚": "evening",
}

EN_PERIODS = {
    "morning": "morning",
    "afternoon": "afternoon",
    "evening": "evening",
    "night": "evening",
    "tonight": "evening",
    "noon": "noon",
    "midday": "noon",
    "midnight": "midnight",
}
AFTERNOON_HOURS = {"noon": (13, 14), "afternoon": (13, 19), "dusk": (16, 20)}
AFTERNOON_HOURS.update({"evening": (17, 23), "night": (21, 23)})
"""The 24-hour hours (13–23) each part of the day may hold: 下午15点 and 晚上21点 agree, 上午15点,
凌晨15点 and 早上20点 contradict themselves (no part of the morning holds them) and are asked."""
EXACT_PERIODS = {"noon": (12, 0, False), "midnight": (0, 0, True)}
"""Parts of the day that are a time on their own: (hour, minute, ends the day)."""


@dataclass(frozen=True)
class Resolved:
    """A 24-hour time; `next_day`: it is the midnight (or small hour) after the day named."""

    hour: int
    minute: int
    next_day: bool = False
    plain: bool = False
    """Written with no am/pm and no part of the day (so "3点" might have meant 15:00)."""


@dataclass(frozen=True)
class Problem:
    """Why a written time cannot be read without asking: `topic` names the question."""

    topic: str
    reason: str = "ambiguous"


def _with_meridiem(hour: int, minute: int, meridiem: str) -> Resolved | Problem:
    if not 1 <= hour <= 12:
        return Problem("bad_time", "impossible")
    if meridiem == "am":
        return Resolved(0 if hour == 12 else hour, minute)
    return Resolved(12 if hour == 12 else hour + 12, minute)


SMALL_CONFLICTS = {"dawn": range(7, 12), "noon": range(4, 11), "dusk": (1, 2, 3, 9, 10, 11, 12)}
"""12-hour hours a part of the day cannot hold: 凌晨9点, 中午5点, 傍晚2点 (asked)."""


def _in_period(hour: int, minute: int, period: str, strict: bool) -> Resolved | Problem:
    if strict and hour in SMALL_CONFLICTS.get(period, ()):
        return Problem("period_hour", "conflict")
    if period == "dawn":
        return Resolved(0 if hour == 12 else hour, minute)
    if period == "morning":
        return Resolved(hour, minute)
    if period == "noon":
        return Resolved(hour + 12 if 1 <= hour <= 3 else hour, minute)
    if period in ("afternoon", "dusk"):
        return Resolved(hour + 12 if hour < 12 else hour, minute)
    if period == "midnight":
        return Resolved(0, minute, True) if hour in (0, 12) else Problem("evening_small_hours")
    if hour in (0, 12):
        return Resolved(0, minute, True)
    if period == "night" and 1 <= hour <= 5:
        return Resolved(hour, minute, True)
    if 5 <= hour <= 11:
        return Resolved(hour + 12, minute)
    return Problem("evening_small_hours")


def resolve(clock: Clock, period: str | None = None, *, window: bool = False) -> Resolved | Problem:
    """The 24-hour time `clock` means, with `period` (its own, else one from the same
    expression) applied; a `Problem` when it must be asked about. In a `window` ("from 9 to
    5") English bare hours are read on the 24-hour clock (the window fixes "5" up to 17:00)."""
    hour, minute = clock.hour, clock.minute
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        return Problem("bad_time", "impossible")
    if hour == 24:
        return Resolved(0, 0, True)
    if clock.meridiem is not None:
        return _with_meridiem(hour, minute, clock.meridiem)
    strict = clock.period is not None or not window  # a window's end may borrow its start's
    period = clock.period or period
    if hour >= 13:
        low, high = AFTERNOON_HOURS.get(period, (0, 0)) if period and strict else (13, 23)
        return Resolved(hour, minute) if low <= hour <= high else Problem("period_hour", "conflict")
    if period is not None:
        return _in_period(hour, minute, period, strict)
    if clock.language == "en" and clock.bare and not window:
        if hour == 12:
            return Problem("noon_or_midnight")
        if 1 <= hour <= 6:
            return Problem("am_or_pm")
    return Resolved(hour, minute, plain=True)
