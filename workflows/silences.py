"""Maintenance windows: `/silence <matcher> <duration>` suppresses matching alerts.

Matcher syntax (a subset of Alertmanager's): comma-separated `label=value`, `label!=value`,
`label=~regex`, `label!~regex`, optionally in braces, with spaces around commas and operators;
a bare word is refused (write `alertname=word`). Values may be quoted (a comma in quotes is the
value's). `{}` (no term) matches every alert, as in Alertmanager;
such a silence, like any other that matches every alert (`matches_everything`), needs another
approver's confirmation.
Durations: `30m`, `2h`, `1d`, `1h30m`, `2 hours`, `2小时`, `半小时` … (`workflows.silence_words`;
at most 7 days).

Usage::

    matchers = parse_matcher('alertname=DiskFull,instance=~"db-.*"')
    matches(matchers, {"alertname": "DiskFull", "instance": "db-1"})   # True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

from workflows.silence_words import parse_quantity, split_terms

MAX_SILENCE = timedelta(days=7)
CONFIRM_OVER = timedelta(hours=24)  # longer silences need another approver's confirmation
# label values no selective regex matches all of: a regex term that does, matches every alert
_PROBES = ("WebDown", "db-7:9100", "prod", "x", "告警 1", "a.b/c-d_e")
_TERM = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


# why a silence needs another approver's confirmation before it is in force
Breadth = Literal["everything", "long"]

SilenceProblem = Literal[
    "no_matcher", "bare_word", "unreadable", "bad_regex", "bad_duration", "duration_range"
]


class SilenceError(ValueError):
    """The matcher or the duration cannot be read: `code` says why (the chat words it from
    `silence.error.<code>`), `values` what it is about; the message is for logs."""

    def __init__(self, code: SilenceProblem, message: str, **values: str) -> None:
        super().__init__(message)
        self.code: SilenceProblem = code
        self.values = values


Matchers = list[list[str]]  # [label, op, value]; JSON-friendly for storage


def parse_matcher(text: str) -> Matchers:
    """The terms of a matcher; `{}` is the empty matcher (every alert)."""
    braced = text.strip()
    if braced.startswith("{") and braced.endswith("}"):
        inside = braced[1:-1].strip()
        if not inside:
            return []  # `{}`: written as matching everything, and confirmed as such
        braced = inside
    text = braced
    if not text or len(text) > 500:
        raise SilenceError("no_matcher", "a matcher is needed")
    found: Matchers = []
    for term in split_terms(text):
        if not term.strip():
            continue
        match = _TERM.match(term)
        if match is None:
            if re.fullmatch(r"[A-Za-z0-9_.:-]{1,200}", term.strip()):
                # a bare word is not read as alertname=word: say the syntax instead
                raise SilenceError("bare_word", f"bare word {term.strip()!r}", term=term.strip())
            raise SilenceError("unreadable", f"cannot read {term.strip()!r}", term=term.strip())
        label, op, value = match.groups()
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise SilenceError("bad_regex", f"bad regex {value!r}: {exc}", term=value) from None
        found.append([label, op, value])
    if not found:
        raise SilenceError("no_matcher", "a matcher is needed")
    return found


def matches(matchers: Matchers, labels: Mapping[str, str]) -> bool:
    for label, op, value in matchers:
        actual = labels.get(label, "")
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "=~" and re.fullmatch(value, actual) is None:
            return False
        if op == "!~" and re.fullmatch(value, actual) is not None:
            return False
    return True


def parse_duration(text: str) -> timedelta:
    """A silence's duration, as people write it (`workflows.silence_words`), of 1 s to 7 days."""
    duration = parse_quantity(text.strip())
    if duration is None:
        raise SilenceError("bad_duration", f"cannot read the duration {text!r}", term=text)
    if duration <= timedelta(0) or duration > MAX_SILENCE:
        raise SilenceError("duration_range", "a silence lasts between 1 second and 7 days")
    return duration


def matches_everything(matchers: Matchers) -> bool:
    """Whether the matchers hold back (nearly) every alert: no term picks alerts out. The one
    place this is decided (`/silence`, the report's suggestions, the API all ask it).

    A term picks alerts out when it asks for a value (`label=value`, not `label=""`) or a
    regex that some ordinary value fails (`instance=~"db-.*"`, not `.*` or `.+`). `{}` has no
    term; a negative term (`env!=staging`, `alertname!~"^$"`) keeps every alert but a few;
    `label=""` keeps every alert without the label: none of them picks alerts out."""
    return not any(_picks_out(term) for term in matchers)


def _picks_out(term: list[str]) -> bool:
    label, op, value = term
    if op == "=":
        return value != ""
    if op == "=~":
        return not all(matches([term], {label: probe}) for probe in _PROBES)
    return False


def needs_confirmation(matchers: Matchers, duration: timedelta) -> list[Breadth]:
    """Why this silence needs another approver's confirmation (empty: it does not)."""
    why: list[Breadth] = []
    if matches_everything(matchers):
        why.append("everything")
    if duration > CONFIRM_OVER:
        why.append("long")
    return why
