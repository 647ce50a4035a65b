"""Silences in the chat: a bare word is refused with the syntax, errors are in Chinese, an
approver ends a silence early with /unsilence or the button on /silences (audited), and a
matching alert opens an incident again afterwards; viewers and other chats' buttons change
nothing."""

from __future__ import annotations

from typing import Any

from bot.lark.events import card_text
from tests.lark.testbot import TestBot, card_buttons
from workflows.intake import parse_generic

SETTINGS = {"roles": {"default": "viewer", "global": {"approver": ["ou_bob"]}}}


def web_down() -> Any:
    return parse_generic({"title": "WebDown", "labels": {"alertname": "WebDown", "env": "prod"}})


async def test_bad_matchers_are_refused_in_words_with_the_syntax(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=SETTINGS)
    await bot.send("/silence foo 2h", user="ou_bob")
    refused = (await bot.expect_reply()).text
    assert "alertname=foo" in refused
    assert "用法：/silence" in refused
    await bot.send('/silence instance=~"[" 2h', user="ou_bob")
    assert "正则表达式" in (await bot.expect_reply()).text
    await bot.send("/silence alertname=X 10x", user="ou_bob")
    assert "看不懂时长「10x」" in (await bot.expect_reply()).text
    assert await bot.rows("SELECT id FROM silences") == []


async def test_unsilence_ends_it_and_alerts_open_incidents_again(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=SETTINGS, incidents=True)
    assert bot.runtime.desk is not None
    await bot.send("/silence alertname=WebDown 2h 维护", user="ou_bob")
    assert "编号 1" in (await bot.expect_reply()).text
    caught = await bot.runtime.desk.receive(web_down(), "oc_ops")
    assert caught.silenced == 1
    await bot.send("/unsilence 1")  # a viewer
    assert "审批人" in (await bot.expect_reply()).text
    await bot.send("/unsilence 1", user="ou_bob")
    assert "已解除静默 #1" in (await bot.expect_reply()).text
    await bot.send("/unsilence 1", user="ou_bob")
    assert "没有生效中的静默 #1" in (await bot.expect_reply()).text
    again = await bot.runtime.desk.receive(web_down(), "oc_ops")
    assert again.silenced == 0
    assert len(again.new) == 1
    audit = await bot.rows(
        "SELECT actor, data->>'id' FROM incident_events WHERE kind = 'silence.ended'"
    )
    assert [tuple(row) for row in audit] == [("ou_bob", "1")]


async def test_the_button_on_silences_ends_one(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=SETTINGS)
    await bot.send("/silence alertname=WebDown 2h", user="ou_bob")
    await bot.expect_reply()
    await bot.send("/silence alertname=DiskFull,env=prod 1h", user="ou_bob")
    await bot.expect_reply()
    await bot.send("/silences")
    listed = await bot.expect_reply(contains="WebDown")
    assert set(card_buttons(listed.card)) == {"解除 #1", "解除 #2"}
    viewer = await bot.click(listed, "解除 #1", user="ou_alice")
    assert viewer.toast is not None
    assert viewer.toast["type"] == "error"
    forged = dict(card_buttons(listed.card)["解除 #1"], chat_id="oc_other")
    refused = await bot.click(listed, "解除 #1", user="ou_bob", value=forged)
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    ended = await bot.click(listed, "解除 #1", user="ou_bob")
    assert ended.toast is not None
    assert ended.toast["type"] == "success"
    assert ended.card is not None
    assert "WebDown" not in card_text(ended.card)
    assert set(card_buttons(ended.card)) == {"解除 #2"}
    rows = await bot.rows("SELECT id FROM silences WHERE cancelled_at IS NOT NULL")
    assert [row[0] for row in rows] == [1]
