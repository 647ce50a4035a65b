"""Normalising Lark envelopes: mentions, commands, posts, card actions and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.lark.events import (
    MAX_TEXT,
    CardAction,
    MalformedEvent,
    MessageEvent,
    UnsupportedEvent,
    normalise,
    parse_envelope,
)

BOT = "ou_bot"


def message(
    content: dict[str, Any] | str,
    *,
    msg_type: str = "text",
    mentions: list[dict[str, Any]] | None = None,
    chat_type: str = "group",
    sender_type: str = "user",
) -> dict[str, Any]:
    return {
        "schema": "2.0",
        "header": {"event_id": "ev1", "event_type": "im.message.receive_v1"},
        "event": {
            "sender": {"sender_id": {"open_id": "ou_alice"}, "sender_type": sender_type},
            "message": {
                "message_id": "om_1",
                "chat_id": "oc_1",
                "chat_type": chat_type,
                "message_type": msg_type,
                "create_time": "1700000000000",
                "content": content if isinstance(content, str) else json.dumps(content),
                "mentions": mentions or [],
            },
        },
    }


BOT_MENTION = {"key": "@_user_1", "id": {"open_id": BOT}, "name": "larkops"}
BOB_MENTION = {"key": "@_user_2", "id": {"open_id": "ou_bob"}, "name": "李四"}


def test_text_command_with_bot_mention_stripped() -> None:
    raw = message(
        {"text": "@_user_1  /silence  disk @_user_2 2h"}, mentions=[BOT_MENTION, BOB_MENTION]
    )
    event = normalise(parse_envelope(json.dumps(raw).encode()), BOT)
    assert isinstance(event, MessageEvent)
    assert event.command_text == "/silence disk @李四 2h"
    assert event.text == "@larkops  /silence  disk @李四 2h"
    assert event.mentioned_bot
    assert event.addressed_to_bot
    assert event.create_time_ms == 1_700_000_000_000


def test_message_mentioning_someone_else_is_not_for_the_bot() -> None:
    event = normalise(
        parse_envelope(message({"text": "@_user_2 /help"}, mentions=[BOB_MENTION])), BOT
    )
    assert isinstance(event, MessageEvent)
    assert not event.addressed_to_bot
    p2p = normalise(parse_envelope(message({"text": "/help"}, chat_type="p2p")), BOT)
    assert isinstance(p2p, MessageEvent)
    assert p2p.addressed_to_bot


def test_post_message_flattened() -> None:
    post = {
        "zh_cn": {
            "title": "",
            "content": [
                [
                    {"tag": "at", "user_id": BOT, "user_name": "larkops"},
                    {"tag": "text", "text": " /ping"},
                ],
                [{"tag": "text", "text": "second line"}],
            ],
        }
    }
    event = normalise(parse_envelope(message(post, msg_type="post", mentions=[BOT_MENTION])), BOT)
    assert isinstance(event, MessageEvent)
    assert event.command_text == "/ping second line"
    assert event.mentioned_bot


def test_huge_text_is_cut_and_flagged() -> None:
    event = normalise(parse_envelope(message({"text": "y" * (MAX_TEXT + 10)})), BOT)
    assert isinstance(event, MessageEvent)
    assert event.truncated
    assert len(event.text) == MAX_TEXT


def test_unreadable_content_is_flagged_not_fatal() -> None:
    event = normalise(parse_envelope(message("{nope", mentions=[BOT_MENTION])), BOT)
    assert isinstance(event, MessageEvent)
    assert event.unreadable == "message content is not JSON"
    assert event.mentioned_bot


def test_card_action_fields() -> None:
    raw = {
        "schema": "2.0",
        "header": {"event_id": "ev2", "event_type": "card.action.trigger"},
        "event": {
            "operator": {"open_id": "ou_bob"},
            "token": "c-123",
            "action": {
                "value": {"action": "x"},
                "tag": "button",
                "name": "go",
                "form_value": {"reason": "because"},
            },
            "context": {"open_message_id": "om_9", "open_chat_id": "oc_9"},
        },
    }
    action = normalise(parse_envelope(raw), BOT)
    assert action == CardAction(
        event_id="ev2",
        operator_open_id="ou_bob",
        value={"action": "x"},
        form_value={"reason": "because"},
        action_name="go",
        tag="button",
        message_id="om_9",
        chat_id="oc_9",
        token="c-123",
    )


def test_other_event_types_are_unsupported() -> None:
    raw = {
        "schema": "2.0",
        "header": {"event_id": "e", "event_type": "im.chat.updated_v1"},
        "event": {},
    }
    assert normalise(parse_envelope(raw), BOT) == UnsupportedEvent("e", "im.chat.updated_v1")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schema": "1.0"}', "schema 2.0"),
        (b'{"schema": "2.0", "header": {"event_type": "x"}, "event": {}}', "event_id"),
        (b'{"schema": "2.0", "header": {"event_id": "e"}, "event": {}}', "event_type"),
        (b'{"schema": "2.0", "header": {"event_id": "e", "event_type": "x"}}', "event object"),
    ],
)
def test_malformed_envelopes_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        parse_envelope(raw)


def test_message_without_ids_is_malformed() -> None:
    raw = message({"text": "hi"})
    raw["event"]["message"]["chat_id"] = ""
    with pytest.raises(MalformedEvent, match="chat_id"):
        normalise(parse_envelope(raw), BOT)
