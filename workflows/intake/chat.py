"""Alerts posted into a Lark group by alert bots (text, rich-text post or interactive card).

Formats, tried in this order:

1. PrometheusAlert templates (`[Prometheus告警信息]`, `[PROMETHEUS-恢复信息]`, `Grafana告警信息`),
   one alert per marker even when the template runs them together on one line
   → source "prometheusalert" (`workflows.intake.prometheusalert`);
2. a first line opening with a state tag, `[FIRING:2] …`, `[RESOLVED] …`, `[Alerting] …`,
   `[OK] …`, or any text listing `Labels:` sections (Alertmanager's and Grafana's default
   bodies under a custom title such as "Alerts firing: 2") → source "alertmanager" or "grafana"
   (`workflows.intake.bracketed`);
3. a card titled with its counts, `thing_dead [2] Firing [1] Resolved`, one block per alert
   (alertmanager-webhook-feishu) → source "alertmanager" (`workflows.intake.grouped`);
4. anything else is a plain text alert, source "text" (`workflows.intake.plain`): `key: value`
   lines in any of the known vocabularies, one alert per block.

Before that, a message that is one JSON object is read as its fields (an Alertmanager/Grafana
webhook body as that webhook), a Markdown or card table as one block per row
(`workflows.intake.structured`), HTML entities and full-width brackets as what they stand for;
and a CI/CD notice, a deploy or planned-work notice or a report (`workflows.intake.notice`)
yields no alert at all.

A plain text in which nothing was understood (no field, no label, no state) is a *fallback*:
its alert is titled with the message's first meaningful line, keeps the message's text as its
summary, and is marked `understood=False` so the bot counts it
(`larkops_alert_parse_fallback_total`) — unless it reads as people talking (测试一下, a question
to the group, words to people, a plan), which yields no alert.

Cards: the header title is read as the first line, then the card's text. Input is capped at
64 KiB and 500 lines before parsing. Times without an offset are read in `zone` (China Standard
Time by default: PrometheusAlert and most Feishu templates print Beijing time).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from storage.redaction import Redactor
from workflows.intake.alert import AlertParseError, ParsedAlert, Status
from workflows.intake.alertmanager import parse_alertmanager
from workflows.intake.bracketed import bracketed_state, has_label_sections, read_bracketed
from workflows.intake.card import card_lines
from workflows.intake.draft import AlertDraft
from workflows.intake.fields import unglue_keys, unpipe
from workflows.intake.grafana import parse_grafana
from workflows.intake.grouped import group_counts, read_grouped
from workflows.intake.notice import is_chatter, not_an_alert
from workflows.intake.plain import read_plain
from workflows.intake.prometheusalert import has_marker, read_prometheusalert, unglue
from workflows.intake.structured import json_lines, json_object, untable
from workflows.intake.text import clean_block, clean_line, plain_line, separator_text, title_line
from workflows.intake.timestamps import CHINA_STANDARD_TIME
from workflows.intake.wording import reads_resolved, stated

_REDACTOR = Redactor()
MAX_INPUT_CHARS = 64 * 1024
MAX_LINES = 500
# @mentions at the start of a line ("@所有人 [FIRING:1] …", "<at id=all></at>"): not alert text
_MENTIONS_RE = re.compile(r"^(?:\s*(?:@_user_\d+|@_all|@all|@所有人|@everyone)(?![\w-]))+")
# a Lark mention tag anywhere, its name included ("<at user_id=\"all\">所有人</at>")
_AT_TAG_RE = re.compile(r"<at\b[^<>]{0,200}>[^<>]{0,100}</at>", re.I)
# full-width brackets read as the ASCII ones the tag readers know ("［告警］磁盘空间不足")
_FULL_WIDTH = str.maketrans({"［": "[", "］": "]"})
# what Lark delivers instead of a card JSON 2.0 (and shows in old clients): not alert text
UPGRADE_PLACEHOLDERS = frozenset(
    {
        "请升级至最新版本客户端，以查看内容",
        "请升级至最新版本客户端,以查看内容",
        "Please upgrade to the latest version of the client to view the content",
    }
)

__all__ = ["fallback_alert", "parse_chat_message", "reads_resolved"]


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
    has no text at all; returns no alert for a CI/CD notice, a report or chat
    (`workflows.intake.notice`).

    Example::

        parse_chat_message("text", "[FIRING:2] HighCPU (instance=a job=b)", None)[0].labels
        # {'alertname': 'HighCPU', 'instance': 'a', 'job': 'b'}
    """
    payload = json_object(text) if card is None and isinstance(text, str) else None
    if payload is not None and isinstance(payload.get("alerts"), list):  # a webhook's body
        try:
            return (parse_grafana if "orgId" in payload else parse_alertmanager)(payload)
        except AlertParseError:
            pass
    lines = _message_lines(text, card)
    if not lines:
        raise AlertParseError(f"the {clean_line(message_type, 32) or 'chat'} message has no text")
    if not_an_alert(lines):
        return []
    raw: dict[str, Any] = {
        "message_type": message_type,
        "text": "\n".join(lines),
        "card": card,
    }
    understood = True
    drafts: list[AlertDraft]
    if has_marker("\n".join(lines)):
        drafts = read_prometheusalert(lines, zone)
    elif bracketed_state(lines[0]) or has_label_sections(lines):
        drafts = read_bracketed(lines, zone)
    elif group_counts(lines[0]):
        drafts = read_grouped(lines, zone)
    else:
        drafts, understood = read_plain(lines, zone)
    if not drafts:
        drafts, understood = read_plain(lines, zone)
    for draft in drafts:
        draft.raw = raw
    alerts = [draft.finish() for draft in drafts]
    if understood:
        return alerts
    if is_chatter(lines):  # people talking ("测试一下", "这个告警是误报吗？"): no alert
        return []
    return [fallback_alert(message_type, "\n".join(lines), alerts[0].title)]


