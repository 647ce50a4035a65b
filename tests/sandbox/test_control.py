"""The sandbox control API (/sandbox/api) over HTTP, with the real SDK as the bot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import lark_oapi as lark
import pytest

from bot.sandbox import LarkEmulator
from bot.sandbox.record import now_ms
from tests.sandbox.conftest import Connect
from tests.sandbox.sdk import RecordingHandler
from tests.sandbox.test_cards import CLAIMED, send_card
from tests.support.wait import wait_until


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{base_url}/sandbox/api") as client:
        yield client


async def test_state(http: httpx.AsyncClient) -> None:
    state = (await http.get("/state")).json()
    assert state["bot"] == {"open_id": "ou_larkops_bot", "name": "larkops"}
    assert {"open_id": "ou_alice", "name": "张三"} in state["users"]
    chats = {c["chat_id"]: (c["name"], c["type"]) for c in state["chats"]}
    assert chats["oc_ops"] == ("运维值班群", "group")
    assert chats["oc_dev"] == ("研发群", "group")
    assert chats["oc_p2p_alice"] == ("张三", "p2p")


async def test_post_read_and_poll_messages(
    emu: LarkEmulator, connect: Connect, rest: lark.Client, http: httpx.AsyncClient
) -> None:
    handler = RecordingHandler()
    await connect(handler)

    posted = await http.post(
        "/chats/oc_ops/messages", json={"sender": "ou_alice", "text": "@larkops /help"}
    )
    plain = await http.post("/chats/oc_ops/messages", json={"sender": "ou_bob", "text": "收到"})
    private = await http.post(
        "/chats/oc_p2p_carol/messages", json={"sender": "ou_carol", "text": "hi"}
    )
    await wait_until(lambda: len(handler.payloads) == 3, what="the three messages")

    by_text = {json.loads(p["event"]["message"]["content"])["text"]: p for p in handler.payloads}
    mentioned = by_text["@_user_1 /help"]["event"]["message"]
    assert mentioned["message_id"] == posted.json()["message_id"]
    assert mentioned["mentions"][0]["id"]["open_id"] == emu.bot.open_id
    assert by_text["收到"]["event"]["message"]["mentions"] == []
    assert by_text["hi"]["event"]["message"]["chat_type"] == "p2p"
    assert plain.status_code == private.status_code == 200

    first = (await http.get("/chats/oc_ops/messages")).json()
    views = first["messages"]
    assert [(m["text"], m["sender"]["name"], m["sender"]["type"]) for m in views] == [
        ("@larkops /help", "张三", "user"),
        ("收到", "李四", "user"),
    ]
    last_seq = views[-1]["seq"]

    message_id = await send_card(rest)
    newer = (await http.get("/chats/oc_ops/messages", params={"after": last_seq})).json()
    [card_view] = newer["messages"]
    assert (card_view["message_id"], card_view["sender"]["type"]) == (message_id, "bot")
    assert card_view["card"]["header"]["title"]["content"] == "CPU 告警"

    since = newer["now"]
    # an update in the very millisecond of `now` would not be "after" it
    await wait_until(lambda: now_ms() > since, what="the clock to pass the poll's `now`")
    stored = emu.store.get(message_id)
    assert stored is not None
    stored.set_card(CLAIMED)
    changed = (
        await http.get("/chats/oc_ops/messages", params={"after": card_view["seq"], "since": since})
    ).json()
    assert [(m["message_id"], m["card"]) for m in changed["messages"]] == [(message_id, CLAIMED)]


async def test_card_action(
    emu: LarkEmulator, connect: Connect, rest: lark.Client, http: httpx.AsyncClient
) -> None:
    def respond(payload: dict[str, Any], count: int) -> dict[str, Any]:
        assert payload["event"]["action"]["value"] == {"action": "ack"}
        toast = {"type": "info", "content": "处理中"}
        return {"toast": toast, "card": {"type": "raw", "data": CLAIMED}} if count == 1 else {}

    await connect(RecordingHandler(respond))
    message_id = await send_card(rest)

    first = await http.post(
        f"/messages/{message_id}/actions", json={"operator": "ou_bob", "value": {"action": "ack"}}
    )
    second = await http.post(
        f"/messages/{message_id}/actions", json={"operator": "ou_bob", "value": {"action": "ack"}}
    )

    assert first.json() == {"toast": {"type": "info", "content": "处理中"}, "card_updated": True}
    assert second.json() == {"toast": None, "card_updated": False}
    stored = emu.store.get(message_id)
    assert stored is not None
    assert stored.card == CLAIMED


async def test_control_errors(emu: LarkEmulator, http: httpx.AsyncClient) -> None:
    text = emu.post_message("oc_ops", "ou_alice", "not a card")
    cases = [
        await http.get("/chats/oc_nowhere/messages"),
        await http.get("/chats/oc_ops/messages", params={"after": "x"}),
        await http.post("/chats/oc_nowhere/messages", json={"sender": "ou_alice", "text": "x"}),
        await http.post("/chats/oc_ops/messages", json={"sender": "ou_zed", "text": "x"}),
        await http.post("/chats/oc_ops/messages", json={"sender": "ou_alice", "text": " "}),
        await http.post(f"/messages/{text.message_id}/actions", json={"operator": "ou_bob"}),
        await http.post("/messages/om_missing/actions", json={"operator": "ou_bob"}),
    ]
    assert [c.status_code for c in cases] == [404, 400, 404, 400, 400, 404, 404]
    assert all("error" in c.json() for c in cases)


async def test_card_action_without_bot_times_out(
    emu: LarkEmulator, rest: lark.Client, http: httpx.AsyncClient
) -> None:
    emu.ack_deadline, emu.max_deliveries = 0.1, 1
    message_id = await send_card(rest)
    answer = await http.post(
        f"/messages/{message_id}/actions", json={"operator": "ou_alice", "value": "x"}
    )
    assert answer.status_code == 504


async def test_another_apps_card_is_delivered_degraded_and_fetched_whole(
    emu: LarkEmulator, rest: lark.Client, http: httpx.AsyncClient
) -> None:
    """As in Lark: the event carries a degraded render (a JSON 2.0 card only the upgrade
    notice), and the card itself comes from GET …/messages/:id with user_card_content."""
    card = {
        "schema": "2.0",
        "header": {"title": {"tag": "plain_text", "content": "【报警中】磁盘满"}},
        "body": {"elements": [{"tag": "markdown", "content": "**报警主机:** db-1"}]},
    }
    posted = await http.post("/chats/oc_ops/cards", json={"sender": "ou_carol", "card": card})
    message_id = posted.json()["message_id"]

    async def fetch(content_type: str | None) -> Any:
        builder = lark.im.v1.GetMessageRequest.builder().message_id(message_id)
        if content_type:
            builder = builder.card_msg_content_type(content_type)
        answer = await asyncio.to_thread(rest.im.v1.message.get, builder.build())
        assert answer.success(), answer.msg
        return json.loads(answer.data.items[0].body.content)

    assert await fetch("user_card_content") == card
    assert await fetch(None) == {
        "title": "",
        "elements": [[{"tag": "text", "text": "请升级至最新版本客户端，以查看内容"}]],
    }
    refused = await http.post("/chats/oc_ops/cards", json={"sender": "ou_carol", "card": "x"})
    assert refused.status_code == 400
