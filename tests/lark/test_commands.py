"""Slash commands through the real long connection, read like a chat."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.lark.testbot import TestBot, card_buttons, card_text


async def test_help_lists_commands_from_docstrings(testbot: TestBot) -> None:
    await testbot.send("/help")
    reply = await testbot.expect_reply()
    assert "/help" in reply.text
    assert "/ping — 检查机器人是否在线，并显示各环节延迟。" in reply.text
    assert "/whoami — 显示你的 open_id 和角色。" in reply.text
    # it is a reply to the message that asked
    asked = [m for m in testbot.emulator.transcript("oc_ops") if m.sender_type == "user"][-1]
    assert reply.parent_id == asked.message_id


async def test_help_in_english(make_testbot: object) -> None:
    bot: TestBot = await make_testbot(settings={"language": "en"})  # type: ignore[operator]
    await bot.send("/help")
    reply = await bot.expect_reply()
    assert "/ping — Check the bot is alive and show latency figures." in reply.text


async def test_whoami_shows_open_id_and_roles(make_testbot: object) -> None:
    bot: TestBot = await make_testbot(  # type: ignore[operator]
        settings={"approvers": ["ou_bob"], "admins": ["ou_carol"]}
    )
    await bot.send("/whoami", user="ou_bob")
    reply = await bot.expect_reply()
    assert "ou_bob" in reply.text
    assert "审批人" in reply.text
    assert "oc_ops" in reply.text
    await bot.send("/whoami", user="ou_carol")
    assert "管理员" in (await bot.expect_reply()).text
    await bot.send("/whoami", user="ou_alice")
    reply = await bot.expect_reply()
    assert "操作员" in reply.text  # without a `roles:` section everybody is an operator
    assert "审批人" not in reply.text


async def test_unknown_command_suggests_the_closest(testbot: TestBot) -> None:
    await testbot.send("/pnig")
    reply = await testbot.expect_reply()
    assert "未知命令 `/pnig`" in reply.text
    assert "/ping" in reply.text
    await testbot.send("/zzzzzz")
    reply = await testbot.expect_reply()
    assert "/help" in reply.text
    assert "你是不是想" not in reply.text


async def test_commands_work_in_post_messages(testbot: TestBot) -> None:
    await testbot.send("/whoami", msg_type="post")
    assert "ou_alice" in (await testbot.expect_reply()).text


async def test_ping_card_and_refresh_button(testbot: TestBot) -> None:
    await testbot.send("/ping")
    card = await testbot.expect_reply(contains="pong")
    text = card_text(card.card)
    assert "数据库往返" in text
    assert "Lark 开放平台" in text
    assert "重新测量" in card_buttons(card.card)
    versions_before = len(card.card_history)

    click = await testbot.click(card, "重新测量", user="ou_bob")
    assert click.toast == {"type": "success", "content": "已重新测量"}
    assert click.card is not None
    assert "由 <at id=ou_bob></at>" in card_text(click.card)
    # the Lark round trip is measured after the answer and arrives as a delayed update
    updated = await testbot.emulator.wait_for_bot_message(
        "oc_ops",
        lambda m: (
            m.message_id == card.message_id
            and "ou_bob" in card_text(m.card)
            and "Lark 开放平台" in card_text(m.card)
        ),
        timeout=10,
    )
    assert len(updated.card_history) >= versions_before + 2
    assert any(c.path.endswith("/interactive/v1/card/update") for c in testbot.emulator.calls)


async def test_stopping_logs_no_error(make_testbot: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A clean stop (Ctrl-C, a rolling restart) closes the long connection without an ERROR
    from the SDK and without an unretrieved task exception."""
    bot = await make_testbot()
    await bot.send("/ping")
    await bot.expect_reply()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await bot.runtime.stop()
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert loud == [], [r.getMessage() for r in loud]
