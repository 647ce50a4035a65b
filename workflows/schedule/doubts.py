"""Phrases we read but will not guess, in either language, each with its own question: only on
holidays (每个法定节假日, "on public holidays": the dates are set by each year's arrangement,
so a standing job cannot know them), and "every 2nd Tuesday" (every two weeks, or the 2nd
Tuesday of each month?), "before 3pm" / "after 6pm" (a span, not a time). "节假日除外" /
"except holidays" are not these: they skip holidays.
"""

from __future__ import annotations

import re

from workflows.schedule.en import NOCASE, WEEKDAY_S
from workflows.schedule.pieces import Piece, Unclear, rule


@rule(
    r"(?:每(?:个|一个)?|逢|在|遇到)?(?:国家|国定|法定|公共)?(?:节假日|假日|节日|放假日?|假期)"
    r"(?:当天|那天|期间|的时候)?(?!\s*(?:都|也|均|一律)?\s*(?:除外|不|跳过|休息|照常|正常|暂停|顺延|停))"
)
def zh_holidays_only(match: re.Match[str]) -> list[Piece]:
    """每个法定节假日, 节假日当天: only on holidays, whose dates each year's arrangement sets
    (asked; "节假日除外" is `skip_holidays`)."""
    return [Unclear(match.start(), match.end(), "unsupported", "holidays_only")]


@rule(
    rf"\bevery\s+(?:2nd|3rd|4th|second|third|fourth)\s+{WEEKDAY_S}\b"
    r"(?!\s+(?:of|in)\s+(?:the|each|every|a)\s+month)",
    NOCASE,
)
def en_nth_or_step(match: re.Match[str]) -> list[Piece]:
    """every 2nd Tuesday: every two weeks, or the 2nd Tuesday of each month? (asked; with "of
    the month" it is `nth_weekday_of_month`)."""
    return [Unclear(match.start(), match.end(), "ambiguous", "nth_or_step", match.group(0))]


@rule(
    r"\b(?:on\s+|every\s+)(?:(?:public|bank|national|statutory|chinese)\s+)?holidays?\b",
    NOCASE,
)
def en_holidays_only(match: re.Match[str]) -> list[Piece]:
    """on public holidays, every holiday: asked (each year's arrangement sets their dates)."""
    return [Unclear(match.start(), match.end(), "unsupported", "holidays_only")]


@rule(
    r"\b(?:before|after|no\s+later\s+than|not\s+before|sometime\s+(?:before|after))"
    r"(?=\s+(?:\d|noon\b|midnight\b))",
    NOCASE,
)
def en_before_after(match: re.Match[str]) -> list[Piece]:
    """before 3pm, after 6pm: some time before or after it, not at it (asked; 3点之前 is
    `zh.around`)."""
    return [Unclear(match.start(), match.end(), "vague", "before_after")]


ZH_RULES = [zh_holidays_only]
EN_RULES = [en_nth_or_step, en_holidays_only, en_before_after]
