"""A whole on-call day of a Chinese team through the emulator, as its people would live it: an
alert at night pages whoever is on call (a real member of the tenant, by mention), who takes it
from the card; the same alert repeats and folds in; the shift changes and the hand-over names
the open incident; someone covers the rotation by saying so in a Chinese sentence; the incident
is escalated after it was acknowledged and pages the next level; a war room is opened; other
incidents come and go, and /status and /incidents keep the escalated one first; it is
resolved with a Chinese note, the war room is told and later dissolved, the postmortem is
drafted in Chinese. Every word the bot wrote in any chat of the day is Chinese but for names
and values, and none is a developer's (codes, enum names, snake_case, ids where #n is due)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from bot.lark.events import card_text
from tests.api.test_oncall_day import ROTATION, on_duty, team
from tests.lark.test_oncall import ACK, shows
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.language import chat_leaks, developer_words, english
from workflows.intake import parse_generic

LEAD = "ou_carol"  # an approver, the policy's last level
DISK = {"alertname": "DiskFull", "service": "db", "host": "db-1"}


def day() -> dict[str, Any]:
    return {
        "approvers": ["ou_bob", LEAD],
        "incidents": {"storm_threshold": 100},
        "oncall": {
            "schedules": {
                "primary": {
                    "layers": [{"users": list(ROTATION), "shift": "daily", "handoff": "09:00"}],
                    "chat": "oc_ops",
                }
            }
        },
        "escalation": {
            "policies": {
                "default": [
                    {"after": "0m", "notify": ["oncall:primary"], "via": ["chat"]},
                    {"after": "5m", "notify": ["oncall:primary"], "via": ["urgent_app"]},
                    {"after": "15m", "notify": [LEAD], "via": ["urgent_app", "direct"]},
                ]
            },
            "war_room_days": 1,
        },
        "postmortems": {"enabled": True},
    }


async def alert(bot: TestBot, labels: dict[str, str], severity: str = "critical") -> None:
    assert bot.runtime.desk is not None
    body = {"title": labels["alertname"], "severity": severity, "labels": labels}
    await bot.runtime.desk.receive(parse_generic(body), "oc_ops")


def said(message: Any) -> str:
    return str(json.loads(message.content)["text"])


async def test_an_on_call_day_of_a_chinese_team(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(emulator=team(), settings=day(), incidents=True)
    assert bot.runtime.desk is not None
    oncall, after = on_duty(ROTATION)

    # 03:00: the disk fills; the on-call person is paged by mention, a real member
    await alert(bot, DISK)
    card = await bot.expect_reply(contains="DiskFull")
    await bot.sweep()
    page = await bot.expect_reply(contains="尚未认领")
    mentioned = re.findall(r'<at user_id="([^"]+)"></at>', said(page))
    assert mentioned == [oncall]
    assert all(person in bot.emulator.users for person in mentioned)
    assert "#1" in said(page)

    # they take it from the card
    paged = await shows(bot, card, ACK)
    click = await bot.click(paged, ACK, user=oncall)
    assert click.toast is not None
    assert click.toast["type"] == "success"
    assert ACK not in card_buttons(click.card)

    # the same alert again: it joins incident #1 (counted), no second incident, no new page
    await alert(bot, {**DISK, "value": "97%"})
    await shows(bot, card, "×2")
    assert await bot.rows("SELECT count(*) FROM incidents") == [(1,)]

    # the shift changes: the hand-over names the open incident
    handoffs = bot.runtime.desk.handoffs
    ahead = await handoffs.roster.next("primary")
    assert ahead is not None
    assert await handoffs.sweep(now=ahead[0] + timedelta(minutes=1)) == 1
    told = await bot.expect_reply(contains="值班交接")
    assert f'<at user_id="{after}"></at> 接班' in said(told)
    assert "#1 DiskFull" in said(told)

    # the on-call person has to leave: a colleague covers, said in a sentence
    await bot.send(f"/oncall 让@{_name(bot, after)} 替我值班3个小时", user=oncall)
    covered = await bot.expect_reply(contains="值班，至")
    assert f'<at user_id="{after}"></at>' in said(covered)
    await bot.send("/oncall", user=oncall)
    shown = card_text((await bot.expect_reply(contains="当前值班")).card)
    assert f"当前值班：<at id={after}></at>（临时替班）" in shown

    # it gets worse: the lead escalates it; acknowledged by someone now off call, it pages
    # whoever covers now, from the first level
    await bot.send("/escalate 1", user=LEAD)
    note = await bot.expect_reply(contains="事件 #1 已升级")
    assert f'<at user_id="{after}"></at>' in said(note)
    await wait_until(lambda: _repaged(bot), what="the escalation's paging")
    await bot.sweep()
    repage = await bot.expect_reply(contains="已升级，需要你处理")
    assert re.findall(r'<at user_id="([^"]+)"></at>', said(repage)) == [after]
    again = await shows(bot, card, "升级后重新通知")
    assert ACK in card_buttons(again.card)

    # a war room, with the people on call
    await bot.send("/warroom 1", user=LEAD)
    await bot.expect_reply(contains="作战群")
    [room] = bot.emulator.paging.created
    assert after in set(bot.emulator.chats[room].members or ())
    await bot.expect_reply(chat=room, contains="DiskFull")

    # meanwhile other incidents come and go; the escalated one stays first in sight
    for n in range(12):
        await alert(bot, {"alertname": f"Latency{n}", "service": f"api-{n}"}, "warning")
    await wait_until(lambda: _count(bot, 13), what="the other incidents")
    await bot.send("/incidents", user="ou_alice")
    listed = card_text((await bot.expect_reply(contains="未解决的事件")).card)
    first = re.search(r"#(\d+)", listed)
    assert first is not None
    assert first.group(1) == "1"
    assert "已升级" in listed
    await bot.send("/status", user="ou_alice")
    status = card_text((await bot.expect_reply(contains="1 个已升级")).card)
    assert "🚨 #1 DiskFull · 已升级，需要人工处理" in status

    # the lead takes it over and resolves it with a note in Chinese
    await bot.send("/ack 1", user=LEAD)
    await bot.expect_reply(contains="已确认事件 #1")
    await bot.send("/resolve 1 清理了旧的备份文件，磁盘恢复到 60%", user=LEAD)
    await bot.expect_replies("标记为已恢复", "作战群可以解散了")
    await bot.sweep()
    await wait_until(lambda: bool(bot.emulator.documents.docs), what="the postmortem")
    [document] = bot.emulator.documents.docs.values()
    written = document.text()
    assert "清理了旧的备份文件" in written

    # a day later the war room is dissolved
    async with bot.db.session() as session:
        await session.execute(text("UPDATE incidents SET resolved_at = now() - interval '2 days'"))
    await bot.sweep()
    await wait_until(lambda: room in bot.emulator.paging.dissolved, what="the room dissolved")

    values = {
        "DiskFull",
        "db",
        "db-1",
        "97%",
        *(f"Latency{n}" for n in range(12)),
        *(f"api-{n}" for n in range(12)),
        "/incidents",
        "/status",
        "/oncall",
        "/warroom 1",
        "primary",
        "清理了旧的备份文件，磁盘恢复到 60%",
    }
    chats = ["oc_ops", room, *(c for c in bot.emulator.chats if c.startswith("oc_p2p"))]
    for chat in chats:
        assert chat_leaks(bot.emulator, chat, values) == [], chat
        assert developer_words(bot.emulator, chat, values) == [], chat
    leaked = [(line, english(line, values)) for line in written.splitlines()]
    assert [(line, bits) for line, bits in leaked if bits] == []


def _name(bot: TestBot, open_id: str) -> str:
    return bot.emulator.users[open_id].name


async def _repaged(bot: TestBot) -> bool:
    return bool(await bot.rows("SELECT 1 FROM pages WHERE after_escalation"))


async def _count(bot: TestBot, wanted: int) -> bool:
    return await bot.rows("SELECT count(*) FROM incidents") == [(wanted,)]


async def test_a_second_alert_of_the_same_service_joins_the_incident(make_testbot: Any) -> None:
    """With `incidents.join_by_service`, another alert of the service that already has an
    open incident is counted on it (no second card, no second page) and shows in its
    timeline; the incident recovers only when both alerts have."""
    settings = day()
    settings["incidents"]["join_by_service"] = True
    bot: TestBot = await make_testbot(emulator=team(), settings=settings, incidents=True)
    await alert(bot, DISK)
    card = await bot.expect_reply(contains="DiskFull")
    await bot.sweep()
    await bot.expect_reply(contains="尚未认领")
    latency = {"alertname": "SlowQueries", "service": "db", "host": "db-1"}
    await alert(bot, latency)
    await shows(bot, card, "×2")
    await bot.sweep()
    await bot.expect_silence()  # nothing new to page about
    assert await bot.rows("SELECT count(*) FROM incidents") == [(1,)]
    assert await bot.rows("SELECT incident_id FROM alerts ORDER BY id") == [(1,), (1,)]
    await alert(bot, DISK)  # the disk repeats: still #1
    await shows(bot, card, "×3")

    assert bot.runtime.desk is not None
    resolved = {"title": "DiskFull", "severity": "critical", "labels": DISK, "status": "resolved"}
    await bot.runtime.desk.receive(parse_generic(resolved), "oc_ops")
    await bot.send("/incident 1")
    timeline = card_text((await bot.expect_reply(contains="时间线")).card)
    assert "同一服务的告警并入" in timeline
    # the slow queries still fire: not over yet
    assert await bot.rows("SELECT count(*) FROM incidents WHERE status = 'resolved'") == [(0,)]
    done = {"title": "SlowQueries", "severity": "critical", "labels": latency, "status": "resolved"}
    await bot.runtime.desk.receive(parse_generic(done), "oc_ops")
    await wait_until(lambda: _resolved(bot), what="the incident recovered with its last alert")
    await shows(bot, card, "已恢复")


async def _resolved(bot: TestBot) -> bool:
    return await bot.rows("SELECT status FROM incidents") == [("resolved",)]
