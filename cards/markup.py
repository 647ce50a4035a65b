"""Untrusted text made safe for Lark card markdown, and the card size budget.

Alert titles, labels, plugin output and model text are hostile: they may carry `<at id=all>`,
`</font>`, `[click](https://evil)`, code fences, control characters or ten megabytes. Before any of
it reaches a card it goes through one of these functions:

- `inline(value, limit)`: one line (newlines folded), neutralised, capped;
- `prose(value, limit, lines)`: several lines, neutralised, capped;
- `fenced(value, limit)`: a code block whose content cannot close the fence;
- `said(value, limit)`: one line for a text message (not a card): Feishu text has no escapes
  to show `&#60;` with, but an `<at user_id=…>` in it notifies that person, or everyone
  (`all`), so no tag may start there; `calls(people)` writes the mentions the bot means.

Neutralising escapes `&`, `<`, `>`, `[`, `]`, `|` and backticks as the numeric character references
the card markdown format documents for showing them (`&#60;` shows `<`): no tag, mention, link,
code span or table can start, and the reader sees exactly the characters sent (`[FIRING]`,
`a->b`, `a<b`, `a | b`), not look-alikes. (A table matters: Feishu refuses a whole card that draws
more than 5, 230099 / 11310 "card table number over limit", and models answer in tables.) `&` is
escaped first, so an entity in the text (`&lt;`) shows as typed. Plain-text fields (header
titles, button labels: no markdown there) take the text back with `plain`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

LARK_CARD_LIMIT = 30_000  # bytes: Lark refuses cards above 30 KB
CARD_BUDGET = 28_000  # what we aim under, leaving room for the caller's escaping and wrapping
ELLIPSIS = "…"

_MENTION = re.compile(r"<at id=([^<>]+)></at>")
_ESCAPES = {
    "&": "&#38;",
    "<": "&#60;",
    ">": "&#62;",
    "[": "&#91;",
    "]": "&#93;",
    "`": "&#96;",
    "|": "&#124;",
}
_ESCAPED = re.compile("|".join(re.escape(code) for code in _ESCAPES.values()))
_UNESCAPE = {code: char for char, code in _ESCAPES.items()}
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]{1,32};)")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_FENCE = re.compile(r"`{3,}|~{3,}")
_OPEN_ID = re.compile(r"ou_[A-Za-z0-9_-]{1,64}")


def _visible(value: object, most: int) -> str:
    """At most `most` characters of the text, without control characters (newlines and tabs
    kept) or bidi overrides; the cut comes first, so megabytes of alert text cost nothing."""
    raw = (value if isinstance(value, str) else str(value))[:most]
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    raw = "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))
    return _BIDI.sub("", raw)


def cap(value: str, limit: int) -> str:
    """`value` cut to at most `limit` characters, an ellipsis marking the cut."""
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + ELLIPSIS


def neutral(value: str) -> str:
    """`value` with every character that could open a tag, mention, link, code span, table or
    entity escaped for card markdown (it still shows as itself)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def plain(value: str) -> str:
    """Text neutralised for markdown, back as the characters it shows (for plain_text, which
    has no references to escape with): only a `<` that could open a tag (`<at`, `</a`) stays
    inert, as `＜`; `->`, `a < b` and `[FIRING]` read as sent."""
    shown = _ESCAPED.sub(lambda m: _UNESCAPE[m.group()], value)
    return _TAG_START.sub("＜", shown)


def unmarked(worded: str) -> str:
    """Card markdown the bot worded, as plain text (a document, the REST API): a mention
    reads as its open_id, escapes as the characters they stand for."""
    return plain(_MENTION.sub(r"\1", worded))


def inline(value: object, limit: int = 200) -> str:
    """One line of untrusted text for markdown: whitespace folded, neutralised, capped."""
    folded = " ".join(_visible(value, limit * 4).split())
    return neutral(cap(folded, limit))


def code(value: object, limit: int = 300) -> str:
    """One line of a tool's own words (a plugin's summary or evidence) as a code span: shown
    verbatim, plainly data rather than the bot's sentence; nothing inside can end the span."""
    text = inline(value, limit)
    return f"`{text}`" if text else ""


def prose(value: object, limit: int = 1000, lines: int = 15) -> str:
    """Several lines of untrusted text for markdown: neutralised, at most `lines` lines."""
    kept = [" ".join(line.split()) for line in _visible(value, limit * 2).split("\n")]
    kept = [line for line in kept if line]
    text = "\n".join(kept[:lines]) + ("\n" + ELLIPSIS if len(kept) > lines else "")
    return neutral(cap(text, limit))


