"""On-call through the emulator: the issue's configuration as written, paging through its
levels (durable timers fired by sweeps), Ack and /ack stopping it, refused urgent calls falling
to the next channel, /oncall, /warroom, and two replicas firing each step once.

Due times come from the database: a test moves a step's due time into the past instead of
waiting for it, then sweeps."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bot.lark.events import card_text
from bot.sandbox.record import Message
from tests.lark.testbot import TestBot, card_buttons, wait_until
from workflows.intake import parse_generic

LEAD = "ou_carol"  # the issue's `ou_lead`
ACK = "认领"


def contract(**extra: Any) -> dict[str, Any]:
    """The issue's "checked from outside" configuration (the lead is a tenant member here)."""
    return {
        "approvers": ["ou_carol"],
        "oncall": {
            "schedules": {
                "primary": {
                    "layers": [
                        {"users": ["ou_alice", "ou_bob"], "shift": "daily", "handoff": "09:00"}
                    ]
                }
            }
        },
        "escalation": {
            "policies": {
                "default": [
                    {"after": "0m", "notify": ["oncall:primary"], "via": ["chat"]},
                    {"after": "1m", "notify": ["oncall:primary"], "via": ["urgent_app"]},
                    {"after": "3m", "notify": [LEAD], "via": ["urgent_app", "direct"]},
                ]
            }
        },
        **extra,
    }


def on_call_now(later: timedelta = timedelta(0)) -> tuple[str, str]:
    """(on call now, on call next) of the contract's daily rotation, counted by hand: day 0
    (from 2024-01-01 09:00 Shanghai) is ou_alice's; `later`: as it will be that much later."""
    local = datetime.now(ZoneInfo("Asia/Shanghai")) + later
    day = local.date() if local.hour >= 9 else local.date() - timedelta(days=1)
    index = (day - date(2024, 1, 1)).days
    people = ("ou_alice", "ou_bob")
    return people[index % 2], people[(index + 1) % 2]


async def fire(bot: TestBot, title: str = "DiskFull", severity: str = "critical") -> Message:
    assert bot.runtime.desk is not None
    alerts = parse_generic(
        {"title": title, "severity": severity, "labels": {"alertname": title, "host": "db-1"}}
    )
    await bot.runtime.desk.receive(alerts, "oc_ops")
    return await bot.expect_reply(contains=title)


async def due_now(bot: TestBot, step: int) -> None:
    """Step `step` of every incident is due now (as if its wait had passed)."""
    async with bot.db.session() as session:
        from sqlalchemy import text

        await session.execute(
            text("UPDATE pages SET due_at = now() - interval '1 second' WHERE step = :s"),
            {"s": step},
        )


async def successors(first: TestBot, make_testbot: Any, settings: dict[str, Any]) -> list[TestBot]:
    """`first` stops (its replica is gone); two replicas with `settings` take over its chats
    and database."""
    await first.runtime.stop()
    base = first.runtime.target.domain
    return [
        await make_testbot(
            emulator=first.emulator, base_url=base, settings=settings, incidents=True
        )
        for _ in range(2)
    ]


def urgent_calls(bot: TestBot, kind: str = "urgent_app") -> list[Any]:
    return [c for c in bot.emulator.calls if c.method == "PATCH" and c.path.endswith(f"/{kind}")]


async def card_now(bot: TestBot, card: Message) -> Message:
    found = bot.emulator.store.get(card.message_id)
    assert found is not None
    return found


async def shows(bot: TestBot, card: Message, *needles: str) -> Message:
    def ready(message: Message) -> bool:
        shown = card_text(message.card) + " ".join(card_buttons(message.card))
        return message.message_id == card.message_id and all(n in shown for n in needles)

    return await bot.emulator.wait_for_bot_message("oc_ops", ready, 10)


async def kinds(bot: TestBot) -> list[str]:
    return [r[0] for r in await bot.rows("SELECT kind FROM incident_events ORDER BY id")]


