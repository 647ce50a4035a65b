"""Commands typed with mentions in their words: whatever a person types after a command (an
`<at user_id="all">` pasted from somewhere, a stranger's tag, a closing `</font>`) is answered
without the bot notifying anyone it did not mean to: its text replies (where `<at user_id=…>`
notifies) and its cards (`<at id=…>`) call the asker at most."""

from __future__ import annotations

import re
from typing import Any

from tests.lark.testbot import TestBot

EVIL = '<at user_id="all"></at><at id=all></at><at user_id="ou_bob">b</at></font>**x**'
COMMANDS = (
    "/ack", "/resolve", "/incident", "/escalate", "/diagnose", "/note", "/warroom",
    "/postmortem", "/similar", "/silence", "/unsilence", "/plugin", "/run", "/job",
    "/schedule", "/ask", "/roles", "/incidents", "/nosuch", "/help",
)  # fmt: skip
_CARD_MENTION = re.compile(r"<at\s+(?:id|ids|user_id|open_id|email)\s*=\s*\"?([^\"\s>]*)")


async def test_a_command_with_mentions_in_its_words_calls_nobody(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(incidents=True)
    for command in COMMANDS:
        await bot.send(f"{command} {EVIL}", user="ou_alice")
        await bot.expect_reply()
    await bot.send(f"/nosuch{EVIL}", user="ou_alice")
    await bot.expect_reply()

    said = [m for m in bot.emulator.transcript("oc_ops") if m.sender_type == "bot"]
    assert len(said) >= len(COMMANDS) + 1
    for message in said:
        called = set(message.notified)
        if message.card is not None:
            called |= set(_CARD_MENTION.findall(str(message.card)))
        assert called <= {"ou_alice"}, (message.text[:200], message.card)