def fenced(value: object, limit: int = 3000, lines: int = 60) -> str:
    """A fenced code block of untrusted output; nothing inside can end the fence early."""
    body = _visible(value, limit * 2).expandtabs(4).split("\n")
    shown = "\n".join(line.rstrip() for line in body[:lines])
    if len(body) > lines:
        shown += "\n" + ELLIPSIS
    safe = _FENCE.sub(lambda m: "ˋ" * len(m.group()), cap(shown.strip("\n"), limit))
    safe = _ENTITY.sub("＆", safe.replace("<", "＜").replace(">", "＞"))
    return f"```\n{safe}\n```"


def said(value: object, limit: int = 200) -> str:
    """One line of untrusted text for a text message: folded, capped, shown as written, but a
    `<` that could open a tag (`<at user_id="all">`, `</at>`) is the inert `＜`."""
    return plain(inline(value, limit))


def spoken(worded: str) -> str:
    """Card markdown the bot worded, for a text message: its mentions (`<at id=ou_…>`) as the
    text message's (`<at user_id="ou_…">`), escapes as the characters they stand for, any
    other `<` that could open a tag inert (`＜`)."""
    parts = _MENTION.split(worded)  # text, id, text, id, …, text
    return "".join(calls([part]) if index % 2 else plain(part) for index, part in enumerate(parts))


def calls(people: Iterable[str]) -> str:
    """The text-message mentions (`<at user_id="ou_…"></at>`) of these people's open_ids, so
    Lark notifies them; anything else (`all`, a name, a chat id) is no one to call."""
    return " ".join(f'<at user_id="{p}"></at>' for p in people if _OPEN_ID.fullmatch(p))


def text_mention(open_id: str) -> str:
    """A person's mention in a text message (`calls`; a card's is `mention`); any other actor
    is a word, shown inert."""
    return calls([open_id]) or plain(inline(open_id, 64))


def mention(open_id: str) -> str:
    """`<at id=…></at>` (Lark shows the person's name) for a person's open_id (`ou_…`); any
    other actor (`system`, `alert`, `scheduler`) is a word: Feishu refuses a whole card that
    mentions something that is not a user (230099 / 100290)."""
    if _OPEN_ID.fullmatch(open_id):
        return f"<at id={open_id}></at>"
    return inline(open_id, 64)


def unmention(card: dict[str, Any], person: str) -> dict[str, Any]:
    """The card with every mention of `person` as their id in words, the rest untouched: what
    is sent again when Feishu refuses a card for mentioning someone it does not know."""
    tag, word = mention(person), inline(person, 64)
    return _mapped(card, lambda text: text.replace(tag, word)) if tag != word else card


def spoken_card(card: dict[str, Any]) -> dict[str, Any]:
    """The card with every text `spoken`: its words as a text message may say them (the bot's
    mentions kept, no other tag live), for a card Feishu refused."""
    shown: dict[str, Any] = _mapped(card, spoken)
    return shown


def _mapped(node: Any, change: Callable[[str], str]) -> Any:
    """`node` with every string in it changed by `change`."""
    if isinstance(node, str):
        return change(node)
    if isinstance(node, dict):
        return {key: _mapped(value, change) for key, value in node.items()}
    if isinstance(node, list):
        return [_mapped(item, change) for item in node]
    return node


def clock(moment: datetime, zone: ZoneInfo, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    """`moment` as the chat's wall clock."""
    return moment.astimezone(zone).strftime(pattern)


def size(card: dict[str, Any]) -> int:
    """Bytes of the card as sent to Lark (UTF-8 JSON)."""
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode())


def fit(card: dict[str, Any], budget: int = CARD_BUDGET) -> dict[str, Any]:
    """The card with its longest texts halved until it fits the budget (buttons untouched)."""
    while size(card) > budget:
        texts = list(_contents(card["body"]["elements"]))
        if not texts:
            break
        holder = max(texts, key=lambda element: len(element["content"]))
        content: str = holder["content"]
        if len(content) < 64:
            break
        holder["content"] = _halve(content)
    return card


def _halve(content: str) -> str:
    """The first half of a text, never ending inside a tag nor losing a code fence's end."""
    if content.startswith("```\n") and content.endswith("\n```"):
        inner = content[4:-4]
        return f"```\n{inner[: len(inner) // 2]}{ELLIPSIS}\n```"
    head = content[: len(content) // 2]
    while "<" in head and (
        head.rfind("<") > head.rfind(">")
        or head.count("<at ") > head.count("</at>")
        or head.count("<font") > head.count("</font>")
    ):
        head = head[: head.rfind("<")]
    return head + ELLIPSIS


def _contents(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for element in elements:
        if element.get("tag") in ("markdown", "plain_text") and isinstance(
            element.get("content"), str
        ):
            found.append(element)
        for column in element.get("columns", ()):
            found.extend(_contents(column.get("elements", [])))
        found.extend(_contents(element.get("elements", [])))
    return found
