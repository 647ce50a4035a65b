"""Card callbacks (card.action.trigger) through the real SDK, and delayed card updates."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import lark_oapi as lark
from lark_oapi.api.im.v1 import CreateMessageRequest, CreateMessageRequestBody
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)

from bot.sandbox import LarkEmulator
from tests.sandbox.conftest import Connect

CARD = {
    "schema": "2.0",
    "header": {"title": {"tag": "plain_text", "content": "CPU 告警"}},
    "body": {"elements": [{"tag": "button", "text": "认领", "value": {"action": "ack"}}]},
}
CLAIMED = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "李四 已认领"}]}}


async def send_card(rest: lark.Client, chat_id: str = "oc_ops") -> str:
    body = (
        CreateMessageRequestBody.builder()
        .receive_id(chat_id)
        .msg_type("interactive")
        .content(json.dumps(CARD, ensure_ascii=False))
        .build()
    )
    request = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body).build()
    response = await asyncio.to_thread(rest.im.v1.message.create, request)
    assert response.success(), response.msg
    message_id: str = response.data.message_id
    return message_id


def card_update(rest: lark.Client, token: str, card: dict[str, Any]) -> lark.BaseResponse:
    request = (
        lark.BaseRequest.builder()
        .http_method(lark.HttpMethod.POST)
        .uri("/open-apis/interactive/v1/card/update")
        .token_types({lark.AccessTokenType.TENANT})
        .body({"token": token, "card": card})
        .build()
    )
    return rest.request(request)


def answering(card: dict[str, Any], seen: list[P2CardActionTrigger]) -> lark.EventDispatcherHandler:
    """An SDK event handler that records each click in `seen` and answers it with a toast
    and `card`."""

    def on_click(data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        seen.append(data)
        return P2CardActionTriggerResponse(
            {
                "toast": {"type": "success", "content": "已认领"},
                "card": {"type": "raw", "data": card},
            }
        )

    return (
        lark.EventDispatcherHandler.builder("", "")
        .register_p2_card_action_trigger(on_click)
        .build()
    )


async def test_click_returns_toast_and_card_and_updates_message(
    emu: LarkEmulator, connect: Connect, rest: lark.Client
) -> None:
    seen: list[P2CardActionTrigger] = []
    await connect(answering(CLAIMED, seen))
    message_id = await send_card(rest)

    result = await emu.click(message_id, "ou_bob", {"action": "ack"}, name="claim")

    assert result.toast == {"type": "success", "content": "已认领"}
    assert result.card == CLAIMED
    assert result.delivery.acked
    assert result.latency_ms is not None
    message = emu.store.get(message_id)
    assert message is not None
    assert message.card == CLAIMED
    assert message.card_history == [CARD, CLAIMED]
    assert message.updated_at > message.created_at
    [toast] = emu.toasts
    assert (toast.message_id, toast.operator, toast.type, toast.content) == (
        message_id,
        "ou_bob",
        "success",
        "已认领",
    )
    [event] = seen
    assert event.header.event_type == "card.action.trigger"
    assert event.event.operator.open_id == "ou_bob"
    assert event.event.action.value == {"action": "ack"}
    assert (event.event.action.tag, event.event.action.name) == ("button", "claim")
    assert event.event.context.open_message_id == message_id
    assert event.event.context.open_chat_id == "oc_ops"
    assert event.event.token.startswith("c-")


async def test_delayed_update_with_token_twice_then_refused(
    emu: LarkEmulator, connect: Connect, rest: lark.Client
) -> None:
    tokens: list[str] = []

    def remember(payload: bytes) -> None:
        event = json.loads(payload)["event"]
        tokens.append(event["token"])
        assert event["action"]["form_value"] == {"reason": "误报"}

    class Handler:
        _do_without_validation = staticmethod(remember)

    await connect(Handler())
    message_id = await send_card(rest)
    result = await emu.click(message_id, "ou_carol", "close", form_value={"reason": "误报"})
    assert (result.toast, result.card, result.raw) == (None, None, None)
    [token] = tokens

    first = await asyncio.to_thread(card_update, rest, token, {**CLAIMED, "open_ids": ["ou_x"]})
    second = await asyncio.to_thread(card_update, rest, token, CARD)
    third = await asyncio.to_thread(card_update, rest, token, CLAIMED)
    bogus = await asyncio.to_thread(card_update, rest, "c-bogus", CLAIMED)

    assert (first.code, second.code) == (0, 0)
    assert (third.code, third.raw.status_code) == (200740, 400)
    assert bogus.code == 200740
    message = emu.store.get(message_id)
    assert message is not None
    assert message.card == CARD
    assert message.card_history == [CARD, CLAIMED, CARD]


async def test_a_callback_card_feishu_refuses_leaves_the_card_as_it_was(
    emu: LarkEmulator, connect: Connect, rest: lark.Client
) -> None:
    """The card a callback answers with is judged like a sent one: one that mentions a name
    instead of a person is not shown (230099 / 100290), the toast still is."""
    by_name = {
        "schema": "2.0",
        "body": {"elements": [{"tag": "markdown", "content": "<at id=李四></at>"}]},
    }

    await connect(answering(by_name, []))
    message_id = await send_card(rest)
    result = await emu.click(message_id, "ou_bob", {"action": "ack"})
    assert result.toast == {"type": "success", "content": "已认领"}
    assert result.card is None
    assert "ErrCode: 100290" in result.refused
    assert "ErrorValue: 李四" in result.refused
    message = emu.store.get(message_id)
    assert message is not None
    assert message.card_history == [CARD]