def fallback_alert(message_type: str, text: str, title: str = "") -> ParsedAlert:
    """The alert of a message the bot cannot read: titled with the text's first meaningful line
    (or `title` when the text has none, e.g. an image), the text kept (cleaned, capped, inert,
    secret-looking values masked) as its description and summary, and marked
    `understood=False`."""
    lines = _message_lines(text, None)
    meaningful = [plain_line(line) for line in lines if separator_text(line) is None]
    first = title_line(meaningful)
    body = _REDACTOR.text(clean_block("\n".join(lines), MAX_INPUT_CHARS))
    status: Status = stated(first) or ("resolved" if reads_resolved(body) else "firing")
    draft = AlertDraft(
        source="text",
        status=status,
        title=first or title,
        annotations={"description": body} if body else {},
        text_identity=True,
        raw={"message_type": message_type, "text": body},
        understood=False,
    )
    return draft.finish()


def _message_lines(text: object, card: object) -> list[str]:
    body = ""
    if isinstance(card, Mapping):
        title, lines = card_lines(card)
        body = "\n".join([title, *lines]) if title else "\n".join(lines)
    if not body.strip() and isinstance(text, str):
        body = text
    body = body[: MAX_INPUT_CHARS * 2].translate(_FULL_WIDTH)
    fielded = json_lines(body)  # '{"alertname": "HighCPU", "status": "firing", …}'
    if fielded:
        body = "\n".join(fielded)
    if "&" in body:  # "API 错误率 &gt; 5%": what the forwarder meant is what the reader sees
        body = html.unescape(body)
    if "<at" in body:  # who is mentioned is no part of the alert
        body = _AT_TAG_RE.sub("", body)
    cleaned = unglue_keys(unglue(clean_block(body, MAX_INPUT_CHARS)))
    lines = [
        piece
        for line in untable([_MENTIONS_RE.sub("", line).strip() for line in cleaned.split("\n")])
        for piece in unpipe(line)
    ]
    lines = [line for line in lines if plain_line(line) not in UPGRADE_PLACEHOLDERS]
    while lines and not plain_line(lines[0]):
        lines.pop(0)
    return lines[:MAX_LINES]
