"""Alerts posted into a Lark group by alert bots (text, rich-text post or interactive card).

Formats, tried in this order:

1. PrometheusAlert templates (`[Prometheus告警信息]`, `[PROMETHEUS-恢复信息]`, `Grafana告警信息`)
   → source "prometheusalert" (`workflows.intake.prometheusalert`);
2. a first line opening with a state tag, `[FIRING:2] …`, `[RESOLVED] …`, `[Alerting] …`,
   `[OK] …` → source "alertmanager" or "grafana" (`workflows.intake.bracketed`);
3. anything else is a plain text alert, source "text": the first line is the title, `key: value`
   lines and `key=value` tokens become labels/annotations, and it is resolved when it reads as a
   recovery (恢复, 已恢复, 已解决, resolved, recovered, [OK]; "未恢复", "恢复失败", "not
   resolved" do not count) — the title decides first, the body only when the title is neutral.

Cards: the header title is read as the first line, then the card's text. Input is capped at
64 KiB and 500 lines before parsing. Times without an offset are read in `zone` (China Standard
Time by default: PrometheusAlert and most Feishu templates print Beijing time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from workflows.intake.alert import AlertParseError, ParsedAlert, Status
from workflows.intake.alertmanager import status_of
from workflows.intake.bracketed import bracketed_state, read_bracketed
from workflows.intake.card import card_lines
from workflows.intake.draft import AlertDraft
from workflows.intake.fields import FieldSet, collect, inline_pairs, read_pair, well_known_key
from workflows.intake.prometheusalert import has_marker, read_prometheusalert
from workflows.intake.text import clean_block, clean_line, plain_line
from workflows.intake.timestamps import CHINA_STANDARD_TIME, parse_timestamp

MAX_INPUT_CHARS = 64 * 1024
MAX_LINES = 500

_NEGATED_RE = re.compile(
    r"(?i)未恢复|没有恢复|尚未恢复|未能恢复|无法恢复|不能恢复|未解决|待恢复|"
    r"恢复失败|恢复中|恢复超时|自动恢复|"
    r"not\s+(?:yet\s+)?(?:been\s+)?(?:resolved|recovered)|unresolved|unrecovered"
)
_FIRING_RE = re.compile(r"(?i)\b(?:firing|alerting|problem)\b|告警中|触发|故障|异常|报警")
_RECOVERED_RE = re.compile(r"(?i)已恢复|恢复正常|已解决|恢复|\bresolved\b|\brecovered\b|\[ok\]")


def parse_chat_message(
    message_type: str,
    text: str,
    card: dict[str, Any] | None,
    *,
    zone: tzinfo = CHINA_STANDARD_TIME,
) -> list[ParsedAlert]:
    """Parse a message an alert bot posted in a group into one or more alerts.

    `text` is the message's plain text (for cards, what the transport extracted); `card` is the
    card JSON when the message is interactive. Raises `AlertParseError` only when the message
    has no text at all.

    Example::

        parse_chat_message("text", "[FIRING:2] HighCPU (instance=a job=b)", None)[0].labels
        # {'alertname': 'HighCPU', 'instance': 'a', 'job': 'b'}
    """
    lines = _message_lines(text, card)
    if not lines:
        raise AlertParseError(f"the {clean_line(message_type, 32) or 'chat'} message has no text")
    raw: dict[str, Any] = {
        "message_type": message_type,
        "text": "\n".join(lines),
        "card": card,
    }
    if has_marker("\n".join(lines[:MAX_LINES])):
        drafts = read_prometheusalert(lines, zone)
    elif bracketed_state(lines[0]):
        drafts = read_bracketed(lines, zone)
    else:
        drafts = [_read_plain(lines, zone)]
    for draft in drafts:
        draft.raw = raw
    return [draft.finish() for draft in drafts]


def reads_resolved(text: str) -> bool:
    """Whether free text announces a recovery (negations such as 未恢复 excluded)."""
    return _RECOVERED_RE.search(_NEGATED_RE.sub(" ", text)) is not None


def _message_lines(text: object, card: object) -> list[str]:
    body = ""
    if isinstance(card, Mapping):
        title, lines = card_lines(card)
        body = "\n".join([title, *lines]) if title else "\n".join(lines)
    if not body.strip() and isinstance(text, str):
        body = text
    cleaned = clean_block(body[: MAX_INPUT_CHARS * 2], MAX_INPUT_CHARS)
    lines = [line.strip() for line in cleaned.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    return lines[:MAX_LINES]


def _read_plain(lines: list[str], zone: tzinfo) -> AlertDraft:
    fields = FieldSet(free_labels=True)
    first = plain_line(lines[0])
    opening = read_pair(first)
    if opening and not well_known_key(opening[0]):  # "已恢复：磁盘快满了" is a title, not a field
        free = [first, *collect(lines[1:], fields)]
    else:
        free = collect(lines, fields)
    for line in free:
        for key, value in inline_pairs(line):
            fields.add(key, value)
    named = fields.labels.get("alertname", "")
    title = named if named and first not in free[:1] else (free[0] if free else first)
    body = [line for line in free if line != title]
    annotations = dict(fields.annotations)
    if body and "description" not in annotations:
        annotations["description"] = "\n".join(body)
    return AlertDraft(
        source="text",
        status=_plain_status(title, body, fields.status),
        title=title,
        labels=fields.labels,
        annotations=annotations,
        starts_at=parse_timestamp(fields.starts_at, naive_zone=zone),
        ends_at=parse_timestamp(fields.ends_at, naive_zone=zone),
        generator_url=fields.url,
        text_identity=True,
    )


def _plain_status(title: str, body: list[str], status_field: str) -> Status:
    """Declared status first, then the title's wording, then the rest of the text."""
    declared = status_of(status_field)
    if declared:
        return declared
    if status_field and reads_resolved(status_field):
        return "resolved"
    if reads_resolved(title):
        return "resolved"
    if _FIRING_RE.search(title):
        return "firing"
    return "resolved" if reads_resolved("\n".join(body)) else "firing"
