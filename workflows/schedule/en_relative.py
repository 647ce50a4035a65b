"""English delays from now: "in 2 hours", "45 minutes later", "a quarter of an hour from now",
"in two and a half hours", "in 1h30m", "3 days from now" (whole days are a date: see `en`)."""

from __future__ import annotations

import re

from workflows.schedule.en import NOCASE, unit_minutes
from workflows.schedule.numerals import EN_NUMBER, number
from workflows.schedule.pieces import After, DayShift, Piece, Unclear, rule


@rule(
    r"\b(?:in|after)\s+(?P<h>\d{1,2}|an?|one|two|three)\s*(?:hours?|hrs?|h)\s*(?:and\s+)?"
    r"(?P<m>\d{1,2})\s*(?:minutes?|mins?|m)\b(?:\s+from\s+now)?",
    NOCASE,
)
def relative_hours_minutes(match: re.Match[str]) -> list[Piece]:
    """in 1 hour and 30 minutes, in 1h30m."""
    hours = number(match.group("h")) or 0
    minutes = int(match.group("m"))
    if minutes >= 60:
        return []
    return [After(match.start(), match.end(), hours * 60 + minutes)]


RELATIVE_UNIT = r"(?P<u>minutes?|mins?|m|hours?|hrs?|h|days?|weeks?)\b"


HALVES = rf"(?:an?|one|\d+|{EN_NUMBER})\s+and\s+a\s+half"
QUARTER_HOUR = r"(?:a\s+)?quarter\s+(?:of\s+)?an?\s+hour|(?:a\s+)?quarter[\s-]hour"
FROM_NOW = r"(?:from\s+now|later|hence|from\s+here)"


@rule(
    rf"\b(?P<q>{QUARTER_HOUR}|half\s+an?\s+hour|(?P<and>{HALVES})\s+hours?"
    rf"|(?P<ah>an?|one|\d+|{EN_NUMBER})\s+hours?\s+and\s+a\s+half)\s+{FROM_NOW}\b"
    rf"|\b(?:in|after)\s+(?P<q2>{QUARTER_HOUR}|(?P<and2>{HALVES})\s+hours?)\b",
    NOCASE,
)
def relative_fraction(match: re.Match[str]) -> list[Piece]:
    """a quarter of an hour from now, in two and a half hours, an hour and a half later."""
    text = (match.group("q") or match.group("q2")).lower()
    if "quarter" in text:
        return [After(match.start(), match.end(), 15)]
    if text.startswith("half"):
        return [After(match.start(), match.end(), 30)]
    whole = (match.group("and") or match.group("and2") or match.group("ah") or "").lower()
    whole = whole.split()[0] if whole else "1"
    hours = 1 if whole in ("a", "an") else (int(whole) if whole.isdigit() else number(whole))
    if hours is None or hours > 23:
        return []
    return [After(match.start(), match.end(), hours * 60 + 30)]


@rule(
    rf"\b(?:in|after)\s+(?P<n>an?\s+hour\s+and\s+a\s+half|half\s+an?|\d+(?:\.\d+)?|{EN_NUMBER})"
    rf"\s*(?:{RELATIVE_UNIT})?(?:\s+from\s+now)?"
    rf"|\b(?P<n2>\d+(?:\.\d+)?|{EN_NUMBER})\s*(?P<u2>minutes?|mins?|hours?|hrs?|days?|weeks?)"
    rf"\s+{FROM_NOW}\b",
    NOCASE,
)
def relative(match: re.Match[str]) -> list[Piece]:
    amount = (match.group("n") or match.group("n2")).lower()
    unit_text = match.group("u") or match.group("u2")
    if "hour and a half" in amount:
        return [After(match.start(), match.end(), 90)]
    if unit_text is None:
        return []
    unit = 10080 if unit_text.lower().startswith("week") else unit_minutes(unit_text)
    if unit is None:
        return []
    value = 0.5 if amount.startswith("half") else None
    if value is None:
        value = float(amount) if amount[0].isdigit() else float(number(amount) or 0)
    minutes = value * unit
    if minutes <= 0 or minutes != int(minutes):
        return []
    if minutes >= 1440 and minutes % 1440 == 0:
        return [DayShift(match.start(), match.end(), int(minutes // 1440))]
    if minutes >= 1440:
        return [Unclear(match.start(), match.end(), "vague", "when")]
    return [After(match.start(), match.end(), int(minutes))]


@rule(
    rf"\b(?:in|after)\s+(?:\d+|{EN_NUMBER}|a\s+couple\s+of|a\s+few)\s+(?:months?|years?)\b"
    rf"|\b(?:\d+|{EN_NUMBER})\s+(?:months?|years?)\s+(?:from\s+now|later)\b",
    NOCASE,
)
def months_later(match: re.Match[str]) -> list[Piece]:
    """in 3 months, a year from now: which day exactly? (ask)."""
    return [Unclear(match.start(), match.end(), "vague", "when")]


@rule(
    rf"\b(?P<n>\d+|{EN_NUMBER})\s+(?P<u>days?|weeks?)\s+from\s+(?P<base>today|tomorrow|now)\b",
    NOCASE,
)
def days_from(match: re.Match[str]) -> list[Piece]:
    """a week from today, 3 days from tomorrow: a date (the time comes elsewhere)."""
    amount = number(match.group("n"))
    if amount is None or amount < 1:
        return []
    days = amount * (7 if match.group("u").lower().startswith("week") else 1)
    days += 1 if match.group("base").lower() == "tomorrow" else 0
    return [DayShift(match.start(), match.end(), days)]


RULES = [relative_fraction, relative, relative_hours_minutes, months_later, days_from]
