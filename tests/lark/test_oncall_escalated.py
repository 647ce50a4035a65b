"""Escalations on the rotation's edges, through the emulator: a gate that times out while the
bot is down, a shift that changes under an escalated incident, nobody on call, and paging that
repeats its last level until someone acknowledges. Each time the incident stays in sight
(/incidents, /oncall) with its escalated state, and the chat says who must act."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.lark.events import card_text
from tests.api.test_oncall_day import ROTATION, day_settings, on_duty, team
from tests.lark.test_incidents import card_with, fire
from tests.lark.test_oncall import due_now, shows
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.health import health_service
from tests.support.language import chat_leaks

APPROVE, ACK = "批准", "认领"
ZONE = ZoneInfo("Asia/Shanghai")


async def _status(bot: TestBot, wanted: str) -> bool:
    return await bot.rows("SELECT status FROM incidents WHERE id = 1") == [(wanted,)]


async def in_sight(bot: TestBot, user: str = "ou_alice") -> str:
    """/incidents and /oncall both list incident #1 as escalated; the /oncall card's text."""
    await bot.send("/incidents", user=user)
    # (the list's card: the escalation's own messages name #1 too, and may still be coming)
    listed = card_text((await bot.expect_reply(contains="未解决的事件")).card)
    assert "#1" in listed
    assert "已升级" in listed
    await bot.send("/oncall", user=user)
    shown = card_text((await bot.expect_reply(contains="当前值班")).card)
    assert "已升级、尚未恢复的事件" in shown
    assert "#1 WebDown · 已升级" in shown
    return shown


async def test_a_gate_timing_out_while_the_bot_is_down_escalates_to_whoever_is_on_call(
    make_testbot: Any, tmp_path: Path
) -> None:
    async with health_service(tmp_path / "healthy-web") as url:
        settings = day_settings(tmp_path)
        first: TestBot = await make_testbot(emulator=team(), settings=settings, incidents=True)
        card = await fire(first, url)
        await card_with(first, card, "http_check", APPROVE)  # the diagnosis gate is open
        await first.runtime.stop()
        async with first.db.session() as session:  # its wait ran out while nobody was up
            from sqlalchemy import text

            await session.execute(
                text("UPDATE approvals SET expires_at = now() - interval '1 second'")
            )
        bot: TestBot = await make_testbot(
            emulator=first.emulator,
            base_url=first.runtime.target.domain,
            settings=settings,
            incidents=True,
        )
        now, _ = on_duty(ROTATION)
        await bot.sweep()
        await wait_until(lambda: _status(bot, "escalated"), timeout=20, what="the escalation")
        note = await bot.expect_reply(contains="事件 #1 已升级")
        said = json.loads(note.content)["text"]
        assert f'<at user_id="{now}"></at>' in said
        assert "诊断审批超时" in said
        shown = await in_sight(bot)
        assert "尚无人认领" in shown  # nobody clicked anything: nobody owns it yet

        await bot.send("/ack 1", user=now)
        await bot.expect_reply(contains="已确认事件 #1")
        shown = await in_sight(bot)  # acknowledged, not over: still listed, with its owner
        assert f"<at id={now}></at> 已认领" in shown
        assert await bot.rows("SELECT count(*) FROM approvals WHERE status = 'pending'") == [(0,)]
    assert chat_leaks(bot.emulator, "oc_ops", {"WebDown", "web is down", "web", url}) == []


async def test_nobody_on_call_still_calls_on_the_approvers_and_says_so(
    make_testbot: Any, tmp_path: Path
) -> None:
    """The rotation covers a few hours a day that are not now: an escalation reaches the
    approvers, says nobody is on call, and the incident stays listed."""
    local = datetime.now(ZONE)
    hours = f"{(local + timedelta(hours=3)):%H}:00-{(local + timedelta(hours=4)):%H}:00"
    settings = day_settings(tmp_path)
    settings["oncall"]["schedules"]["primary"]["layers"][0]["hours"] = hours
    bot: TestBot = await make_testbot(emulator=team(), settings=settings, incidents=True)
    await bot.send("/oncall", user="ou_alice")
    shown = card_text((await bot.expect_reply(contains="当前值班")).card)
    assert "当前值班：无人" in shown
    async with health_service(tmp_path / "healthy-web") as url:
        card = await fire(bot, url)
        await card_with(bot, card, "http_check", APPROVE)
        await bot.send("/escalate 1", user="ou_bob")
        note = await bot.expect_reply(contains="已升级")
        said = json.loads(note.content)["text"]
        assert "当前无人值班" in said
        assert '<at user_id="ou_bob"></at>' in said
        assert '<at user_id="ou_carol"></at>' in said
        escalated = await card_with(bot, card, "当前无人值班，已通知审批人")
        assert APPROVE not in card_buttons(escalated.card)  # its gate closed with it
        await in_sight(bot)
        assert await bot.rows("SELECT status, escalation->>'nobody' FROM incidents") == [
            ("escalated", "true")
        ]
    assert chat_leaks(bot.emulator, "oc_ops", {"WebDown", "web is down", "web", url}) == []


