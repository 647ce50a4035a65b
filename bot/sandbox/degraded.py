"""What Lark puts in `im.message.receive_v1` for a card another bot sent: a degraded render.

Lark does not hand a bot the card JSON another app sent. The event's `content` holds a
simplified form, `{"title": …, "elements": [[{"tag": "text", "text": …}, {"tag": "a", …}], …]}`
(one list of inline runs per paragraph, markdown emphasis gone), and for a card JSON 2.0 only
the upgrade notice. The card itself comes from `GET /open-apis/im/v1/messages/:message_id` with
`card_msg_content_type=user_card_content`. The emulator delivers cards the same way.
"""

from __future__ import annotations

import re
from typing import Any

UPGRADE_NOTICE = "请升级至最新版本客户端，以查看内容"

_LINK_RE = re.compile(r"\[([^\[\]\n]*)\]\((\S+?)\)")
_MARKUP_RE = re.compile(r"\*\*|~~|</?(?:font|at|b|i|u|s|br)\b[^>]*>")
_CONTAINERS = ("elements", "columns", "fields")


def degraded_card(card: dict[str, Any]) -> dict[str, Any]:
    """The degraded render of `card` (JSON 1.0, or 2.0 with `"schema": "2.0"`)."""
    if card.get("schema") == "2.0":
        return {"title": "", "elements": [[{"tag": "text", "text": UPGRADE_NOTICE}]]}
    header = card.get("header") if isinstance(card.get("header"), dict) else {}
    title = (header or {}).get("title")
    text = title.get("content") if isinstance(title, dict) else ""
    paragraphs: list[list[dict[str, Any]]] = []
    _walk(card.get("elements"), paragraphs)
    return {"title": text if isinstance(text, str) else "", "elements": paragraphs}


def _walk(node: object, paragraphs: list[list[dict[str, Any]]], depth: int = 0) -> None:
    if depth > 12:
        return
    if isinstance(node, list):
        for item in node:
            _walk(item, paragraphs, depth + 1)
        return
    if not isinstance(node, dict):
        return
    if node.get("tag") == "hr":
        paragraphs.append([{"tag": "hr"}])
        return
    text = node.get("text")
    content = text.get("content") if isinstance(text, dict) else node.get("content")
    if isinstance(content, str) and node.get("tag") != "button":
        paragraphs.extend(_runs(line) for line in content.splitlines() if line.strip())
    for key in _CONTAINERS:
        _walk(node.get(key), paragraphs, depth + 1)


def _runs(line: str) -> list[dict[str, Any]]:
    """One markdown line as inline runs: text, and links as `a` runs."""
    runs: list[dict[str, Any]] = []
    plain = _MARKUP_RE.sub("", line)
    at = 0
    for link in _LINK_RE.finditer(plain):
        if link.start() > at:
            runs.append({"tag": "text", "text": plain[at : link.start()]})
        runs.append({"tag": "a", "text": link.group(1), "href": link.group(2)})
        at = link.end()
    if at < len(plain):
        runs.append({"tag": "text", "text": plain[at:]})
    return runs
