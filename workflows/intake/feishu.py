"""The body a Feishu/Lark custom bot ("group bot" webhook) receives, read as the alerts it carries.

Every forwarder that can post into a Feishu group posts this shape to its hook URL; pointed at
larkops instead (`POST /webhooks/feishu`), its messages are read exactly as they would be in the
group::

    {"msg_type": "text", "content": {"text": "…"}}
    {"msg_type": "post", "content": {"post": {"zh_cn": {"title": "…", "content": [[…]]}}}}
    {"msg_type": "interactive", "card": {…card JSON 1.0 or 2.0…}}
    (also "content" as a JSON string, and the hook's own "timestamp"/"sign" beside them)

A body without a readable message raises `AlertParseError`; a CI/CD notice yields no alert.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from workflows.intake.alert import AlertParseError, ParsedAlert
from workflows.intake.chat import parse_chat_message
from workflows.intake.post import post_text

MAX_CONTENT_CHARS = 256 * 1024
_TYPES = ("text", "post", "interactive")


def parse_feishu(payload: dict[str, Any]) -> list[ParsedAlert]:
    """The alerts of a Feishu custom bot's message body (module docstring).

    Example::

        parse_feishu({"msg_type": "text", "content": {"text": "【告警】磁盘满\\n主机: db-1"}})
    """
    if not isinstance(payload, Mapping):
        raise AlertParseError("feishu payload is not a JSON object")
    kind = payload.get("msg_type")
    if kind not in _TYPES:
        raise AlertParseError(f"feishu payload needs msg_type {', '.join(_TYPES)}")
    content = _decoded(payload.get("content"))
    if kind == "interactive":
        card = payload.get("card")
        card = card if isinstance(card, Mapping) else content
        if not isinstance(card, Mapping):
            raise AlertParseError("feishu interactive payload has no card object")
        return parse_chat_message("interactive", "", dict(card))
    if not isinstance(content, Mapping):
        raise AlertParseError("feishu payload has no content object")
    if kind == "text":
        text = content.get("text")
        return parse_chat_message("text", text if isinstance(text, str) else "", None)
    post = content.get("post", content)
    return parse_chat_message("post", post_text(post) if isinstance(post, Mapping) else "", None)


def _decoded(content: object) -> object:
    """`content` as an object: Feishu's own API takes it as a JSON string too."""
    if isinstance(content, str) and len(content) <= MAX_CONTENT_CHARS:
        try:
            return json.loads(content)
        except ValueError:
            return None
    return content