async def test_a_shift_change_hands_over_the_escalated_incident_and_pages_the_new_shift(
    make_testbot: Any, tmp_path: Path
) -> None:
    """A shift began two minutes ago: the escalation calls on the new shift, the hand-over
    names the incident as escalated, and a later paging level reaches the new shift, not the
    one that went off."""
    changed = datetime.now(ZONE) - timedelta(minutes=2)
    layer = {
        "users": ["ou_dave", "ou_erin"],
        "shift": "24h",
        "handoff": changed.strftime("%H:%M"),
        "start": changed.date().isoformat(),
    }  # day 0 began two minutes ago: ou_dave's; ou_erin's shift ended then
    settings = day_settings(tmp_path, incidents={"storm_threshold": 100})
    settings["oncall"]["schedules"]["primary"]["layers"] = [layer]
    settings["escalation"]["policies"]["default"].append(
        {"after": "10m", "notify": ["oncall:primary"], "via": ["urgent_app"]}
    )
    bot: TestBot = await make_testbot(emulator=team(), settings=settings, incidents=True)
    async with health_service(tmp_path / "healthy-web") as url:
        card = await fire(bot, url)
        await card_with(bot, card, "http_check", APPROVE)
        await bot.send("/escalate 1", user="ou_bob")
        note = await bot.expect_reply(contains="已升级")
        assert '<at user_id="ou_dave"></at>' in json.loads(note.content)["text"]
        await bot.sweep()  # the hand-over is announced, with what it inherits
        told = await bot.expect_reply(contains="值班交接")
        said = json.loads(told.content)["text"]
        assert '<at user_id="ou_dave"></at> 接班' in said
        assert '上一班：<at user_id="ou_erin"></at>' in said
        assert "#1 WebDown（已升级）" in said
        await due_now(bot, 2)
        await bot.sweep()  # level 2: the card is urgent for whoever is on call now
        await wait_until(lambda: bot.emulator.paging.to("ou_dave"), what="the urgent call")
        assert bot.emulator.paging.to("ou_erin") == []
        await in_sight(bot)


async def test_paging_repeats_its_last_level_until_the_escalated_incident_is_acknowledged(
    make_testbot: Any, tmp_path: Path
) -> None:
    settings = day_settings(tmp_path)
    settings["escalation"]["repeat"] = 2
    settings["escalation"]["repeat_every"] = "5m"
    bot: TestBot = await make_testbot(emulator=team(), settings=settings, incidents=True)
    now, _ = on_duty(ROTATION)
    async with health_service(tmp_path / "healthy-web") as url:
        card = await fire(bot, url)
        await card_with(bot, card, "http_check", APPROVE)
        await bot.send("/escalate 1", user="ou_bob")  # nobody clicked: nobody owns it
        await bot.expect_reply(contains="已升级")
        await bot.sweep()  # level 1
        first = await bot.expect_reply(contains="尚未认领")
        assert f'<at user_id="{now}"></at>' in json.loads(first.content)["text"]
        await due_now(bot, 2)
        await bot.sweep()  # the first repeat of the last level: the same people again
        again = await bot.expect_reply(contains="尚未认领")
        assert f'<at user_id="{now}"></at>' in json.loads(again.content)["text"]
        paged = await shows(bot, card, "已升级", ACK)
        click = await bot.click(paged, ACK, user=now)
        assert click.toast is not None
        assert click.toast["type"] == "success"
        await due_now(bot, 3)
        await bot.sweep()  # the second repeat: acknowledged, so nobody
        await bot.expect_silence()
        assert await bot.rows("SELECT step, status FROM pages ORDER BY step") == [
            (1, "done"),
            (2, "done"),
            (3, "cancelled"),
        ]
        shown = await in_sight(bot, user=now)
        assert f"<at id={now}></at> 已认领" in shown
        await bot.send("/resolve 1", user="ou_carol")
        await bot.expect_reply(contains="已恢复")
        await bot.send("/oncall", user=now)
        shown = card_text((await bot.expect_reply(contains="当前值班")).card)
        assert "#1" not in shown  # resolved: off the list
