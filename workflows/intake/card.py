"""Plain text out of the interactive cards alert bots post in Lark groups.

Two forms arrive: the card JSON a bot *sent* (v1 `{"header": {"title": {"content": …}},
"elements": [{"tag": "div", "text": {"tag": "lark_md", "content": …}}]}` or v2 with
`"schema": "2.0"` and `"body": {"elements": …}`), and the simplified form Lark *delivers* in
`im.message.receive_v1` (`{"title": "…", "elements": [[{"tag": "text", "text": "…"}, …], …]}`).
A card written per language (`i18n_elements`, a title's `i18n`) is read in one language, Chinese
first. A divider (`hr`) is read as a `---` line, which separates alerts; a table as one alert a
row (`workflows.intake.structured`); buttons, menus and inputs are not read (their words are
actions, not the alert).
The walk is iterative with node and depth caps, so a hostile, deeply nested card costs little.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from workflows.intake.structured import card_table

MAX_NODES = 5000
MAX_DEPTH = 24
MAX_CHARS = 64 * 1024

_TEXT_KEYS = ("content", "text")
# the card's own header is read first (title, then subtitle); a panel's header is text
_TOP_SKIPPED = frozenset({"header", "config", "i18n_header", "card_link", "behaviors", "title"})
_SKIPPED_KEYS = frozenset({"config", "card_link", "behaviors"})
_INLINE_TAGS = frozenset({"text", "a", "at", "md", "emotion", "code_inline"})
# what a reader clicks or fills in ("查看详情", "屏蔽1小时", a select's options): not alert text
_CONTROL_TAGS = frozenset(
    {
        "button",
        "overflow",
        "select_static",
        "multi_select_static",
        "select_person",
        "multi_select_person",
        "date_picker",
        "picker_time",
        "picker_datetime",
        "input",
    }
)
_LOCALES = ("zh_cn", "zh_hk", "zh_tw", "en_us", "ja_jp")
DIVIDER = "---"  # a card's `hr`, kept as a line: it separates the alerts of a card


def card_lines(card: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The card's header title and its text lines, in reading order.

    A card built from a card template (`{"type": "template", "data": {"template_id": …,
    "template_variable": {…}}}`) is read as one `name: value` line per variable; one sent as
    `{"type": "card_json", "data": "<JSON>"}` as the card inside."""
    inner = card.get("card")
    if isinstance(inner, Mapping):  # {"msg_type": "interactive", "card": {...}}
        card = inner
    data = card.get("data")
    if card.get("type") == "card_json" and isinstance(data, str):
        try:
            decoded = json.loads(data[:MAX_CHARS])
        except ValueError:
            decoded = None
        if isinstance(decoded, Mapping):
            card = decoded
    elif card.get("type") == "template" and isinstance(data, Mapping):
        return "", _template_lines(data.get("template_variable"))
    localised = one_locale(card.get("i18n_elements"))
    if localised is not None:  # the same alert in each language: read it once
        card = {key: value for key, value in card.items() if key != "i18n_elements"}
        card["elements"] = localised
    return _title(card), [*_subtitle(card), *_body_lines(card)]


def one_locale(texts: object) -> object:
    """The Chinese (else the first) version of a card part or a post written per language
    (`{"zh_cn": …, "en_us": …}`), or None when `texts` is not one."""
    if not isinstance(texts, Mapping) or not texts:
        return None
    for locale in _LOCALES:
        if locale in texts:
            return texts[locale]
    return next(iter(texts.values()))


def _template_lines(variables: object) -> list[str]:
    if not isinstance(variables, Mapping):
        return []
    lines = []
    for name, value in list(variables.items())[:64]:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)[:4096]
            lines.append(f"{name}: {text}" if "\n" not in text else f"{name}:\n{text}")
    return lines


def _title(card: Mapping[str, Any]) -> str:
    header = card.get("header")
    if isinstance(header, Mapping):
        title = header.get("title")
        if isinstance(title, Mapping):
            content = title.get("content")
            if not content:  # {"content": "", "i18n": {"zh_cn": "…"}} (or "i18n_content")
                content = one_locale(title.get("i18n") or title.get("i18n_content"))
            return content[:MAX_CHARS] if isinstance(content, str) else ""
        if isinstance(title, str):
            return title[:MAX_CHARS]
    title = card.get("title")
    return title[:MAX_CHARS] if isinstance(title, str) else ""


def _subtitle(card: Mapping[str, Any]) -> list[str]:
    header = card.get("header")
    subtitle = header.get("subtitle") if isinstance(header, Mapping) else None
    content = subtitle.get("content") if isinstance(subtitle, Mapping) else None
    return content[:MAX_CHARS].splitlines() if isinstance(content, str) else []


def _body_lines(card: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    budget = MAX_CHARS
    stack: list[tuple[object, int]] = [
        (value, 1) for key, value in reversed(list(card.items())[:64]) if key not in _TOP_SKIPPED
    ]
    visited = 0
    while stack and visited < MAX_NODES and budget > 0:
        node, depth = stack.pop()
        visited += 1
        if depth > MAX_DEPTH:
            continue
        found: list[str] = []
        if isinstance(node, list) and _is_inline_run(node):
            found.append("".join(_inline_text(item) for item in node[:200]))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in reversed(node[:200]))
        elif isinstance(node, Mapping) and node.get("tag") == "hr":
            found.append(DIVIDER)
        elif isinstance(node, Mapping) and node.get("tag") in _CONTROL_TAGS:
            continue
        elif isinstance(node, Mapping) and node.get("tag") == "table":  # JSON 2.0 table
            found.extend(card_table(node))
        elif isinstance(node, Mapping):
            children: list[tuple[object, int]] = []
            for key, value in list(node.items())[:64]:
                if key in _TEXT_KEYS and isinstance(value, str):
                    # markdown shows `&#91;` as `[`: read what the reader sees
                    markup = node.get("tag") in ("markdown", "lark_md")
                    found.append(html.unescape(value) if markup else value)
                elif key not in _SKIPPED_KEYS and isinstance(value, list | Mapping):
                    children.append((value, depth + 1))
            stack.extend(reversed(children))
        for text in found:
            text = text[:budget]
            budget -= len(text)
            lines.extend(text.splitlines())
    return lines


def _is_inline_run(node: list[object]) -> bool:
    """The delivered form's paragraph: a list of {"tag": "text"|"a"|…, "text": …} pieces."""
    return bool(node) and all(
        isinstance(item, Mapping)
        and item.get("tag") in _INLINE_TAGS
        and isinstance(item.get("text", ""), str)
        for item in node[:200]
    )


def _inline_text(item: object) -> str:
    if isinstance(item, Mapping):
        text = item.get("text") or item.get("user_name") or ""
        return text if isinstance(text, str) else ""
    return ""