async def test_paging_climbs_the_levels_until_the_ack_button(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    oncall, _ = on_call_now()
    card = await fire(bot)

    await bot.sweep()  # level 1 (after 0m): the on-call person is mentioned in the chat
    first = await bot.expect_reply(contains="尚未认领")
    assert f'<at user_id="{oncall}"></at>' in json.loads(first.content)["text"]
    assert urgent_calls(bot) == []

    await bot.sweep()  # a minute has not passed: nothing more
    assert urgent_calls(bot) == []
    await due_now(bot, 2)
    await bot.sweep()  # level 2: an urgent_app call for the on-call person on the card
    [call] = urgent_calls(bot)
    assert call.path == f"/open-apis/im/v1/messages/{card.message_id}/urgent_app"
    assert call.query == {"user_id_type": "open_id"}
    assert call.body == {"user_id_list": [oncall]}
    assert [u.open_ids for u in bot.emulator.paging.urgents] == [(oncall,)]
    paged = await shows(bot, card, "应用内加急", ACK)
    async with httpx.AsyncClient(base_url=bot.runtime.target.domain) as web:  # the web chat
        shown = (await web.get("/sandbox/api/chats/oc_ops/messages")).json()["messages"]
    [marked] = [m for m in shown if m["urgent"]]
    assert marked["message_id"] == card.message_id
    assert marked["urgent"] == [{"kind": "urgent_app", "open_ids": [oncall]}]

    click = await bot.click(paged, ACK, user="ou_bob")
    assert click.toast is not None
    assert click.toast["type"] == "success"
    assert ACK not in card_buttons(click.card)
    await due_now(bot, 3)
    await bot.sweep()  # level 3 would page the lead: acknowledged, so nobody
    assert len(urgent_calls(bot)) == 1
    assert bot.emulator.paging.to(LEAD) == []
    assert await bot.rows("SELECT step, status FROM pages ORDER BY step") == [
        (1, "done"),
        (2, "done"),
        (3, "cancelled"),
    ]
    assert await bot.rows("SELECT acknowledged_by FROM incidents") == [("ou_bob",)]
    seen = await kinds(bot)
    assert seen.count("page.sent") == 2
    assert "page.stopped" in seen
    assert "incident.acknowledged" in seen
    acked = await shows(bot, card, "已认领")
    assert ACK not in card_buttons(acked.card)
    await bot.send("/incident 1")
    timeline = card_text((await bot.expect_reply(contains="时间线")).card)
    assert f"值班通知 · 系统：第 2 级：应用内加急 → {oncall}" in timeline
    assert "停止升级" in timeline


async def test_a_refused_urgent_call_falls_to_the_next_channel_and_ack_stops(
    make_testbot: Any,
) -> None:
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    bot.emulator.paging.quota["urgent_app"] = 0  # the tenant's urgent quota is used up
    card = await fire(bot)
    await due_now(bot, 3)
    await bot.sweep()  # levels 1 and 3 are due: level 3 tries urgent_app, then a direct message
    direct = await bot.expect_reply(chat="oc_p2p_carol", contains="请处理事件 #")
    assert "/ack" in direct.text
    assert bot.emulator.paging.urgents == []
    refused = await shows(bot, card, "应用内加急未送达（加急额度已用完）", "私聊")
    assert "→ <at id=ou_carol></at>" in card_text(refused.card)
    [(outcome,)] = await bot.rows("SELECT outcome FROM pages WHERE step = 3")
    assert outcome["channel"] == "direct"
    assert outcome["refused"] == [{"channel": "urgent_app", "reason": "quota"}]

    await bot.send("/ack 1", user="ou_alice")
    await bot.expect_reply(contains="已确认事件 #1")
    await due_now(bot, 2)
    await bot.sweep()
    assert await bot.rows("SELECT step, status FROM pages ORDER BY step") == [
        (1, "done"),
        (2, "cancelled"),
        (3, "done"),
    ]
    assert [c.code for c in urgent_calls(bot)] == [230024]  # the refused one, nothing since


async def test_oncall_names_who_and_the_next_handoff(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    now, after = on_call_now()
    await bot.send("/oncall")
    reply = await bot.expect_reply(contains="当前值班")
    shown = card_text(reply.card)
    assert f"当前值班：<at id={now}></at>" in shown
    assert f"09:00，由 <at id={after}></at> 接班" in shown

    await bot.send("/oncall override ou_carol 2h", user="ou_alice")
    await bot.expect_reply(contains="值班，至")
    await bot.send("/oncall primary")
    shown = card_text((await bot.expect_reply(contains="当前值班")).card)
    assert "当前值班：<at id=ou_carol></at>（临时替班）" in shown
    # the rotation resumes when it ends, with whoever it has on call by then (from 07:00 to
    # 09:00 Shanghai time the override spans the 09:00 hand-over)
    resumed, _ = on_call_now(later=timedelta(hours=2))
    assert f"由 <at id={resumed}></at> 接班" in shown


async def test_warroom_makes_a_group_with_the_card(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    oncall, _ = on_call_now()
    card = await fire(bot)
    await bot.send("/warroom 1", user="ou_alice")
    await bot.expect_reply(contains="作战群")
    [create] = [c for c in bot.emulator.calls if c.path == "/open-apis/im/v1/chats"]
    assert create.method == "POST"
    [room] = bot.emulator.paging.created
    members = set(bot.emulator.chats[room].members or ())
    assert {oncall, "ou_carol", "ou_alice"} <= members  # on call, approver, presser
    posted = await bot.expect_reply(chat=room, contains="DiskFull")
    assert posted.msg_type == "interactive"
    # the alert repeats: the war room's card follows the alert chat's with the new count
    assert bot.runtime.desk is not None
    repeat = {"title": "DiskFull", "severity": "critical"}
    await bot.runtime.desk.receive(
        parse_generic({**repeat, "labels": {"alertname": "DiskFull", "host": "db-1"}}), "oc_ops"
    )
    await shows(bot, card, "×2")
    await bot.emulator.wait_for_bot_message(
        room, lambda m: m.message_id == posted.message_id and "×2" in card_text(m.card), 10
    )
    await bot.send("/warroom 1", user="ou_bob")
    await bot.expect_reply(contains="已有作战群")
    assert len(bot.emulator.paging.created) == 1

    # the card is the same in both chats: Ack in the war room shows in the alert chat too
    await bot.sweep()
    in_room = await bot.emulator.wait_for_bot_message(
        room, lambda m: ACK in card_buttons(m.card), 10
    )
    click = await bot.click(in_room, ACK, user=oncall)
    assert click.toast is not None
    assert click.toast["type"] == "success"
    await shows(bot, card, "已认领")
    # resolved: a summary goes back to the alert chat, once
    await bot.send("/resolve 1 disk cleaned", user="ou_carol")
    summary = await bot.expect_reply(contains="已恢复，历时约")
    assert f'<at user_id="{oncall}"></at>' in json.loads(summary.content)["text"]
    await bot.send("/incident 1")
    await bot.expect_reply(contains="创建作战群")
    assert await bot.rows("SELECT count(*) FROM war_rooms WHERE summary_message_id <> ''") == [(1,)]


async def test_steps_survive_a_restart_and_two_replicas_fire_each_once(
    make_testbot: Any,
) -> None:
    first: TestBot = await make_testbot(settings=contract(), incidents=True)
    await fire(first)
    await first.sweep()
    replicas = await successors(first, make_testbot, contract())  # the planner is gone
    await due_now(first, 2)
    await due_now(first, 3)
    await asyncio.gather(*(r.sweep() for r in replicas), *(r.sweep() for r in replicas))
    await wait_until(lambda: _all_fired(first), timeout=10, what="every step fired")
    assert len(urgent_calls(first)) == 2  # level 2 and level 3, once each
    assert await first.rows("SELECT step, status, attempts FROM pages ORDER BY step") == [
        (1, "done", 1),
        (2, "done", 1),
        (3, "done", 1),
    ]


async def _all_fired(bot: TestBot) -> bool:
    return await bot.rows("SELECT count(*) FROM pages WHERE status = 'done'") == [(3,)]


async def test_without_escalation_nothing_is_paged(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"approvers": ["ou_carol"]}, incidents=True)
    card = await fire(bot)
    await bot.sweep()
    assert await bot.rows("SELECT count(*) FROM pages") == [(0,)]
    assert ACK not in card_buttons((await card_now(bot, card)).card)
    assert datetime.now(UTC)  # the card is as before issue 18


async def test_a_shift_change_is_announced_once_with_the_open_incidents(make_testbot: Any) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    changed = datetime.now(zone) - timedelta(minutes=2)  # a shift began two minutes ago
    layer = {
        "users": ["ou_alice", "ou_bob"],
        "shift": "24h",
        "handoff": changed.strftime("%H:%M"),
        "start": changed.date().isoformat(),
    }
    settings = contract()
    settings["oncall"]["schedules"]["primary"] = {"layers": [layer], "chat": "oc_ops"}
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    await fire(bot, "DiskFull")
    await bot.sweep()
    said = await bot.expect_reply(contains="值班交接")
    text = json.loads(said.content)["text"]
    assert '（primary）：<at user_id="ou_alice"></at> 接班' in text
    assert '上一班：<at user_id="ou_bob"></at>' in text
    assert "#1 DiskFull" in text
    await bot.sweep()
    await bot.sweep()
    assert await bot.rows("SELECT schedule, people FROM oncall_handoffs") == [
        ("primary", ["ou_alice"])
    ]


async def test_a_swap_needs_the_other_persons_confirmation(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    now, after = on_call_now()
    await bot.send(f"/oncall swap {now}", user=after)  # not on call: nothing to offer
    await bot.expect_reply(contains="你现在没有在 primary 值班")
    await bot.send(f"/oncall swap {after}", user=now)
    asked = await bot.expect_reply(contains="想和")
    assert {"同意换班", "不同意"} <= set(card_buttons(asked.card))

    refused = await bot.click(asked, "同意换班", user="ou_carol")  # not the person asked
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    assert await bot.rows("SELECT count(*) FROM oncall_overrides") == [(0,)]

    accepted = await bot.click(asked, "同意换班", user=after)
    assert accepted.toast is not None
    assert accepted.toast["type"] == "success"
    assert "同意换班" not in card_buttons(accepted.card)
    rows = await bot.rows("SELECT user_id FROM oncall_overrides ORDER BY starts_at")
    assert [r[0] for r in rows] == [after, now]  # they cover my shift, I cover their next
    await bot.send("/oncall")
    shown = card_text((await bot.expect_reply(contains="当前值班")).card)
    assert f"当前值班：<at id={after}></at>（临时替班）" in shown


async def test_a_layer_can_rotate_through_a_department(make_testbot: Any) -> None:
    from bot.sandbox.emulator import LarkEmulator
    from bot.sandbox.model import ClientConfig, User

    emulator = LarkEmulator(
        users=[
            User("ou_alice", "张三", departments=("od-sre",)),
            User("ou_bob", "李四", departments=("od-sre",)),
            User("ou_carol", "王五"),
        ],
        client_config=ClientConfig(reconnect_interval=1, reconnect_nonce=0),
    )
    settings = contract()
    settings["oncall"]["schedules"]["primary"]["layers"][0]["users"] = ["dept:od-sre"]
    bot: TestBot = await make_testbot(emulator=emulator, settings=settings, incidents=True)
    now, after = on_call_now()  # the department's members in open_id order: alice, bob
    await bot.send("/oncall")
    shown = card_text((await bot.expect_reply(contains="当前值班")).card)
    assert f"当前值班：<at id={now}></at>" in shown
    assert f"由 <at id={after}></at> 接班" in shown


async def test_paging_fires_on_its_own_without_anyone_in_the_chat(make_testbot: Any) -> None:
    from bot.timers import Timers

    settings = contract()
    settings["escalation"]["policies"]["default"] = [
        {"after": "0s", "notify": ["oncall:primary"], "via": ["urgent_app"]}
    ]
    timers = Timers(sweep_every=None, backlog_every=None, reclaim_after=0.0, page_every=0.05)
    bot: TestBot = await make_testbot(settings=settings, incidents=True, timers=timers)
    oncall, _ = on_call_now()
    await fire(bot)  # nobody sweeps, types or clicks from here on
    await wait_until(lambda: bot.emulator.paging.to(oncall), timeout=10, what="the urgent call")


async def test_an_ack_on_one_replica_stops_the_next_level_on_the_other(
    make_testbot: Any,
) -> None:
    one: TestBot = await make_testbot(settings=contract(), incidents=True)
    other: TestBot = await make_testbot(
        emulator=one.emulator,
        base_url=one.runtime.target.domain,
        settings=contract(),
        incidents=True,
    )
    await fire(one)
    await one.sweep()
    assert other.runtime.desk is not None
    await other.runtime.desk.acknowledge(1, "ou_bob")  # on the other replica
    await due_now(one, 2)
    await due_now(one, 3)
    await one.sweep()
    assert urgent_calls(one) == []
    assert await one.rows("SELECT step, status FROM pages ORDER BY step") == [
        (1, "done"),
        (2, "cancelled"),
        (3, "cancelled"),
    ]


async def test_the_card_button_and_the_severity_open_war_rooms(make_testbot: Any) -> None:
    settings = contract()
    settings["escalation"]["war_room_at"] = "critical"
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    await fire(bot, "DiskFull", "critical")  # critical: a war room at once
    await wait_until(lambda: bot.emulator.paging.pins, timeout=10, what="the pinned card")
    [room] = bot.emulator.paging.created
    assert bot.emulator.store.get(bot.emulator.paging.pins[0]).chat_id == room  # type: ignore[union-attr]

    card = await fire(bot, "CacheSlow", "warning")  # below: a war room on request
    await bot.sweep()
    shown = await shows(bot, card, "建群")
    click = await bot.click(shown, "建群", user="ou_bob")
    assert click.toast is not None
    assert click.toast["type"] == "success"
    assert len(bot.emulator.paging.created) == 2
    assert "建群" not in card_buttons(click.card)
    assert await bot.rows("SELECT count(*) FROM war_rooms WHERE chat_id IS NOT NULL") == [(2,)]


async def test_only_operators_change_the_schedule(make_testbot: Any) -> None:
    settings = contract(roles={"default": "viewer", "global": {"operator": ["ou_alice"]}})
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    await bot.send("/oncall override ou_carol 2h", user="ou_bob")  # a viewer
    await bot.expect_reply(contains="没有执行此操作的权限")
    await bot.send("/oncall", user="ou_bob")  # looking is allowed
    await bot.expect_reply(contains="当前值班")
    assert await bot.rows("SELECT count(*) FROM oncall_overrides") == [(0,)]


async def test_approvals_in_the_war_room_resume_the_incident(
    make_testbot: Any, tmp_path: Any
) -> None:
    from tests.lark.test_incidents import card_with, settings_for
    from tests.lark.test_incidents import fire as fire_web
    from tests.support.health import health_service

    async with health_service(tmp_path / "healthy-web") as url:
        settings = settings_for(
            tmp_path, **{k: v for k, v in contract().items() if k != "approvers"}
        )
        bot: TestBot = await make_testbot(settings=settings, incidents=True)
        card = await fire_web(bot, url)
        await card_with(bot, card, "批准")  # the diagnosis gate
        await bot.send("/warroom 1", user="ou_alice")
        await bot.expect_reply(contains="作战群")
        [room] = bot.emulator.paging.created
        in_room = await bot.emulator.wait_for_bot_message(
            room, lambda m: "批准" in card_buttons(m.card), 10
        )
        click = await bot.click(in_room, "批准", user="ou_bob")  # an approver, in the war room
        assert click.toast is not None
        assert click.toast["type"] == "success"
        await card_with(bot, card, "restart_web", "批准")  # the alert chat's card moved on
        await bot.emulator.wait_for_bot_message(  # and the war room's with it
            room, lambda m: "restart_web" in card_text(m.card), 15
        )


async def test_a_war_room_is_dissolved_days_after_its_incident_was_resolved(
    make_testbot: Any,
) -> None:
    settings = contract()
    settings["escalation"]["war_room_days"] = 3
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    await fire(bot)
    await bot.send("/warroom 1", user="ou_alice")
    await bot.expect_reply(contains="作战群")
    [room] = bot.emulator.paging.created
    await bot.send("/resolve 1", user="ou_carol")
    await bot.expect_reply(contains="已恢复")
    await bot.sweep()
    assert bot.emulator.paging.dissolved == []  # resolved just now: kept
    async with bot.db.session() as session:
        from sqlalchemy import text

        await session.execute(text("UPDATE incidents SET resolved_at = now() - interval '4 days'"))
    await bot.sweep()
    await bot.sweep()
    assert bot.emulator.paging.dissolved == [room]  # once
    assert room not in bot.emulator.chats


async def test_an_alert_title_calls_nobody_in_the_page_messages(make_testbot: Any) -> None:
    """A page is a text message, where `<at user_id=…>` notifies: an alert whose title carries
    mentions (everyone, someone on the team) pages the on-call person in the chat and the lead
    directly, and nobody else; the title reads as written, its tags inert."""
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    bot.emulator.paging.quota["urgent_app"] = 0  # level 3 falls to a direct message
    title = '<at user_id="all"></at>DiskFull <at user_id="ou_bob">bob</at></at><b>x'
    oncall, _ = on_call_now()
    assert bot.runtime.desk is not None
    alerts = parse_generic({"title": title, "severity": "critical", "labels": {"host": "db-1"}})
    await bot.runtime.desk.receive(alerts, "oc_ops")
    await bot.expect_reply()  # the incident's card
    await due_now(bot, 3)
    await bot.sweep()

    pages = [
        await bot.expect_reply(contains="尚未认领"),
        await bot.expect_reply(chat="oc_p2p_carol", contains="请处理事件 #1"),
    ]
    assert [m.notified for m in pages] == [[oncall], []]
    for page in pages:
        assert '＜at user_id="all">＜/at>DiskFull ＜at user_id="ou_bob">bob' in page.text
