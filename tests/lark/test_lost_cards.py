"""Cards Feishu will never update again — recalled (230011) or sent more than 14 days ago
(230031) — for a war room and for a scheduled job's draft: like the incident's card, a new
card goes to the chat showing the state, and later updates go to it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from bot.lark.events import card_text
from bot.sandbox.emulator import LarkEmulator
from tests.lark.test_oncall import ACK, contract, fire, on_call_now, shows
from tests.lark.testbot import TestBot, card_buttons, wait_until

FOURTEEN_DAYS_MS = 14 * 24 * 3600 * 1000 + 60_000


def lose(emulator: LarkEmulator, message_id: str, how: str) -> None:
    """Make the message one Feishu refuses to update: recalled, or sent 14 days ago."""
    if how == "recalled":
        emulator.recall(message_id)
        return
    sent = emulator.store.get(message_id)
    assert sent is not None
    sent.created_at -= FOURTEEN_DAYS_MS


@pytest.mark.parametrize("how", ["recalled", "aged"])
async def test_a_war_room_card_feishu_will_not_update_is_sent_again(
    make_testbot: Any, how: str
) -> None:
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    oncall, _ = on_call_now()
    card = await fire(bot)
    await bot.send("/warroom 1", user="ou_alice")
    await bot.expect_reply(contains="作战群")
    [room] = bot.emulator.paging.created
    posted = await bot.expect_reply(chat=room, contains="DiskFull")
    lose(bot.emulator, posted.message_id, how)
    versions = len(posted.card_history)

    await bot.send("/ack 1", user=oncall)
    await bot.expect_reply(contains="已确认事件 #1")
    await shows(bot, card, "已认领")
    again = await bot.emulator.wait_for_bot_message(
        room,
        lambda m: m.card is not None and "已认领" in card_text(m.card),
        10,
        after=posted.seq,
    )
    assert again.message_id != posted.message_id
    assert ACK not in card_buttons(again.card)
    assert len(posted.card_history) == versions  # the lost card was left alone

    async def recorded() -> bool:
        return await bot.rows("SELECT card_message_id FROM war_rooms") == [(again.message_id,)]

    await wait_until(recorded, what="the new card recorded")
    # on top of the room, as the first was
    await wait_until(lambda: again.message_id in bot.emulator.paging.pins, what="the pin")

    await bot.send("/resolve 1 清理了磁盘", user="ou_carol")
    await bot.expect_reply(contains="已恢复")
    await bot.emulator.wait_for_bot_message(  # later updates go to the new card
        room, lambda m: m.message_id == again.message_id and "已恢复" in card_text(m.card), 10
    )
    sent = [m for m in bot.emulator.transcript(room) if m.card is not None]
    assert len(sent) == 2  # the lost card and the one in its place, no more


@pytest.mark.parametrize("how", ["recalled", "aged"])
async def test_an_expired_draft_whose_card_feishu_will_not_update_says_so_anew(
    make_testbot: Any, how: str
) -> None:
    bot: TestBot = await make_testbot(settings={"pending_ttl_hours": 2})
    await bot.send("每天早上9点检查磁盘")
    first = await bot.expect_reply("新的定时任务")
    lose(bot.emulator, first.message_id, how)
    async with bot.db.engine.begin() as conn:
        await conn.execute(text("UPDATE schedules SET created_at = now() - interval '3 hours'"))
    await bot.runtime.sweep()
    again = await bot.expect_reply("已过期")
    assert again.message_id != first.message_id
    assert "2 小时内无人确认" in card_text(again.card)
    assert card_buttons(again.card) == {}
    assert await bot.rows("SELECT status, card_message_id FROM schedules") == [
        ("expired", again.message_id)
    ]
