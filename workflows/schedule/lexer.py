"""Finding the time expression in a text.

1. Every rule of every grammar (zones, numeric dates, Chinese, English) runs over the text; each
   match that its handler accepts is a *candidate* (a span and its pieces).
2. Candidates are kept longest first (then leftmost, then in rule order), never overlapping:
   "每周一三五" beats "周一", "between 9am and 5pm" beats "9am".
3. Kept candidates separated only by *glue* (spaces, punctuation, 的/在/和/提醒我/at/on/and …)
   form one *cluster*: one time expression. The cluster with the most weight is the schedule;
   a cluster holding only the missing half (a time of day when the main one has only days,
   or the reverse, or the window of a step) joins it. Other clusters stay in the task: in
   "每天9点检查3号机器" the "3号" is part of the task, not a date. A routine moment (下班前) at
   the edge of a cluster with a clock time is task, not time.

Usage::

    found = scan("每天凌晨3点清理7天前的日志")
    found.pieces            # (Recur(Daily), Clock(3, 0, period="dawn"))
    found.spans             # [(0, 7)]: what the task loses
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from workflows.schedule import (
    dates,
    doubts,
    en,
    en_clock,
    en_relative,
    en_repeats,
    ends,
    feasts,
    month_end,
    zh,
    zh_repeats,
    zones,
)
from workflows.schedule.pieces import (
    After,
    Clock,
    Cycle,
    DateOf,
    DayShift,
    Feast,
    Minute,
    Months,
    Period,
    Piece,
    Recur,
    Routine,
    Rule,
    SkipHolidays,
    SkipWeekends,
    Span,
    Step,
    Unclear,
    Until,
    WeekdayDate,
    Zone,
    scripted,
)

RULES: list[Rule] = [
    *zones.RULES,
    *dates.RULES,
    *scripted("zh", ends.ZH_RULES),  # before zh: 下周每天 is a bounded week, not the vague 下周
    *scripted("en", ends.EN_RULES),
    *scripted("zh", zh.RULES, besides=(zh.clock, zh.window, zh.dotted)),
    *scripted("zh", zh_repeats.RULES),
    *scripted("en", en.RULES, besides=(en.clock, en.bare_hour, en.dash_window)),
    *scripted("en", en_relative.RULES),
    *scripted("en", en_clock.RULES, besides=(en_clock.dotted,)),
    *scripted("en", en_repeats.RULES),
    *scripted("zh", month_end.ZH_RULES),
    *scripted("en", month_end.EN_RULES),
    *scripted("zh", doubts.ZH_RULES),
    *scripted("en", doubts.EN_RULES),
    *scripted("zh", (feasts.zh_feast,)),
    *scripted("en", (feasts.en_feast,)),
    feasts.nth_feast,
]
"""Every rule, in the order that breaks ties; Chinese rules need a Chinese character in the
text, English ones a Latin letter, except those that also read digits alone (21:00, 9:30-17:30,
18.45, @7), which `tests/schedule/test_lexer.py` checks."""
_WIDE = str.maketrans(
    "０１２３４５６７８９：　點鐘後週時號個兩禮晝間鐘兒曆",
    "0123456789: 点钟后周时号个两礼昼间钟儿历",
)
"""Full-width digits, colon and space as ASCII, and the traditional characters of time words as
simplified ones (one character for one: spans stay valid for the original text)."""
GLUE = re.compile(
    r"(?:[\s,，、;；:：@]|的|在|于|和|及|与|跟|并且|并|或|到|至|起|开始|从|都|也|再|还|就|是"
    r"|提醒我|提醒|帮我|请|给我|叫我|记得|定时"
    r"|\b(?:and|at|on|in|of|the|from|by|then|also|please|starting|remind\s+me)\b)*",
    re.IGNORECASE,
)
CLOCKISH = (Clock, Period, Minute)
_TRAILER = re.compile(r"[\s,，.。;；!！~～]*(?:吧|哦|啊|哈)?[\s,，.。!！~～]*")
"""What may follow a repetition said last (…，每周。): punctuation and a particle."""
MODIFIERS = (SkipHolidays, SkipWeekends, Until)
"""Pieces that change the main expression wherever they are written (节假日除外 in brackets,
"…，到月底为止" after the task)."""
DAYISH = (Recur, DayShift, WeekdayDate, DateOf, Feast, Cycle, Months)


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    pieces: tuple[Piece, ...]
    order: int


@dataclass(frozen=True)
class Scan:
    """The time expression found: its pieces (in text order), the spans the task loses, the
    zones named anywhere, and every candidate (for tests and the "unreadable" check)."""

    pieces: tuple[Piece, ...]
    spans: tuple[tuple[int, int], ...]
    zones: tuple[Zone, ...]
    candidates: tuple[Candidate, ...]

    def within(self, positions: Sequence[int]) -> Scan:
        """This scan of a `compact` text with its spans moved back into the original text
        (`positions`: the original index of each compact character)."""
        spans = tuple((positions[start], positions[end - 1] + 1) for start, end in self.spans)
        return replace(self, spans=spans)


_LOOSE = re.compile(
    r"(?<=[\u4e00-\u9fff\d])(\s+)(?=[\u4e00-\u9fff])"
    r"|(?<=[\u4e00-\u9fff])(\s+)(?=\d+\s*[点时分秒号日月年天周个小刻半:：])"
    r"|(?<=\d)(\s*)[:：](\s*)(?=\d)"
)
"""Spaces the grammars do not read: inside Chinese (每 天 早 上 9 点), between Chinese and a
number with its unit (每天 9 点, 每 2 小时), around the colon of a clock (9 : 30). Chinese puts
no spaces between words, so dropping them changes no meaning; spaces by Latin words stay
("每周五 5pm", "9am 检查"), as English rules need their word boundaries."""


def normalise(text: str) -> str:
    """The text the grammars read (see `_WIDE`); same length, so spans stay valid."""
    return text.translate(_WIDE)


def compact(text: str) -> tuple[str, tuple[int, ...]]:
    """`text` without the spaces of `_LOOSE`, and for each character kept its index in
    `text` (to map spans found in the compact text back: see `Scan.within`)."""
    dropped = {
        index
        for match in _LOOSE.finditer(text)
        for group in range(1, 5)
        if match.group(group)
        for index in range(match.start(group), match.end(group))
    }
    kept = [index for index in range(len(text)) if index not in dropped]
    return "".join(text[index] for index in kept), tuple(kept)


def candidates(text: str) -> list[Candidate]:
    """Every accepted match, then the non-overlapping best (see the module docstring)."""
    found: list[Candidate] = []
    for order, item in enumerate(RULES):
        if not item.may_match(text):
            continue
        for match in item.pattern.finditer(text):
            if match.end() <= match.start():
                continue
            pieces = item.handler(match)
            if pieces:
                found.append(Candidate(match.start(), match.end(), tuple(pieces), order))
    found.sort(key=lambda c: (c.start - c.end, c.start, c.order))
    used = [False] * len(text)
    kept: list[Candidate] = []
    for candidate in found:
        if any(used[candidate.start : candidate.end]):
            continue
        for index in range(candidate.start, candidate.end):
            used[index] = True
        kept.append(candidate)
    kept.sort(key=lambda c: c.start)
    return kept


def _clusters(text: str, kept: Sequence[Candidate]) -> list[list[Candidate]]:
    groups: list[list[Candidate]] = []
    for candidate in kept:
        if groups and GLUE.fullmatch(text, groups[-1][-1].end, candidate.start):
            groups[-1].append(candidate)
        else:
            groups.append([candidate])
    return groups


def _pieces(group: Sequence[Candidate]) -> list[Piece]:
    return [piece for candidate in group for piece in candidate.pieces]


def _weight(group: Sequence[Candidate]) -> int:
    return sum(piece.weight for piece in _pieces(group))


def _only(group: Sequence[Candidate], kinds: tuple[type[Piece], ...]) -> bool:
    return all(isinstance(piece, kinds) for piece in _pieces(group))


def _has(group: Sequence[Candidate], kinds: tuple[type[Piece], ...]) -> bool:
    return any(isinstance(piece, kinds) for piece in _pieces(group))


def _meaningful(group: Sequence[Candidate]) -> bool:
    """A lone weak Chinese-numeral clock (两点, 一点) or a lone zone is no time expression."""
    pieces = [piece for piece in _pieces(group) if not isinstance(piece, Zone)]
    if not pieces:
        return False
    return not all(isinstance(piece, Clock) and piece.weak for piece in pieces)


def _timed(group: list[Candidate]) -> list[Candidate]:
    """`group` without the routine moments (下班前) at its ends when a clock time says when."""
    if not any(isinstance(p, Clock) and not p.weak for p in _pieces(group)):
        return group
    while _only(group[-1:], (Routine,)) and len(group) > 1:
        group = group[:-1]
    while _only(group[:1], (Routine,)) and len(group) > 1:
        group = group[1:]
    return group


def scan(text: str) -> Scan:
    """The main time expression of `text` (already `normalise`d)."""
    kept = candidates(text)
    found_zones = tuple(p for c in kept for p in c.pieces if isinstance(p, Zone))
    groups = [_timed(group) for group in _clusters(text, kept) if _meaningful(group)]
    if not groups:
        zone_spans = tuple((c.start, c.end) for c in kept if _only([c], (Zone,)))
        return Scan((), zone_spans, found_zones, tuple(kept))
    best = max(groups, key=_weight)  # max keeps the first of equals: the leftmost
    chosen = [best]
    for group in groups:
        if group is best or _has(group, (Unclear,)):
            continue
        if _only(group, MODIFIERS):
            chosen.append(group)
            continue
        merged = [c for g in chosen for c in g]
        clocks_missing = not _has(merged, (Clock, Period, Span, Step, After))
        days_missing = not _has(merged, (*DAYISH, Step, After))
        strong = not any(isinstance(p, Clock) and p.weak for p in _pieces(group))
        adds_clock = clocks_missing and strong and _only(group, CLOCKISH)
        adds_days = days_missing and _only(group, DAYISH) and _has(merged, (Clock,))
        adds_repeat = (  # 周五下午4点写周报，每周: the repetition said last, after the task
            _only(group, (Recur, Cycle))
            and not _has(merged, (Recur, Cycle, Step, After))
            and _TRAILER.fullmatch(text, group[-1].end) is not None
        )
        adds_window = (  # 每隔10分钟检查一次，从9点到18点: the step's window, said after the task
            _only(group, (Span, Period)) and _has(group, (Span,)) and _has(merged, (Step,))
        ) and not _has(merged, (Span, Clock))
        if adds_clock or adds_days or adds_window or adds_repeat:
            chosen.append(group)
    chosen.sort(key=lambda g: g[0].start)
    pieces = tuple(p for g in chosen for c in g for p in c.pieces if not isinstance(p, Zone))
    spans = [(g[0].start, g[-1].end) for g in chosen]
    inside = {id(c) for g in chosen for c in g}
    spans += [(c.start, c.end) for c in kept if _only([c], (Zone,)) and id(c) not in inside]
    return Scan(pieces, tuple(sorted(spans)), found_zones, tuple(kept))
