"""Schema 2.0 event envelopes exactly as Lark pushes them, plus message content helpers."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.sandbox.model import User
from bot.sandbox.record import Message, now_ms

MENTION_KEY = "@_user_1"


def new_id(prefix: str, nbytes: int = 16) -> str:
    """A random Lark-looking id such as `om_<32 hex>`."""
    return f"{prefix}{secrets.token_hex(nbytes)}"


@dataclass(frozen=True)
class App:
    """The app identity stamped into every envelope header."""

    app_id: str
    tenant_key: str


def _header(app: App, event_type: str, event_id: str | None) -> dict[str, Any]:
    return {
        "event_id": event_id or secrets.token_hex(16),
        "event_type": event_type,
        "create_time": str(now_ms()),
        "token": "",
        "app_id": app.app_id,
        "tenant_key": app.tenant_key,
    }


def mention(user: User, tenant_key: str, key: str = MENTION_KEY) -> dict[str, Any]:
    """One entry of an event's `mentions` list."""
    return {"key": key, "id": user.ids(), "name": user.name, "tenant_key": tenant_key}


def people_keys(text: str, people: Sequence[User]) -> list[tuple[str, User]]:
    """The tenant users a typed text @-names (`@李四`), with the keys Lark gives their
    mentions (`@_user_2`, … after the bot's), as a client does when someone is picked from
    the @ list."""
    named = [p for p in sorted(people, key=lambda p: -len(p.name)) if f"@{p.name}" in text]
    return [(f"@_user_{n}", person) for n, person in enumerate(named, 2)]


def user_content(
    msg_type: str, text: str, mentioned: User | None, others: Sequence[tuple[str, User]] = ()
) -> tuple[str, str]:
    """(content JSON, display text) of a user's text or post message; `others`: the people
    it @-names in a text message, by their mention keys (`people_keys`)."""
    display = f"@{mentioned.name} {text}" if mentioned else text
    if msg_type == "text":
        for key, person in others:
            text = text.replace(f"@{person.name}", key)
        body = f"{MENTION_KEY} {text}" if mentioned else text
        return json.dumps({"text": body}, ensure_ascii=False), display
    if msg_type == "post":
        line: list[dict[str, Any]] = []
        if mentioned:
            at = {"tag": "at", "user_id": MENTION_KEY, "user_name": mentioned.name, "style": []}
            line.append(at)
        line.append({"tag": "text", "text": f" {text}" if mentioned else text, "style": []})
        return json.dumps({"title": "", "content": [line]}, ensure_ascii=False), display
    raise ValueError(f"users send text or post, not {msg_type!r}")


def content_text(msg_type: str, content: dict[str, Any]) -> str:
    """Plain text of a text or post content object (post: any locale, title first)."""
    if msg_type == "text":
        return str(content.get("text", ""))
    if msg_type != "post":
        return ""
    post = content
    if "content" not in post:
        post = next((v for v in content.values() if isinstance(v, dict)), {})
    lines = [str(post["title"])] if post.get("title") else []
    for row in post.get("content") or []:
        parts = []
        for item in row if isinstance(row, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("tag") == "at":
                parts.append(f"@{item.get('user_name') or item.get('user_id', '')}")
            else:
                parts.append(str(item.get("text", "")))
        lines.append("".join(parts))
    return "\n".join(lines)


def message_event(
    app: App,
    message: Message,
    sender: User,
    *,
    sender_type: str,
    chat_type: str,
    mentions: list[dict[str, Any]],
    event_id: str | None = None,
) -> dict[str, Any]:
    """An `im.message.receive_v1` envelope for a message a user (or another app) sent."""
    return {
        "schema": "2.0",
        "header": _header(app, "im.message.receive_v1", event_id),
        "event": {
            "sender": {
                "sender_id": sender.ids(),
                "sender_type": sender_type,
                "tenant_key": app.tenant_key,
            },
            "message": {
                "message_id": message.message_id,
                "root_id": message.root_id,
                "parent_id": message.parent_id,
                "create_time": str(message.created_at),
                "update_time": str(message.updated_at),
                "chat_id": message.chat_id,
                "thread_id": message.thread_id,
                "chat_type": chat_type,
                "message_type": message.msg_type,
                "content": message.content,
                "mentions": mentions,
                "user_agent": "",
            },
        },
    }


def card_action_event(
    app: App,
    message: Message,
    operator: User,
    *,
    token: str,
    value: Any,
    name: str,
    form_value: dict[str, Any] | None,
    tag: str = "button",
) -> dict[str, Any]:
    """A `card.action.trigger` callback envelope for a click on `message`'s card."""
    action: dict[str, Any] = {
        "value": value,
        "tag": tag,
        "timezone": "Asia/Shanghai",
        "name": name,
    }
    if form_value is not None:
        action["form_value"] = form_value
    return {
        "schema": "2.0",
        "header": _header(app, "card.action.trigger", None),
        "event": {
            "operator": {"tenant_key": app.tenant_key, **operator.ids()},
            "token": token,
            "action": action,
            "host": "im_message",
            "context": {
                "url": "",
                "preview_token": "",
                "open_message_id": message.message_id,
                "open_chat_id": message.chat_id,
            },
        },
    }
