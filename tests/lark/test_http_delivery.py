"""Lark's HTTP event delivery, beside the long connection (`bot/lark/delivery.py`).

Requests are made as Lark makes them (encrypted with the Encrypt Key, signed); the real
`lark_oapi` event dispatcher accepts exactly what we accept, and our endpoint refuses forged,
replayed and malformed requests with 4xx, changing nothing. Accepted events go to the same
durable inbox as the long connection's: the bot answers a command, a card action is answered
at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import lark_oapi as lark
import pytest
from lark_oapi.core.model import RawRequest
from starlette.applications import Starlette

from bot.config import ConfigError, load_settings
from bot.lark.delivery import Credentials, Refused, http_delivery, open_request
from tests.lark.testbot import TestBot, wait_until
from tests.support.lark_http import sealed, signed

KEY = "encrypt-key-of-the-app"
TOKEN = "verification-token-of-the-app"
CREDENTIALS = Credentials(encrypt_key=KEY, verification_token=TOKEN, max_age=300)


def message_envelope(event_id: str = "ev-http-1", token: str = TOKEN) -> dict[str, Any]:
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id,
            "event_type": "im.message.receive_v1",
            "create_time": str(int(time.time() * 1000)),
            "token": token,
            "app_id": "cli_test",
            "tenant_key": "tenant",
        },
        "event": {
            "sender": {"sender_id": {"open_id": "ou_alice"}, "sender_type": "user"},
            "message": {
                "message_id": "om_http_1",
                "chat_id": "oc_ops",
                "chat_type": "group",
                "message_type": "text",
                "content": json.dumps({"text": "hello"}),
            },
        },
    }


def sdk_accepts(body: bytes, headers: dict[str, str]) -> bool:
    """What the official lark_oapi event dispatcher makes of the same request."""
    handler = (
        lark.EventDispatcherHandler.builder(KEY, TOKEN)
        .register_p2_im_message_receive_v1(lambda _: None)
        .build()
    )
    request = RawRequest()
    request.uri, request.body, request.headers = "/lark/events", body, headers
    return int(handler.do(request).status_code) == 200


def hostile_requests() -> dict[str, tuple[bytes, dict[str, str]]]:
    good = sealed(message_envelope(), KEY)
    tampered = json.loads(good)
    tampered["encrypt"] = tampered["encrypt"][:-8] + "AAAAAAA="
    return {
        "wrong signature": (good, {**signed(good, KEY), "X-Lark-Signature": "0" * 64}),
        "unsigned": (good, {"Content-Type": "application/json"}),
        "signed with another key": (good, signed(good, "another-key")),
        "another key's encryption": (sealed(message_envelope(), "x"), signed(good, KEY)),
        "wrong token": (
            sealed(message_envelope(token="guess"), KEY),
            signed(sealed(message_envelope(token="guess"), KEY), KEY),
        ),
        "tampered ciphertext": (
            json.dumps(tampered).encode(),
            signed(json.dumps(tampered).encode(), KEY),
        ),
        "not JSON": (b"{not json", signed(b"{not json", KEY)),
    }


def test_a_request_lark_signs_is_accepted_by_us_and_by_the_sdk() -> None:
    body = sealed(message_envelope(), KEY)
    headers = signed(body, KEY)
    opened = open_request(body, {k.lower(): v for k, v in headers.items()}, CREDENTIALS)
    assert opened.event is not None
    assert opened.event["header"]["event_id"] == "ev-http-1"
    assert sdk_accepts(body, headers)


@pytest.mark.parametrize("name", list(hostile_requests()))
def test_a_forged_request_is_refused_by_us_and_by_the_sdk(name: str) -> None:
    body, headers = hostile_requests()[name]
    with pytest.raises(Refused) as refused:
        open_request(body, {k.lower(): v for k, v in headers.items()}, CREDENTIALS)
    assert 400 <= refused.value.status < 500
    assert not sdk_accepts(body, headers)


def test_a_replayed_request_is_refused_outside_the_window() -> None:
    body = sealed(message_envelope(), KEY)
    old = {k.lower(): v for k, v in signed(body, KEY, timestamp=int(time.time()) - 600).items()}
    with pytest.raises(Refused, match="replay") as refused:
        open_request(body, old, CREDENTIALS)
    assert refused.value.status == 401


def test_unsigned_requests_all_fail_alike_so_nothing_leaks_about_the_key() -> None:
    """Without a signature, a ciphertext that decrypts and one that does not get the same
    answer: no padding oracle for someone without the Encrypt Key."""
    valid = sealed(message_envelope(), KEY)
    broken = json.dumps({"encrypt": json.loads(valid)["encrypt"][:-4] + "AAA="}).encode()
    answers = set()
    for body in (valid, broken, b'{"encrypt": "bm90IGEgY2lwaGVy"}', b'{"schema": "2.0"}'):
        with pytest.raises(Refused) as refused:
            open_request(body, {}, CREDENTIALS)
        answers.add((refused.value.status, refused.value.reason))
    assert answers == {(401, "unsigned request")}


def test_a_body_over_a_mebibyte_is_refused() -> None:
    body = b'{"encrypt": "' + b"A" * (1024 * 1024) + b'"}'
    with pytest.raises(Refused) as refused:
        open_request(body, {}, CREDENTIALS)
    assert refused.value.status == 413


def test_the_url_verification_challenge_is_answered_after_the_token_check() -> None:
    challenge = {"challenge": "c-42", "token": TOKEN, "type": "url_verification"}
    body = sealed(challenge, KEY)
    assert open_request(body, {}, CREDENTIALS).challenge == "c-42"
    assert sdk_accepts(body, {})
    forged = sealed({**challenge, "token": "guess"}, KEY)
    with pytest.raises(Refused):
        open_request(forged, {}, CREDENTIALS)
    assert not sdk_accepts(forged, {})


def test_http_delivery_needs_a_key_or_a_token() -> None:
    with pytest.raises(ConfigError, match="LARK_ENCRYPT_KEY"):
        load_settings(lark_event_delivery="http")
    assert load_settings(
        lark_event_delivery="http", lark_verification_token="t"
    ).lark_event_delivery


# --- through the bot -----------------------------------------------------------------------------

Post = Callable[..., Any]


@pytest.fixture
async def http_bot(make_testbot: Any) -> AsyncIterator[tuple[TestBot, Post]]:
    settings = {
        "lark_event_delivery": "http",
        "lark_encrypt_key": KEY,
        "lark_verification_token": TOKEN,
    }
    bot: TestBot = await make_testbot(settings=settings, wait_connected=False)
    await wait_until(lambda: bot.runtime.inbox is not None, what="the inbox")
    assert bot.runtime.state() == "http delivery"
    app = Starlette(routes=http_delivery(load_settings(**settings), lambda: bot.runtime.inbox))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://larkops"
    ) as client:

        async def post(
            event: dict[str, Any], *, path: str = "/lark/events", **signing: Any
        ) -> httpx.Response:
            body = sealed(event, KEY)
            return await client.post(path, content=body, headers=signed(body, KEY, **signing))

        yield bot, post


async def test_a_command_delivered_over_http_is_answered(http_bot: tuple[TestBot, Post]) -> None:
    bot, post = http_bot
    envelope = bot.emulator.record_message(bot.chat, "ou_alice", "/whoami")
    envelope["header"]["token"] = TOKEN
    first = await post(envelope)
    again = await post(envelope)  # Lark redelivers: one inbox row, one answer
    assert (first.status_code, again.status_code) == (200, 200)
    assert "ou_alice" in (await bot.expect_reply()).text
    await bot.expect_silence()
    rows = await bot.rows("SELECT source, status FROM inbound_events")
    assert [tuple(row) for row in rows] == [("http", "done")]


async def test_forged_replayed_and_malformed_requests_change_nothing(
    http_bot: tuple[TestBot, Post],
) -> None:
    bot, post = http_bot
    envelope = bot.emulator.record_message(bot.chat, "ou_alice", "/whoami")
    replayed = await post(
        {**envelope, "header": {**envelope["header"], "token": TOKEN}},
        timestamp=int(time.time()) - 3600,
    )
    forged = await post(envelope)  # the emulator's envelope carries no verification token
    no_envelope = await post({"header": {"token": TOKEN}, "schema": "2.0"})
    assert (replayed.status_code, forged.status_code, no_envelope.status_code) == (401, 401, 400)
    await bot.expect_silence()
    assert await bot.rows("SELECT 1 FROM inbound_events") == []


async def test_a_card_action_over_http_is_answered_at_once(http_bot: tuple[TestBot, Post]) -> None:
    bot, post = http_bot
    action = {
        "schema": "2.0",
        "header": {
            "event_id": "ev-card-1",
            "event_type": "card.action.trigger",
            "create_time": str(int(time.time() * 1000)),
            "token": TOKEN,
        },
        "event": {
            "operator": {"open_id": "ou_alice"},
            "token": "c-123",
            "action": {"value": {"forged": "yes"}, "tag": "button"},
            "context": {"open_message_id": "om_x", "open_chat_id": bot.chat},
        },
    }
    started = time.monotonic()
    answer = await post(action, path="/lark/card")
    assert answer.status_code == 200
    assert time.monotonic() - started < 3.0
    assert answer.json()["toast"]["type"] == "error"  # an unsigned value is refused, politely
