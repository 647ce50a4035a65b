"""The real lark_oapi long-connection client against the emulator's WebSocket gateway."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import lark_oapi as lark
import pytest
import websockets
from lark_oapi.api.im.v1 import P2ImMessageReceiveV1
from lark_oapi.ws.exception import ClientException

from bot.sandbox import ClientConfig, LarkEmulator
from tests.sandbox.conftest import Connect
from tests.sandbox.sdk import RecordingHandler, SdkWsClient
from tests.support.wait import wait_until


async def test_sdk_receives_exact_envelope_and_acks(emu: LarkEmulator, connect: Connect) -> None:
    handler = RecordingHandler()
    await connect(handler)

    result = await emu.send_message("oc_ops", "ou_alice", "/help")

    assert (result.acked, result.ack_code, result.deliveries) == (True, 200, 1)
    [envelope] = handler.payloads
    assert envelope["schema"] == "2.0"
    header = envelope["header"]
    assert header["event_id"] == result.event_id
    assert header["event_type"] == "im.message.receive_v1"
    assert (header["app_id"], header["tenant_key"], header["token"]) == (
        emu.app_id,
        emu.tenant_key,
        "",
    )
    assert header["create_time"].isdigit()
    event = envelope["event"]
    assert event["sender"] == {
        "sender_id": {"union_id": "on_alice", "user_id": "alice", "open_id": "ou_alice"},
        "sender_type": "user",
        "tenant_key": emu.tenant_key,
    }
    message = event["message"]
    assert message["message_id"] == result.message_id
    assert (message["chat_id"], message["chat_type"], message["message_type"]) == (
        "oc_ops",
        "group",
        "text",
    )
    assert json.loads(message["content"]) == {"text": "@_user_1 /help"}
    assert message["mentions"] == [
        {
            "key": "@_user_1",
            "id": {
                "union_id": "on_larkops_bot",
                "user_id": "larkops_bot",
                "open_id": emu.bot.open_id,
            },
            "name": "larkops",
            "tenant_key": emu.tenant_key,
        }
    ]
    assert (message["root_id"], message["parent_id"], message["thread_id"]) == ("", "", "")
    [ack] = emu.acks
    assert (ack.event_id, ack.code, ack.late) == (result.event_id, 200, False)
    assert ack.biz_rt_ms is not None
    assert ack.biz_rt_ms >= 0
    assert ack.latency_ms > 0
    assert result.latency_ms == ack.latency_ms
    [user_message] = emu.transcript("oc_ops")
    assert (user_message.text, user_message.sender_name) == ("@larkops /help", "张三")


async def test_official_dispatcher_parses_text_and_post_events(
    emu: LarkEmulator, connect: Connect
) -> None:
    seen: list[P2ImMessageReceiveV1] = []
    handler = (
        lark.EventDispatcherHandler.builder("", "")
        .register_p2_im_message_receive_v1(seen.append)
        .build()
    )
    await connect(handler)

    await emu.send_message("oc_dev", "ou_bob", "deploy status", msg_type="post")
    await emu.send_message("oc_p2p_carol", "ou_carol", "hi", mention_bot=False)

    post, p2p = seen
    assert post.header.event_type == "im.message.receive_v1"
    assert post.event.sender.sender_id.open_id == "ou_bob"
    assert post.event.message.message_type == "post"
    assert post.event.message.mentions[0].id.open_id == emu.bot.open_id
    content = json.loads(post.event.message.content)
    assert content["content"][0][0] == {
        "tag": "at",
        "user_id": "@_user_1",
        "user_name": "larkops",
        "style": [],
    }
    assert content["content"][0][1]["text"] == " deploy status"
    assert p2p.event.message.chat_type == "p2p"
    assert p2p.event.message.mentions == []
    assert json.loads(p2p.event.message.content) == {"text": "hi"}


async def test_pong_carries_client_config_and_sdk_reconfigures(
    emu: LarkEmulator, connect: Connect
) -> None:
    emu.client_config = ClientConfig(reconnect_interval=1, reconnect_nonce=0, ping_interval=1)
    client: SdkWsClient = await connect(RecordingHandler())
    assert client.client is not None
    assert client.client._ping_interval == 1  # from the endpoint response
    await wait_until(lambda: emu.gateway.pings >= 1)

    emu.client_config = ClientConfig(
        reconnect_count=7, reconnect_interval=2, reconnect_nonce=3, ping_interval=9
    )
    await wait_until(lambda: client.client is not None and client.client._ping_interval == 9)
    assert emu.gateway.pings >= 2
    assert (client.client._reconnect_count, client.client._reconnect_interval) == (7, 2)
    assert client.client._reconnect_nonce == 3


async def test_fragmented_payload_is_reassembled(emu: LarkEmulator, connect: Connect) -> None:
    handler = RecordingHandler()
    await connect(handler)
    emu.fragment_size = 64
    text = "磁盘告警 " * 100
    before = emu.gateway.frames_sent

    result = await emu.send_message("oc_ops", "ou_alice", text)

    assert result.acked
    frames = emu.gateway.frames_sent - before
    assert frames > 20
    [envelope] = handler.payloads
    assert json.loads(envelope["event"]["message"]["content"]) == {"text": f"@_user_1 {text}"}


async def test_missing_ack_is_redelivered_and_late_ack_recorded(
    emu: LarkEmulator, connect: Connect
) -> None:
    def slow_first(payload: dict[str, Any], count: int) -> None:
        if count == 1:
            time.sleep(0.8)  # blocks the SDK past the 0.5 s ack deadline

    handler = RecordingHandler(slow_first)
    await connect(handler)

    result = await emu.send_message("oc_ops", "ou_alice", "/status")

    assert result.acked
    assert result.deliveries == 2
    await wait_until(lambda: len(handler.payloads) == 2)
    assert handler.event_ids == [result.event_id, result.event_id]
    await wait_until(lambda: len(emu.acks) == 2)
    assert [a.late for a in emu.acks] == [True, False]
    assert len({a.delivery_id for a in emu.acks}) == 2


async def test_handler_error_acks_500_and_is_redelivered(
    emu: LarkEmulator, connect: Connect
) -> None:
    def flaky(payload: dict[str, Any], count: int) -> None:
        if count <= 2:
            raise RuntimeError("database down")

    handler = RecordingHandler(flaky)
    await connect(handler)

    result = await emu.send_message("oc_ops", "ou_alice", "/status")

    assert (result.acked, result.ack_code, result.deliveries) == (True, 200, 3)
    assert [a.code for a in result.acks] == [500, 500, 200]
    # a good ack stops redelivery: the next thing the client gets is the next event
    after = await emu.send_message("oc_ops", "ou_alice", "/status")
    assert after.acked
    assert handler.event_ids == [result.event_id] * 3 + [after.event_id]


async def test_max_deliveries_is_respected(emu: LarkEmulator, connect: Connect) -> None:
    def broken(payload: dict[str, Any], count: int) -> None:
        raise RuntimeError("always fails")

    handler = RecordingHandler(broken)
    await connect(handler)
    emu.max_deliveries = 3

    result = await emu.send_message("oc_ops", "ou_alice", "/status")

    assert (result.acked, result.ack_code, result.deliveries) == (False, 500, 3)
    # no fourth delivery: the next thing the client gets is the next event (three times too)
    after = await emu.send_message("oc_ops", "ou_alice", "/status")
    assert (after.acked, after.deliveries) == (False, 3)
    assert handler.event_ids == [result.event_id] * 3 + [after.event_id] * 3


async def test_event_waits_while_disconnected_and_arrives_after_reconnect(
    emu: LarkEmulator, connect: Connect
) -> None:
    handler = RecordingHandler()
    await connect(handler)
    emu.fail_next("/callback/ws/endpoint", status=503, code=1, count=1)

    assert await emu.drop_connections() == 1
    pending = asyncio.create_task(emu.send_message("oc_ops", "ou_bob", "/incidents"))
    await wait_until(lambda: emu.gateway.waiting == 1)
    assert emu.connections == 0
    assert handler.payloads == []

    result = await asyncio.wait_for(pending, 10)

    assert result.acked
    assert result.deliveries == 1
    assert handler.event_ids == [result.event_id]
    assert emu.connections == 1
    endpoint_statuses = [c.status for c in emu.calls if c.path == "/callback/ws/endpoint"]
    assert endpoint_statuses == [200, 503, 200]


async def test_events_spread_over_two_clients(emu: LarkEmulator, connect: Connect) -> None:
    first, second = RecordingHandler(), RecordingHandler()
    await connect(first)
    await connect(second)

    results = await asyncio.gather(
        *(emu.send_message("oc_ops", "ou_alice", f"/ping {i}") for i in range(20))
    )

    assert all(r.acked and r.deliveries == 1 for r in results)
    assert first.payloads
    assert second.payloads
    seen = first.event_ids + second.event_ids
    assert sorted(seen) == sorted(r.event_id for r in results)


async def test_wrong_app_secret_is_refused(emu: LarkEmulator, base_url: str) -> None:
    client = SdkWsClient(base_url, emu.app_id, "wrong", RecordingHandler()).start()
    await wait_until(lambda: client.finished)
    assert isinstance(client.error, ClientException)
    assert client.error.code == 10014
    assert emu.connections == 0


@pytest.mark.parametrize("payload", [b"not json", {"schema": "2.0", "header": {}}])
async def test_raw_payloads_reach_the_handler(
    emu: LarkEmulator, connect: Connect, payload: bytes | dict[str, Any]
) -> None:
    seen: list[bytes] = []

    class Raw:
        def _do_without_validation(self, data: bytes) -> None:
            seen.append(data)

    await connect(Raw())
    result = await emu.deliver_raw(payload)
    assert result.acked
    expected = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    assert seen == [expected]


async def test_ws_handshake_needs_an_endpoint_ticket(base_url: str) -> None:
    url = base_url.replace("http://", "ws://") + "/ws?device_id=forged&service_id=1"
    with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
        async with websockets.connect(url, proxy=None):
            pass
    assert caught.value.response.status_code == 403


async def test_each_event_goes_to_one_seeded_random_connection(
    emu: LarkEmulator, connect: Connect
) -> None:
    emu.gateway.rng = random.Random(7)
    first, second = RecordingHandler(), RecordingHandler()
    await connect(first)
    await connect(second)
    order = list(emu.gateway.connections)
    expected = random.Random(7)

    results = [await emu.send_message("oc_ops", "ou_alice", f"/ping {i}") for i in range(12)]

    assert [r.connections for r in results] == [[expected.choice(order)] for _ in results]
    assert len(first.payloads) + len(second.payloads) == 12  # once each, never to both
    assert first.payloads
    assert second.payloads
    peers = {c.peer for c in emu.gateway.connections.values()}
    assert len(peers) == 2
    assert all(p.startswith("127.0.0.1:") for p in peers)


async def test_unacked_event_is_redelivered_after_the_configured_delay(
    emu: LarkEmulator, connect: Connect
) -> None:
    times: list[float] = []

    def flaky(payload: dict[str, Any], count: int) -> None:
        times.append(time.monotonic())
        if count == 1:
            raise RuntimeError("not committed")

    await connect(RecordingHandler(flaky))
    emu.redelivery_delays = (0.4,)

    result = await emu.send_message("oc_ops", "ou_alice", "/status")

    assert (result.acked, result.deliveries) == (True, 2)
    assert [a.code for a in result.acks] == [500, 200]
    assert times[1] - times[0] >= 0.4
