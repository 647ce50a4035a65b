"""The pieces a grammar recognises in a text: each is a span of the text and what it means.

The Chinese and English grammars (`zh`, `en`) turn matches into pieces; the lexer keeps the
best non-overlapping ones; `reading` combines the pieces of one time expression into a spec.
A grammar rule is a regex and a function from its match to pieces (an empty list rejects it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

from workflows.schedule.spec import Days

Language = Literal["zh", "en"]


@dataclass(frozen=True)
class Piece:
    start: int
    end: int

    weight = 1
    """How much of a time expression this is (picks the main expression in a text)."""


@dataclass(frozen=True)
class Recur(Piece):
    """A recurrence of days: 每天, every weekday, 每月最后一天, the first Monday of each month."""

    days: Days
    months: tuple[int, ...] = ()

    weight = 3


@dataclass(frozen=True)
class Step(Piece):
    """Every N minutes (hours and days are converted): 每30分钟, every 2 hours, hourly."""

    minutes: int

    weight = 3


@dataclass(frozen=True)
class Clock(Piece):
    """A time of day as written: `hour` as written (1–12 with a meridiem), `minute`.

    `period` is one written right before it (下午3点); `bare` means no minutes and no
    meridiem were written (`at 12`); `weak` marks Chinese-numeral hours that could be plain
    words (有两点建议, 快一点) and count only beside another time piece."""

    hour: int
    minute: int
    language: Language
    meridiem: Literal["am", "pm"] | None = None
    period: str | None = None
    bare: bool = False
    weak: bool = False

    weight = 2


@dataclass(frozen=True)
class Span(Piece):
    """A daily window: 9点到18点, between 9am and 5pm."""

    first: Clock
    last: Clock

    weight = 3


@dataclass(frozen=True)
class Period(Piece):
    """A part of the day: dawn, morning, noon, afternoon, dusk, evening, night, midnight."""

    name: str


@dataclass(frozen=True)
class DayShift(Piece):
    """Today (0), tomorrow (1), the day after (2)…"""

    days: int

    weight = 2


@dataclass(frozen=True)
class WeekdayDate(Piece):
    """A weekday as a date: `week` None is the coming one, 0 this week, 1 next week."""

    weekday: int
    week: int | None = None

    weight = 2


@dataclass(frozen=True)
class DateOf(Piece):
    """A calendar date; `month` None is the coming day `day`, `year` None the coming one."""

    day: int
    month: int | None = None
    year: int | None = None
    next_month: bool = False
    years_ahead: int | None = None
    """0 this year (今年), 1 next year (明年); `year` None and this None: the coming one."""
    last: bool = False
    """The last day of the month (`day` is then ignored): 2026年最后一天, 下个月最后一天."""

    weight = 2


@dataclass(frozen=True)
class Feast(Piece):
    """A festival's day (除夕, 中秋, Christmas…): `name` among `holidays.FESTIVALS`; in `year`
    (2027年春节) or `years_ahead` (明年元旦: 1) when written, else the coming one."""

    name: str
    year: int | None = None
    years_ahead: int | None = None

    weight = 2


@dataclass(frozen=True)
class Cycle(Piece):
    """A repetition whose days come from elsewhere in the text: every `count` `unit`s
    (`week`, `month`, `quarter`, `year`), e.g. 每两周 + 周五, "every year" + "on July 4th"."""

    unit: Literal["week", "month", "quarter", "year"]
    count: int = 1
    last: bool = False
    """A quarter's last day (每季度最后一天) rather than its first month's days."""

    weight = 2


@dataclass(frozen=True)
class Months(Piece):
    """Only in these months: 3月的每周二, "only in December"."""

    months: tuple[int, ...]

    weight = 1


@dataclass(frozen=True)
class SkipHolidays(Piece):
    """节假日除外, "except holidays": only on the working days of China's calendar."""

    weight = 1


@dataclass(frozen=True)
class Until(Piece):
    """The last day of a repetition: a day piece (到12月31日为止, 到月底, "until Dec 31"), a
    length from the first fire (持续一周: `days` 7, "for a month": `months` 1), or a number of
    fires (共4次: `runs` 4)."""

    target: Piece | None = None
    days: int = 0
    months: int = 0
    runs: int = 0
    """共4次, "4 times": the repetition ends with its `runs`-th fire."""

    weight = 1


@dataclass(frozen=True)
class SkipWeekends(Piece):
    """周末除外, 除了双休: every day becomes Monday to Friday."""

    weight = 1


@dataclass(frozen=True)
class Minute(Piece):
    """A minute past each hour: "at quarter past", "on the half hour", 每小时的15分."""

    minute: int

    weight = 1


@dataclass(frozen=True)
class After(Piece):
    """A delay from now: 30分钟后, in 2 hours."""

    minutes: int

    weight = 3


@dataclass(frozen=True)
class Zone(Piece):
    """An explicit time zone: 北京时间, UTC, New York time."""

    name: str

    weight = 0


@dataclass(frozen=True)
class Unclear(Piece):
    """Something we read but will not guess: `reason` is vague | ambiguous | unsupported |
    impossible; `topic` names the question to ask (see `wording.question`)."""

    reason: str
    topic: str
    detail: str = ""


@dataclass(frozen=True)
class Routine(Unclear):
    """A moment of the day's routine (下班前, 饭后, 睡前): asked about alone; beside a time of
    day that says when (每天18点提醒下班前检查工单) it is part of the task."""


Handler = Callable[[re.Match[str]], list[Piece]]


Script = Literal["zh", "en", ""]
SCRIPTS: dict[str, re.Pattern[str]] = {
    "zh": re.compile(r"[\u3400-\u9fff]"),
    "en": re.compile(r"[A-Za-z]"),
}
"""What a text must hold for a rule of that script to match in it (Chinese characters, Latin
letters); "" is any text."""


@dataclass(frozen=True)
class Lazy:
    """A regex compiled on first use, never tried on a text without its `script`'s characters
    (most of a one-line command's start-up time was compiling regexes it did not need)."""

    source: str
    flags: int = 0
    script: Script = ""

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.source, self.flags)

    def may_match(self, text: str) -> bool:
        """False when `text` lacks the characters every match holds."""
        return not self.script or SCRIPTS[self.script].search(text) is not None

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text) if self.may_match(text) else None


@dataclass(frozen=True)
class Rule:
    """A regex and what its matches mean; a rule of a script is tried only on a text with that
    script's characters, and compiled only when first tried (see `Lazy`)."""

    regex: Lazy
    handler: Handler
    name: str = ""

    @property
    def pattern(self) -> re.Pattern[str]:
        return self.regex.pattern

    @property
    def script(self) -> Script:
        return self.regex.script

    def may_match(self, text: str) -> bool:
        return self.regex.may_match(text)


def rule(pattern: str, flags: int = 0) -> Callable[[Handler], Rule]:
    """Decorate a handler into a `Rule` for `pattern`."""

    def make(handler: Handler) -> Rule:
        return Rule(Lazy(pattern, flags), handler, handler.__name__)

    return make


def scripted(script: Script, rules: Sequence[Rule], *, besides: Sequence[Rule] = ()) -> list[Rule]:
    """`rules` as rules of `script`, except `besides` (those may match digits alone: 21:00)."""
    return [
        item if item in besides else replace(item, regex=replace(item.regex, script=script))
        for item in rules
    ]
