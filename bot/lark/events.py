"""Lark event envelopes turned into the few shapes the bot reasons about.

`parse_envelope` checks the schema 2.0 envelope (event id and type); `normalise` turns it into a
`MessageEvent` (text and post messages, @mentions resolved, the command text with the bot's own
mention stripped) or a `CardAction` (operator, value object, form values, ids, token).
Anything else is an `UnsupportedEvent`. Bad input raises `MalformedEvent` with a reason a log
reader understands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workflows.intake.card import card_lines
from workflows.intake.post import post_text

MAX_TEXT = 4000  # characters of a message the bot reads; the rest is cut (and the user told)
MAX_ALERT_TEXT = 64 * 1024  # an alert bot's message is read whole, up to this many characters


class MalformedEvent(ValueError):
    """The envelope or its content cannot be understood."""


@dataclass(frozen=True)
class Envelope:
    event_id: str
    event_type: str
    body: dict[str, Any]

    @property
    def message_id(self) -> str | None:
        message = self.body.get("event", {}).get("message")
        if isinstance(message, dict) and isinstance(message.get("message_id"), str):
            return str(message["message_id"])
        return None


@dataclass(frozen=True)
class Mention:
    key: str
    open_id: str
    name: str


@dataclass(frozen=True)
class MessageEvent:
    event_id: str
    message_id: str
    chat_id: str
    chat_type: str  # "group" | "p2p"
    sender_open_id: str
    sender_type: str  # "user" | "app" | ...
    message_type: str
    text: str  # mentions shown as @name
    command_text: str  # the bot's mention removed, trimmed
    mentions: tuple[Mention, ...] = ()
    mentioned_bot: bool = False
    truncated: bool = False
    unreadable: str = ""  # why the content could not be read (the message is still routed)
    root_id: str = ""
    parent_id: str = ""
    thread_id: str = ""
    create_time_ms: int = 0
    # for alert bots: the text uncut (up to MAX_ALERT_TEXT) and, for a card, its content object
    # as delivered (Lark's degraded render of another bot's card)
    whole_text: str = ""
    card: dict[str, Any] | None = None

    @property
    def addressed_to_bot(self) -> bool:
        """A p2p message, or a group message that @mentions the bot."""
        return self.chat_type == "p2p" or self.mentioned_bot


@dataclass(frozen=True)
class CardAction:
    event_id: str
    operator_open_id: str
    value: dict[str, Any] | str
    form_value: dict[str, Any] = field(default_factory=dict)
    action_name: str = ""
    tag: str = ""
    message_id: str = ""
    chat_id: str = ""
    token: str = ""


@dataclass(frozen=True)
class UnsupportedEvent:
    event_id: str
    event_type: str


Event = MessageEvent | CardAction | UnsupportedEvent


def parse_envelope(raw: bytes | str | dict[str, Any]) -> Envelope:
    """Validate the outer schema 2.0 envelope."""
    if isinstance(raw, dict):
        body: Any = raw
    else:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEvent(f"envelope is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedEvent("envelope is not a JSON object")
    header = body.get("header")
    if body.get("schema") != "2.0" or not isinstance(header, dict):
        raise MalformedEvent("envelope is not a schema 2.0 event")
    event_id, event_type = header.get("event_id"), header.get("event_type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise MalformedEvent("envelope has no usable header.event_id")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent("envelope has no header.event_type")
    if not isinstance(body.get("event"), dict):
        raise MalformedEvent("envelope has no event object")
    return Envelope(event_id=event_id, event_type=event_type, body=body)


def normalise(envelope: Envelope, bot_open_id: str) -> Event:
    if envelope.event_type == "im.message.receive_v1":
        return _message(envelope, bot_open_id)
    if envelope.event_type == "card.action.trigger":
        return _card_action(envelope)
    return UnsupportedEvent(envelope.event_id, envelope.event_type)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _message(envelope: Envelope, bot_open_id: str) -> MessageEvent:
    event = envelope.body["event"]
    message, sender = event.get("message"), event.get("sender")
    if not isinstance(message, dict) or not isinstance(sender, dict):
        raise MalformedEvent("message event without message or sender")
    message_id, chat_id = _str(message, "message_id"), _str(message, "chat_id")
    if not message_id or not chat_id:
        raise MalformedEvent("message event without message_id or chat_id")
    sender_id = sender.get("sender_id") if isinstance(sender.get("sender_id"), dict) else {}
    mentions = tuple(_mentions(message.get("mentions")))
    message_type = _str(message, "message_type")
    unreadable = ""
    card: dict[str, Any] | None = None
    try:
        raw_text = _content_text(message_type, message.get("content"), mentions)
        if message_type == "interactive":
            card = json.loads(message["content"])
    except MalformedEvent as exc:
        raw_text, unreadable = "", str(exc)
    whole_text = raw_text[:MAX_ALERT_TEXT]
    truncated = len(raw_text) > MAX_TEXT
    raw_text = raw_text[:MAX_TEXT]
    names = {m.key: m for m in mentions}
    shown = raw_text
    for key, mention in names.items():
        shown = shown.replace(key, f"@{mention.name}")
    bot_keys = [m.key for m in mentions if bot_open_id and m.open_id == bot_open_id]
    command = raw_text
    for key in bot_keys:
        command = command.replace(key, " ")
    for key, mention in names.items():
        command = command.replace(key, f"@{mention.name}")
    create_time = _str(message, "create_time")
    return MessageEvent(
        event_id=envelope.event_id,
        message_id=message_id,
        chat_id=chat_id,
        chat_type=_str(message, "chat_type") or "group",
        sender_open_id=_str(sender_id or {}, "open_id"),
        sender_type=_str(sender, "sender_type") or "user",
        message_type=message_type,
        text=shown.strip(),
        command_text=" ".join(command.split()),
        mentions=mentions,
        mentioned_bot=bool(bot_keys),
        truncated=truncated,
        unreadable=unreadable,
        root_id=_str(message, "root_id"),
        parent_id=_str(message, "parent_id"),
        thread_id=_str(message, "thread_id"),
        create_time_ms=int(create_time) if create_time.isdigit() else 0,
        whole_text=whole_text,
        card=card,
    )


def _mentions(raw: object) -> list[Mention]:
    found: list[Mention] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        ids = item.get("id") if isinstance(item.get("id"), dict) else {}
        key = _str(item, "key")
        if key:
            found.append(
                Mention(key=key, open_id=_str(ids or {}, "open_id"), name=_str(item, "name"))
            )
    return found


def content_text(message_type: str, content: str) -> str:
    """The text an alert bot's message content (as Lark delivers it) is read as: a text's
    text, a post's title and paragraphs, a card's title and text (`MalformedEvent` when the
    content is not a JSON object)."""
    return _content_text(message_type, content, ())


def _content_text(message_type: str, content: object, mentions: tuple[Mention, ...]) -> str:
    if not isinstance(content, str):
        raise MalformedEvent("message content is not a string")
    try:
        data = json.loads(content)
    except ValueError:
        raise MalformedEvent("message content is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedEvent("message content is not a JSON object")
    if message_type == "text":
        return _str(data, "text")
    if message_type == "post":
        return _post_text(data, mentions)
    if message_type == "interactive":
        return card_text(data)
    return ""


def _post_text(data: dict[str, Any], mentions: tuple[Mention, ...]) -> str:
    """Rich-text posts (the one post reader, `workflows.intake.post`); `at` elements become
    their mention key."""
    by_open_id = {m.open_id: m.key for m in mentions}

    def mention(user: str) -> str:
        return by_open_id.get(user, user if user.startswith("@_") else "")

    return post_text(data, mention)


def card_text(data: object) -> str:
    """Plain text of a card, title first, read by the one card reader
    (`workflows.intake.card`): a card as sent, as fetched, or Lark's degraded render."""
    if not isinstance(data, dict):
        return ""
    title, lines = card_lines(data)
    return "\n".join([title, *lines] if title else lines)


def _card_action(envelope: Envelope) -> CardAction:
    event = envelope.body["event"]
    operator = event.get("operator") if isinstance(event.get("operator"), dict) else None
    action = event.get("action") if isinstance(event.get("action"), dict) else None
    if operator is None or action is None:
        raise MalformedEvent("card action without operator or action")
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    value = action.get("value")
    if not isinstance(value, dict | str):
        value = "" if value is None else json.dumps(value)
    form_value = action.get("form_value")
    return CardAction(
        event_id=envelope.event_id,
        operator_open_id=_str(operator, "open_id"),
        value=value,
        form_value=form_value if isinstance(form_value, dict) else {},
        action_name=_str(action, "name"),
        tag=_str(action, "tag"),
        message_id=_str(context or {}, "open_message_id"),
        chat_id=_str(context or {}, "open_chat_id"),
        token=_str(event, "token"),
    )
