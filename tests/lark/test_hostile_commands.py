"""Commands typed with mentions in their words: whatever a person types after a command (an
`<at user_id="all">` pasted from somewhere, a stranger's tag, a closing `</font>`) is answered
without the bot notifying anyone it did not mean to: its text replies (where `<at user_id=…>`
notifies) and its cards (`<at id=…>`) call the asker at most."""

from __future__ import annotations

import re
from typing import Any

from tests.lark.testbot import TestBot
from workflows.intake import parse_generic

EVIL = '<at user_id="all"></at><at id=all></at><at user_id="ou_bob">b</at></font>**x**'
COMMANDS = (
    f"/note 1 {EVIL}",
    f"/silence alertname=Evil 2h {EVIL}",
    f"/schedule 每天 9 点提醒我 {EVIL}",
    f"/escalate 1 {EVIL}",
    f"/resolve 1 {EVIL}",
    f"/incident 1 {EVIL}",
    f"/ack {EVIL}",
    f"/plugin x{EVIL}",
    f"/ask {EVIL}",
    f"/nosuch{EVIL}",
    '/nosuch<at\tuser_id="all"></at>',  # one word: the whole tag is the command's name
    "/incidents",
)
_CARD_MENTION = re.compile(r"<at\s+(?:id|ids|user_id|open_id|email)\s*=\s*\"?([^\"\s>]*)")


async def test_a_command_with_mentions_in_its_words_calls_nobody(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"approvers": ["ou_alice"]}, incidents=True)
    assert bot.runtime.desk is not None
    alert = {"title": f"Evil {EVIL}", "severity": "warning", "labels": {"alertname": "Evil"}}
    await bot.runtime.desk.receive(parse_generic(alert), "oc_ops")
    await bot.expect_reply()  # the incident's card
    for command in COMMANDS:
        await bot.send(command, user="ou_alice")
        await bot.expect_reply()

    said = [m for m in bot.emulator.transcript("oc_ops") if m.sender_type == "bot"]
    assert len(said) > len(COMMANDS)
    for message in said:
        called = set(message.notified)
        if message.card is not None:
            called |= set(_CARD_MENTION.findall(str(message.card)))
        assert called <= {"ou_alice"}, (message.text[:300], message.card)
