"""Natural-language schedules, Chinese and English, read by rules (no model): the entry point.

    result = parse("每个工作日早上9点检查服务器健康并发到群里",
                   now=datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
                   timezone="Asia/Shanghai")
    result.status       # "scheduled" | "clarify" | "not_schedule"
    result.task         # "检查服务器健康并发到群里"
    result.spec         # Calendar((09:00,), Weekly(mon…fri), "Asia/Shanghai")
    result.contract(now)  # the JSON object of `larkops schedule parse --json`

What is a schedule: a text whose time expression the rules read (see `lexer`, `reading`).
Not a schedule: no time expression and no request for one (提醒/remind…), a question or a
remark about the past without such a request ("昨天3点的告警是什么？"), a repetition said of
what happens rather than asked for (这个告警每天都有, "the job ran every 5 minutes"), a slash
command other than /schedule. A request without a time (提醒我开会) or with a time we will
not guess gets a question (`status` clarify) in the language of the text (any CJK character →
Chinese).
`reason` says why: vague | ambiguous | passed | impossible | conflict | no_time | unreadable |
unsupported. Only unreadable and unsupported texts may go to a model (`fallback`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from workflows.schedule import en, zh
from workflows.schedule.clarify import Clarify
from workflows.schedule.clock import EXACT_PERIODS
from workflows.schedule.compiler import cron_of, next_runs
from workflows.schedule.holidays import workdays_for
from workflows.schedule.lexer import compact, normalise, scan
from workflows.schedule.pieces import SCRIPTS, Language, Lazy, Period, Recur, Step
from workflows.schedule.reading import read
from workflows.schedule.spec import Once, Spec, SpecError
from workflows.schedule.task import task_of
from workflows.schedule.wording import question
from workflows.schedule.zones import known

Status = Literal["scheduled", "clarify", "not_schedule"]
Source = Literal["rules", "llm"]
DEFAULT_TIMEZONE = "Asia/Shanghai"
COMMANDS = ("/schedule", "/remind", "/定时", "/提醒")
"""Slash commands whose argument is a schedule text (others are not schedules)."""
FALLBACK_REASONS = ("unreadable", "unsupported")
_TIMEISH = (
    Lazy(
        r"[点号]钟|(?:周|星期|礼拜)[一二三四五六日天]|每(?:天|日|周|星期|月|年|小时|分钟|隔|逢)"
        r"|初[一二三四五六七八九十]",
        script="zh",
    ),
    Lazy(
        r"\b\d{1,2}\s*(?:am|pm)\b|o'?clock|\b(?:mondays?|tuesdays?"
        r"|wednesdays?|thursdays?|fridays?|saturdays?|sundays?|tomorrow|tonight|noon|midnight"
        r"|january|february|march|april|june|july|august|september|october|november|december"
        r"|fortnight)\b",
        re.IGNORECASE,
        "en",
    ),
)
"""Time words that suggest a time expression the rules could not read (then: unreadable)."""
_UNREAD = (
    Lazy(
        r"每逢|每隔|农历|阴历|初[一二三四五六七八九十]|双周(?![报会刊])|\d{1,4}\s*年(?![度级终报薪])"
        r"|\d{1,2}\s*月\s*\d{1,2}(?!\d)"
        r"|[一二三四五六七八九十]{1,2}月[一二三四五六七八九十]{1,3}[日号]|最后一天"
        r"|(?:周|星期|礼拜)[一二三四五六日天]|^[\u4e00-\u9fff]{1,4}节$|节(?:那天|当天)"
        r"|[节夕][前后]\s*(?:第|最后|[一二两三四五六七八九十]|\d)"
        r"|(?:提)?前\s*(?:\d+|[一二两三四五六七八九十半]+)\s*个?(?:分钟|小时)"
        r"|次日|翌日|顺延|(?:节假日|假日|周末|双休日?|调休)\s*(?:都|均|一律)?\s*(?:除外|不|跳过|休息|照常|也|正常|暂停)"
        r"|每(?:个|一个)?(?:交易|休息|假|节假|非工作|营业|上班|值班|发薪|结算|开盘)日"
        r"|每个?(?:月|季度?|年)(?:的)?(?:首|头|第|最后|倒数|末|初|中)"
        r"|直到|为止|截止|截至|持续\s*(?:\d|[一二两三四五六七八九十半])|每半个?月"
        r"|(?:工作|上班|办公|营业|值班)(?:时间|时段)",
        script="zh",
    ),
    Lazy(
        r"\bevery\s+other\b|\bfortnight|\bbiweekly\b"
        r"|\b\d{1,2}(?:st|nd|rd|th)\b|\bthe\s+(?:\w+-)?(?:teenth|tieth|[a-z]*(?:fourth|fifth|sixth"
        r"|seventh|eighth|ninth|tenth|eleventh|twelfth))\b|\b(?:mon|tues|wednes|thurs|fri|satur"
        r"|sun)days?\b|\b(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)\b"
        r"|\bend\s+of\s+(?:the\s+)?(?:month|week|year)\b"
        r"|\b(?:january|february|march|april|june|july|august|september|october|november|december)\b"
        r"|\bthe\s+last\b(?!\s+(?:(?:\d+|few|couple\s+of|two|three|five|ten|fifteen|thirty"
        r"|twenty-four)\s*(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?)|hour|minute)\b)|\b(?:days?|weeks?|months?)\s+from\b|\bfrom\s+(?:today|tomorrow)\b"
        r"|\b(?:minutes?|mins?|hours?|hrs?)\s+(?:before|after|earlier|prior)\b"
        r"|\bevery\s+(?:\w+\s+)?(?:days?|weeks?|months?|years?|hours?|minutes?|other|first|last|second|third"
        r"|fourth|fifth|\d+(?:st|nd|rd|th)?)\b|\b(?:first|last)\s+day\s+of\b|\buntil\b|\btill\b"
        r"|\b(?:business|working|work|office)\s+hours\b|\bweekends?\b"
        r"|\b(?:jan|feb|apr|jun|jul|aug|sept?|oct|nov|dec)\.?\s+\d",
        re.IGNORECASE,
        "en",
    ),
    Lazy(r"(?<![\dA-Za-z.])\d{1,2}[-/]\d{1,2}(?![\dA-Za-z.])|^\d{1,2}\.\d{1,2}(?![\d.])"),
)
"""Left in the task after reading, these mean part of the time expression was not read (a
date or a weekday left behind would be a guess at another day: ask instead)."""


DAYTIME = (
    Lazy(
        r"开会|会议|例会|站会|周会|晨会|面试|上课|下课|下班|上班|午饭|吃饭|拜访|见客户|打电话|评审|培训",
        script="zh",
    ),
    Lazy(
        r"\b(?:meeting|standup|stand-up|call|lunch|class|interview|review|sync)\b",
        re.IGNORECASE,
        "en",
    ),
)
"""Tasks people do by day: a bare 1–6点 for them may well be the afternoon (then we ask)."""


def found_in(patterns: tuple[Lazy, ...], text: str) -> bool:
    """Whether any of `patterns` matches in `text`."""
    return any(pattern.search(text) for pattern in patterns)


def language_of(text: str) -> Language:
    """`zh` when the text has any CJK character, else `en`."""
    return "zh" if SCRIPTS["zh"].search(text) else "en"


@dataclass(frozen=True)
class ParseResult:
    """What a text asks for. `spec` is set when `status` is scheduled, `question` when clarify;
    `timezone` is the zone used (one named in the text wins over the default)."""

    status: Status
    task: str | None
    timezone: str
    language: Language
    spec: Spec | None = None
    question: str | None = None
    reason: str | None = None
    source: Source = "rules"
    options: tuple[Spec, ...] = ()
    """For a question: the specs the answer may be (the card offers them as buttons)."""
    workdays: str = "mon-fri"
    """The calendar 工作日 / "workday" were read with (`cn` or `mon-fri`)."""

    @property
    def may_ask_model(self) -> bool:
        """Whether a model may try: the rules could not read (not: would not guess)."""
        return self.status == "clarify" and self.reason in FALLBACK_REASONS

    def contract(self, now: datetime, count: int = 5) -> dict[str, Any]:
        """The JSON object of the `larkops schedule parse --json` contract."""
        runs = [] if self.spec is None else next_runs(self.spec, now, count)
        run_at = None
        if isinstance(self.spec, Once):
            run_at = runs[0].isoformat() if runs else None
        return {
            "status": self.status,
            "task": self.task,
            "timezone": self.timezone,
            "cron": None if self.spec is None else cron_of(self.spec),
            "run_at": run_at,
            "next_runs": [run.isoformat() for run in runs],
            "question": self.question,
            "source": self.source,
        }


_ADDRESS = re.compile(r"^@[^\s@]+\s+")
"""Mentions the text starts with (@bot, Feishu's @_user_1): who is addressed, not the task."""


def _command(text: str) -> tuple[str, bool]:
    """The text after leading mentions and a schedule slash command; False when it is another
    command."""
    text = _ADDRESS.sub("", text)
    if not text.startswith("/"):
        return text, True
    head, _, rest = text.partition(" ")
    if head.lower() in COMMANDS:
        return rest.strip(), True
    return text, False


def zone_of(now: datetime | None, timezone: str) -> datetime:
    """`now` (aware; naive means in `timezone`; None is the current time) in `timezone`."""
    zone = ZoneInfo(timezone)
    if now is None:
        return datetime.now(zone)
    if now.tzinfo is None:
        return now.replace(tzinfo=zone)
    return now.astimezone(zone)


def parse(
    text: str,
    *,
    now: datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    workdays: str | None = None,
) -> ParseResult:
    """Read `text` at `now` (default: the current time) with `timezone` as the default zone;
    工作日 / "workday" mean the working days of `workdays` (`cn`, `mon-fri`; None: the default
    of `workdays_for`)."""
    if not known(timezone):
        raise ValueError(f"unknown time zone {timezone!r}")
    original, is_schedule_text = _command(text.strip())
    language = language_of(original)
    calendar = workdays or workdays_for(timezone, language)
    if not original or not is_schedule_text:
        return ParseResult("not_schedule", None, timezone, language, reason="not_schedule")
    text, positions = compact(normalise(original))
    found = scan(text).within(positions)
    names = sorted({zone.name for zone in found.zones})
    zone_name = names[0] if names else timezone
    task = task_of(original, found.spans)

    def clarify(
        topic: str,
        reason: str,
        values: dict[str, str] | None = None,
        options: tuple[Spec, ...] = (),
    ) -> ParseResult:
        ask = question(Clarify(topic, reason, values or {}), language, task)
        return ParseResult(
            "clarify",
            task,
            zone_name,
            language,
            None,
            ask,
            reason,
            options=options,
            workdays=calendar,
        )

    if len(names) > 1:
        return clarify("which_zone", "conflict", {"text": " / ".join(names)})
    local_now = zone_of(now, zone_name)
    asks = bool(zh.CUES.search(text) or en.CUES.search(text))
    asks_nothing = bool(
        zh.QUESTION.search(text) or en.QUESTION.search(text) or zh.PAST.search(text)
    ) or bool(en.PAST.search(text))
    if not asks and (zh.REMARK.search(text) or en.REMARK.search(text)):
        return ParseResult("not_schedule", None, zone_name, language, reason="not_schedule")
    pieces = found.pieces
    vague_only = all(isinstance(p, Period) and p.name not in EXACT_PERIODS for p in pieces)
    if vague_only:
        if asks_nothing and not asks:
            return ParseResult("not_schedule", None, zone_name, language, reason="not_schedule")
        if found_in(_TIMEISH, text):
            return clarify("unreadable", "unreadable")
        if asks:
            return clarify("vague_period" if pieces else "no_time", "no_time", _period(pieces))
        return ParseResult("not_schedule", None, zone_name, language, reason="not_schedule")
    if asks_nothing and not asks and not any(isinstance(p, Recur | Step) for p in pieces):
        return ParseResult("not_schedule", None, zone_name, language, reason="not_schedule")
    if not asks and _names_a_thing(original, found.spans) and zh.DONE.search(text):
        return ParseResult("not_schedule", None, zone_name, language, reason="not_schedule")
    if task is not None and found_in(_UNREAD, task):
        return clarify("unreadable", "unreadable")
    try:
        daytime = found_in(DAYTIME, task or "")
        reading = read(pieces, local_now, calendar, daytime=daytime)
    except SpecError:  # out of range for a spec (a step over a year…)
        return clarify("unsupported", "unsupported")
    if isinstance(reading, Clarify):
        return clarify(reading.topic, reading.reason, reading.values, reading.options)
    try:
        first = next_runs(reading, local_now, 1)
    except SpecError:
        return clarify("unsupported", "unsupported")
    if not first:
        return clarify("bad_date", "impossible")
    return ParseResult("scheduled", task, zone_name, language, spec=reading, workdays=calendar)


def _names_a_thing(text: str, spans: tuple[tuple[int, int], ...]) -> bool:
    """Whether the time is written as an attribute (明天10点的会议: 的 right after it)."""
    return any(text[end:].lstrip().startswith("的") for _, end in spans)


def _period(pieces: tuple[object, ...]) -> dict[str, str]:
    for piece in pieces:
        if isinstance(piece, Period):
            return {"period": piece.name}
    return {}
