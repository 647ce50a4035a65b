"""`/incident <id>` shows a pending gate again with its buttons (a card lost in the scroll-back,
or a sandbox restarted): a click on the new card decides the gate like the original's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.lark.events import card_text
from tests.lark.test_incidents import APPROVE, card_with, fire, health, settings_for
from tests.lark.testbot import TestBot

__all__ = ["health"]  # the fixture, used by name


async def test_incident_shows_a_pending_gate_again_with_working_buttons(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url)
    await card_with(bot, card, APPROVE)
    ((incident_id,),) = await bot.rows("SELECT id FROM incidents")
    await bot.send(f"/incident {incident_id}")
    await bot.expect_reply("时间线")
    again = await bot.expect_reply()
    assert again.message_id != card.message_id
    assert f"#{incident_id}" in card_text(again.card)
    click = await bot.click(again, APPROVE, user="ou_bob")
    assert click.toast is not None
    assert click.toast["type"] == "success"
    await card_with(bot, card, "执行修复")  # the original card moved on to the fix's gate
    await bot.send("/incident 99999")
    assert "找不到" in (await bot.expect_reply()).text
