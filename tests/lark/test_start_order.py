"""Lark connects before the bot's desks are built (issue 22), and nothing that arrives in
between is lost: a message is committed and answered once the desks are ready, a card click
waits for them and gets its answer, an alert webhook is accepted and triaged.

Each test opens a gateway as `larkops run` does (`bot.app`), delivers while no runtime exists,
then builds and starts the runtime with that gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.assembly import assemble
from bot.commands.basics import PingRefresh
from bot.config import load_settings
from bot.incidents.webhooks import WebhookSink
from bot.lark import connection, inbox
from bot.lark.gateway import Gateway, LarkTarget
from bot.lark.runtime import LarkRuntime
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.record import Message
from bot.sandbox.server import serve_emulator
from cards.actions import pack
from storage.coordination import MemoryCoordination
from tests.conftest import World
from tests.lark.conftest import SIGNING_KEY, TEST_TIMERS
from tests.lark.testbot import TestBot, wait_until

TOKEN = "start-order-token"


class Starting:
    """A gateway open on an emulator, no runtime yet; `arrived` lists the event types the
    inbox was handed."""

    def __init__(self, world: World, emulator: LarkEmulator, url: str) -> None:
        self.world = world
        self.emulator = emulator
        self.settings = load_settings(home=str(world.tmp / "home"), alert_chat_id="oc_ops")
        target = LarkTarget(emulator.app_id, emulator.app_secret, url, sandbox=True)
        self.gateway = Gateway(self.settings, world.db, target)
        self.arrived: list[str] = []
        accept = self.gateway.inbox.accept

        async def recording(raw: bytes | dict[str, Any], source: str = "lark") -> Any:
            body = raw if isinstance(raw, dict) else json.loads(raw)
            self.arrived.append(str(body.get("header", {}).get("event_type", "")))
            return await accept(raw, source)

        self.gateway.inbox.accept = recording  # type: ignore[method-assign]
        self.runtime: LarkRuntime | None = None

    def build(self) -> LarkRuntime:
        """The desks, built and started behind the open gateway."""
        self.runtime = assemble(
            self.settings,
            self.world.db,
            MemoryCoordination(),
            self.gateway.target,
            SIGNING_KEY,
            checkpointer=None,
            timers=TEST_TIMERS,
            gateway=self.gateway,
        )
        self.runtime.start()
        return self.runtime


@pytest.fixture
async def starting(world: World) -> AsyncIterator[Starting]:
    stack = AsyncExitStack()
    emulator = LarkEmulator(ack_deadline=30.0)  # the click below waits for start-up
    url = await stack.enter_async_context(serve_emulator(emulator))
    state = Starting(world, emulator, url)
    state.gateway.open()
    await wait_until(lambda: state.gateway.state() == "connected", timeout=30, what="connected")
    yield state
    if state.runtime is not None:
        await state.runtime.stop()
    else:
        await state.gateway.close()
    await stack.aclose()


async def test_a_message_sent_before_the_desks_exist_is_answered_once_they_are(
    starting: Starting,
) -> None:
    sent = await starting.emulator.send_message("oc_ops", "ou_alice", "/whoami")
    assert sent.acked  # committed, though nothing can handle it yet
    bot = TestBot(starting.emulator, starting.build(), starting.world.db)
    assert "ou_alice" in (await bot.expect_reply("ou_alice", timeout=30)).text
    query = f"SELECT status FROM inbound_events WHERE event_id = '{sent.event_id}'"

    async def handled() -> bool:
        return await bot.rows(query) == [("done",)]

    # the reply is sent inside the handler; the row is marked done just after it returns
    await wait_until(handled, what="the delivery marked done after its reply")


async def test_a_click_during_start_up_waits_for_the_desks_and_is_answered(
    starting: Starting, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a start-up slower than Lark allows is the next test's; here only the order matters
    monkeypatch.setattr(inbox, "CARD_DEADLINE", 25.0)
    monkeypatch.setattr(connection, "HANDOFF_TIMEOUT", 28.0)
    card = _bot_card(starting.emulator, pack(PingRefresh(chat_id="oc_ops"), SIGNING_KEY))
    click = _later(starting.emulator.click(card.message_id, "ou_bob", _value(card)))
    await wait_until(lambda: "card.action.trigger" in starting.arrived, what="the click")
    starting.build()
    result = await click()
    assert result.toast == {"type": "success", "content": "已重新测量"}


async def test_a_click_start_up_cannot_answer_in_time_is_not_acknowledged(
    starting: Starting, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "CARD_DEADLINE", 0.2)
    card = _bot_card(starting.emulator, pack(PingRefresh(chat_id="oc_ops"), SIGNING_KEY))
    result = await starting.emulator.click(card.message_id, "ou_bob", _value(card))
    # Lark shows the person the click failed (no toast, no new card); nothing was recorded
    assert result.toast is None
    assert result.card is None


async def test_an_alert_accepted_during_start_up_is_triaged_once_the_desks_are_ready(
    starting: Starting,
) -> None:
    sink = WebhookSink(starting.settings, TOKEN, starting.world.db, starting.gateway.wake)
    alert = {"title": "WebDown", "severity": "critical", "labels": {"alertname": "WebDown"}}
    transport = httpx.ASGITransport(app=Starlette(routes=sink.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        answer = await client.post(
            "/webhooks/generic", json=alert, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 202, answer.text
    bot = TestBot(starting.emulator, starting.build(), starting.world.db)
    await bot.expect_reply("WebDown", timeout=30)  # the incident card


def _bot_card(emulator: LarkEmulator, value: dict[str, Any]) -> Message:
    """A card the bot posted earlier (before this start), with one button sending `value`."""
    card = {
        "schema": "2.0",
        "body": {
            "elements": [
                {
                    "tag": "button",
                    "text": {"tag": "plain_text", "content": "重新测量"},
                    "behaviors": [{"type": "callback", "value": value}],
                }
            ]
        },
    }
    message = Message(
        seq=emulator.store.next_seq(),
        message_id="om_before_restart",
        chat_id="oc_ops",
        sender_id=emulator.bot.open_id,
        sender_name="larkops",
        sender_type="app",
        msg_type="interactive",
        content="",
        card=card,
    )
    return emulator.store.add(message)


def _value(card: Message) -> Any:
    assert card.card is not None
    return card.card["body"]["elements"][0]["behaviors"][0]["value"]


def _later(work: Awaitable[Any]) -> Callable[[], Awaitable[Any]]:
    """Start `work` now; the returned function awaits its result."""
    task = asyncio.ensure_future(work)

    async def result() -> Any:
        return await task

    return result
