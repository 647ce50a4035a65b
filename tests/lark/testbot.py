"""A `testbot` for scenario tests that read like a chat transcript.

The whole Lark path is real: the emulator serves REST and the long connection, the official
`lark_oapi` client connects to it from its own thread, events are committed to Postgres, claimed
by the inbox workers, dispatched, and answered through `LarkApi` (the SDK's REST client).

    await bot.send("/help")
    reply = await bot.expect_reply(contains="/ping")
    click = await bot.click(card, "重新测量")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.lark.events import card_text
from bot.lark.runtime import LarkRuntime
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import ClickResult, DeliveryResult
from bot.sandbox.record import Message
from storage.database import Database
from tests.support.wait import wait_until

__all__ = ["TestBot", "card_buttons", "wait_until"]


def card_buttons(card: dict[str, Any] | None) -> dict[str, Any]:
    """Button label -> callback value, anywhere in a Card JSON 2.0 body."""
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "button":
                label = (node.get("text") or {}).get("content", "")
                behaviors = node.get("behaviors") or []
                callback = next((b for b in behaviors if b.get("type") == "callback"), None)
                found[label] = callback["value"] if callback else node.get("value")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


@dataclass
class TestBot:
    __test__ = False  # a fixture, not a test class
    emulator: LarkEmulator
    runtime: LarkRuntime
    db: Database
    chat: str = "oc_ops"
    user: str = "ou_alice"
    _seen: dict[str, int] = field(default_factory=dict)

    async def send(
        self, text: str, *, user: str | None = None, chat: str | None = None, **options: Any
    ) -> DeliveryResult:
        """A person types `text` (mentioning the bot unless `mention_bot=False`)."""
        return await self.emulator.send_message(
            chat or self.chat, user or self.user, text, **options
        )

    async def expect_reply(
        self, contains: str | None = None, *, chat: str | None = None, timeout: float = 10.0
    ) -> Message:
        """The next bot message in the chat (optionally containing `contains`)."""
        chat = chat or self.chat

        def wanted(message: Message) -> bool:
            shown = message.text + card_text(message.card)
            return contains is None or contains in shown

        message = await self.emulator.wait_for_bot_message(
            chat, wanted, timeout, after=self._seen.get(chat, 0)
        )
        self._seen[chat] = message.seq
        return message

    async def expect_replies(
        self, *contains: str, chat: str | None = None, timeout: float = 10.0
    ) -> list[Message]:
        """The next bot messages containing each of `contains`, in whichever order they come
        (replies sent by different tasks)."""
        chat = chat or self.chat
        after = self._seen.get(chat, 0)
        found = [
            await self.emulator.wait_for_bot_message(
                chat, lambda m, c=c: c in m.text + card_text(m.card), timeout, after=after
            )
            for c in contains
        ]
        self._seen[chat] = max(m.seq for m in found)
        return found

    async def expect_silence(self, *, chat: str | None = None, within: float = 0.7) -> None:
        """No new bot message arrives in the chat for `within` seconds."""
        chat = chat or self.chat
        try:
            extra = await self.emulator.wait_for_bot_message(
                chat, None, within, after=self._seen.get(chat, 0)
            )
        except TimeoutError:
            return
        raise AssertionError(f"unexpected bot message: {extra.text or extra.card}")

    async def click(
        self, message: Message, label: str, *, user: str | None = None, value: Any = None
    ) -> ClickResult:
        """Click the button `label` on a card (or send `value` instead of its real value)."""
        if value is not None:  # a replayed (stale or forged) value: the card may have moved on
            return await self.emulator.click(message.message_id, user or self.user, value)
        buttons = card_buttons(message.card)
        assert label in buttons, f"no button {label!r} on the card; it has {sorted(buttons)}"
        chosen = buttons[label]
        return await self.emulator.click(message.message_id, user or self.user, chosen)

    async def sweep(self) -> None:
        """One sweep round now: expire due gates, reclaim stranded runs."""
        await self.runtime.sweep()

    async def rows(self, sql: str) -> list[Any]:
        from sqlalchemy import text

        async with self.db.engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
