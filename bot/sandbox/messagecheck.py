"""What real Feishu takes as the content of a text or post message, and whom such a message
@-mentions ("发送消息内容结构", im-v1 message create/reply/patch).

- text: `{"text": "…"}`; a mention is `<at user_id="ou_…">name</at>` (an open_id, user_id or
  union_id), everyone `<at user_id="all"></at>`;
- post: `{"zh_cn": {"title": "…", "content": [[node, …], …]}}` (one entry per language of
  `config.locales`' list), each node a `text` (`text`), `a` (`text`, `href`), `at`
  (`user_id`), `img` (`image_key`), `media` (`file_key`), `emotion` (`emoji_type`), `hr`,
  `code_block` (`text`) or `md` (`text`, which takes `<at user_id=…>` too);
- content of another shape: `400 / 230001` "Your request contains an invalid request
  parameter." (the code of the create page's error table; which property is named after it
  is inferred);
- an `<at>` whose id is no person of the tenant (a chat id, a bot's name, a random string) is
  no mention: nobody is notified and the text shows the tag's own words (inferred: the pages
  define mentions by id but say nothing of an unknown one; a card refuses it instead,
  `bot.sandbox.cardcheck`, 100290).

    problem = content_problem("post", content)        # "" or what is wrong
    ids = mentioned("text", content, people)          # ["all", "ou_…"] in order
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

from bot.sandbox.cardenvelope import LOCALES

EVERYONE = "all"
NODE_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "a": ("text", "href"),
    "at": ("user_id",),
    "img": ("image_key",),
    "media": ("file_key",),
    "emotion": ("emoji_type",),
    "hr": (),
    "code_block": ("text",),
    "md": ("text",),
}
_AT = re.compile(r"""<at\s+(?:user_id|id|open_id)\s*=\s*["']?([^"'\s>]*)["']?[^>]*>""", re.I)


def content_problem(msg_type: str, content: dict[str, Any]) -> str:
    """What makes `content` no text or post content Feishu takes, or ""."""
    if msg_type == "text":
        return "" if isinstance(content.get("text"), str) else "content.text"
    if msg_type != "post":
        return ""
    if not content:
        return "content"
    for locale, post in content.items():
        if locale not in LOCALES or not isinstance(post, dict):
            return f"content.{locale}"
        if "title" in post and not isinstance(post["title"], str):
            return f"content.{locale}.title"
        rows = post.get("content")
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            return f"content.{locale}.content"
        for row in rows:
            for node in row:
                wrong = _bad_node(node)
                if wrong:
                    return f"content.{locale}.content.{wrong}"
    return ""


def _bad_node(node: Any) -> str:
    tag = node.get("tag") if isinstance(node, dict) else None
    if tag not in NODE_FIELDS:
        return f"tag {tag}"
    for name in NODE_FIELDS[tag]:
        if not isinstance(node.get(name), str):
            return f"{tag}.{name}"
    return ""


def mentioned(msg_type: str, content: dict[str, Any], people: Collection[str]) -> list[str]:
    """The ids the message notifies, in order: `all` and the persons among `people`; an
    `<at>` of anything else is shown as its words and notifies nobody."""
    return [who for who in _at_ids(msg_type, content) if who == EVERYONE or who in people]


def _at_ids(msg_type: str, content: dict[str, Any]) -> Iterator[str]:
    if msg_type == "text":
        yield from _AT.findall(str(content.get("text", "")))
        return
    for post in content.values():
        for row in post.get("content", []) if isinstance(post, dict) else []:
            for node in row:
                if node.get("tag") == "at":
                    yield str(node.get("user_id", ""))
                elif node.get("tag") == "md":
                    yield from _AT.findall(str(node.get("text", "")))
