"""An incident escalated after someone acknowledged it is paged again, through the emulator:
the acknowledgement no longer stops its paging, the next level that reaches someone new is
called now and the later ones follow on their timers, counted from the escalation time the
database keeps — so a restart loses none, two replicas fire each once, and the Ack of whoever
takes it over stops them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.lark.events import card_text
from tests.lark.test_oncall import (
    ACK,
    LEAD,
    contract,
    due_now,
    fire,
    on_call_now,
    shows,
    successors,
)
from tests.lark.testbot import TestBot, card_buttons, wait_until

STEPS = "SELECT step, level, status, after_escalation FROM pages ORDER BY step"


def repeating() -> dict[str, Any]:
    settings = contract()
    settings["escalation"]["repeat"] = 1
    settings["escalation"]["repeat_every"] = "5m"
    return settings


async def escalate(bot: TestBot) -> None:
    """The lead escalates #1; once its message is out, the steps it plans are written."""
    await bot.send("/escalate 1", user=LEAD)
    await bot.expect_reply(contains="事件 #1 已升级")
    await wait_until(lambda: _planned(bot), what="the escalation's paging steps")


async def _planned(bot: TestBot) -> bool:
    return bool(await bot.rows("SELECT 1 FROM pages WHERE after_escalation"))


async def _done(bot: TestBot, count: int) -> bool:
    return await bot.rows("SELECT count(*) FROM pages WHERE status = 'done'") == [(count,)]


async def test_an_escalation_after_the_ack_pages_the_next_level_across_restarts(
    make_testbot: Any,
) -> None:
    first: TestBot = await make_testbot(settings=repeating(), incidents=True)
    oncall, _ = on_call_now()
    card = await fire(first)
    await first.sweep()  # level 1: the on-call person is mentioned
    await first.expect_reply(contains="尚未认领")
    paged = await shows(first, card, ACK)
    click = await first.click(paged, ACK, user=oncall)
    assert click.toast is not None
    assert click.toast["type"] == "success"

    await escalate(first)  # the on-call person needs help
    # level 2 would only call the person who acknowledged: level 3 (the lead) is due now, and
    # the repeat of it five minutes after the escalation
    rows = await first.rows(STEPS)
    assert rows[:4] == [
        (1, 1, "done", False),
        (2, 2, "cancelled", False),
        (3, 3, "cancelled", False),
        (4, 3, "cancelled", False),
    ]
    assert rows[4:] == [(5, 3, "pending", True), (6, 3, "pending", True)]
    [(gap,)] = await first.rows(
        "SELECT extract(epoch FROM max(due_at) - min(due_at)) FROM pages WHERE after_escalation"
    )
    assert float(gap) == 300.0
    [(due, escalated)] = await first.rows(
        "SELECT min(p.due_at), i.escalated_at FROM pages p JOIN incidents i ON i.id = "
        "p.incident_id WHERE p.after_escalation GROUP BY i.escalated_at"
    )
    assert due == escalated

    await first.sweep()
    await wait_until(lambda: _done(first, 2), what="the escalation's first page")
    assert first.emulator.paging.to(LEAD)  # the urgent call on the card
    again = await shows(first, card, "升级后重新通知")  # whoever takes it over acks it anew
    assert ACK in card_buttons(again.card)
    assert "已升级，需要人工处理" in card_text(again.card)
    await first.send("/oncall", user=LEAD)  # nobody owns it since the escalation
    shown = card_text((await first.expect_reply(contains="当前值班")).card)
    assert "#1 DiskFull · 已升级 · 尚无人认领" in shown

    replicas = await successors(first, make_testbot, repeating())  # the escalator is gone
    await due_now(first, 6)
    await asyncio.gather(*(r.sweep() for r in replicas), *(r.sweep() for r in replicas))
    await wait_until(lambda: _done(first, 3), what="the repeat, once")
    assert len(first.emulator.paging.to(LEAD)) == 2
    assert [(s, a) for s, _, _, a in await first.rows(STEPS) if a] == [(5, True), (6, True)]


async def test_the_ack_of_whoever_takes_the_escalation_over_stops_its_paging(
    make_testbot: Any,
) -> None:
    bot: TestBot = await make_testbot(settings=repeating(), incidents=True)
    oncall, _ = on_call_now()
    card = await fire(bot)
    await bot.sweep()
    await bot.expect_reply(contains="尚未认领")
    await bot.send("/ack 1", user=oncall)
    await bot.expect_reply(contains="已确认事件 #1")
    await escalate(bot)
    await bot.sweep()
    await wait_until(lambda: bot.emulator.paging.to(LEAD), what="the lead's urgent call")
    paged = await shows(bot, card, "升级后重新通知")
    click = await bot.click(paged, ACK, user=LEAD)
    assert click.toast is not None
    assert click.toast["type"] == "success"
    assert ACK not in card_buttons(click.card)
    assert await bot.rows("SELECT acknowledged_by FROM incidents") == [(LEAD,)]
    await due_now(bot, 6)
    await bot.sweep()  # the repeat: acknowledged since the escalation, so nobody
    assert await bot.rows(STEPS + " OFFSET 4") == [(5, 3, "done", True), (6, 3, "cancelled", True)]
    assert len(bot.emulator.paging.to(LEAD)) == 1


async def test_acknowledged_by_someone_off_call_the_escalation_pages_the_on_call_person(
    make_testbot: Any,
) -> None:
    """A bystander acknowledged it before anyone was paged; the escalation calls on whoever is
    on call now (level 1, a chat mention), then the later levels on their timers."""
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    oncall, other = on_call_now()
    await fire(bot)
    await bot.send("/ack 1", user=other)  # not on call now
    await bot.expect_reply(contains="已确认事件 #1")
    await escalate(bot)
    await bot.sweep()
    called = await bot.expect_reply(contains="已升级，需要你处理")
    assert f'<at user_id="{oncall}"></at>' in json.loads(called.content)["text"]
    assert [r[1:] for r in await bot.rows(STEPS) if r[3]] == [
        (1, "done", True),
        (2, "pending", True),
        (3, "pending", True),
    ]
