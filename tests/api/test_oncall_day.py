"""An on-call team's day, as measured from outside: the chat (through the emulator), the REST
API and the postmortem document.

An alert opens an incident; its diagnosis is approved by an approver (an operator's click is
refused and told why), the fix is approved by another, runs, and does not help: verification
fails and the incident is escalated to whoever the rotation has on call now. From then on the
escalated incident shows, as escalated, wherever an SRE looks (/incidents, /incident, /status,
/oncall, the shift hand-over, the REST API's list and detail) until someone resolves it; a war
room is made, it is resolved, and its postmortem is drafted. Every word the bot wrote into the
Chinese chat (and the document) is Chinese but for names, values and code."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.lark.events import card_text
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import ClientConfig, User
from bot.sandbox.record import Message
from tests.api.conftest import Api
from tests.lark.test_incidents import card_with, fire, settings_for
from tests.lark.testbot import TestBot, wait_until
from tests.support.health import health_service
from tests.support.language import chat_leaks, english

APPROVE = "批准"
ZONE = ZoneInfo("Asia/Shanghai")
ROTATION = ("ou_dave", "ou_erin")  # on call by turns; neither is an approver


def on_duty(people: tuple[str, ...], at: datetime | None = None) -> tuple[str, str]:
    """(on call at `at`, on call next) of a daily rotation handing off at 09:00 Shanghai from
    2024-01-01, counted by hand."""
    local = (at or datetime.now(UTC)).astimezone(ZONE)
    day = local.date() if local.hour >= 9 else local.date() - timedelta(days=1)
    index = (day - date(2024, 1, 1)).days
    return people[index % len(people)], people[(index + 1) % len(people)]


def team() -> LarkEmulator:
    """The tenant: an operator, two approvers and the two people of the rotation."""
    users = [
        User("ou_alice", "张三"),
        User("ou_bob", "李四"),
        User("ou_carol", "王五"),
        User("ou_dave", "赵六"),
        User("ou_erin", "钱七"),
    ]
    return LarkEmulator(
        users=users, client_config=ClientConfig(reconnect_interval=1, reconnect_nonce=0)
    )


def day_settings(state: Path, **extra: Any) -> dict[str, Any]:
    """The scenario tests' incident set-up (a web check, a fix needing approval) whose fix
    does not repair anything (it touches another file), a daily rotation of two people that
    is not the approvers, paging that mentions whoever is on call, postmortems on."""
    settings = settings_for(state)
    template = settings["plugins"]["settings"]["command"]["templates"]["restart_web"]
    template["argv"] = ["/usr/bin/touch", f"{state}/elsewhere-{{service}}"]
    settings["oncall"] = {
        "schedules": {
            "primary": {
                "layers": [{"users": list(ROTATION), "shift": "daily", "handoff": "09:00"}],
                "chat": "oc_ops",
            }
        }
    }
    settings["escalation"] = {
        "policies": {"default": [{"after": "0m", "notify": ["oncall:primary"], "via": ["chat"]}]}
    }
    settings["postmortems"] = {"enabled": True}
    return {**settings, **extra}


async def escalated(bot: TestBot, card: Message) -> Message:
    """Approve the diagnosis (after an operator's refused click) and the fix; the fix does not
    help: the incident escalates. The escalation message in the chat."""
    diagnosed = await card_with(bot, card, "http_check", APPROVE)
    refused = await bot.click(diagnosed, APPROVE, user="ou_alice")  # an operator, not approver
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    assert "审批人名单" in refused.toast["content"]  # why, in words
    accepted = await bot.click(diagnosed, APPROVE, user="ou_bob")
    assert accepted.toast is not None
    assert accepted.toast["type"] == "success"
    proposed = await card_with(bot, card, "restart_web", APPROVE)
    accepted = await bot.click(proposed, APPROVE, user="ou_carol")
    assert accepted.toast is not None
    assert accepted.toast["type"] == "success"
    return await bot.expect_reply(contains="已升级", timeout=30)


async def test_a_day_on_call_keeps_the_escalated_incident_in_sight(
    make_api: Any, tmp_path: Path
) -> None:
    async with health_service(tmp_path / "healthy-web") as url:
        api: Api = await make_api(emulator=team(), settings=day_settings(tmp_path), incidents=True)
        bot = api.bot
        now, after = on_duty(ROTATION)
        card = await fire(bot, url)
        note = await escalated(bot, card)
        # escalated to the rotation: whoever is on call now is called on, by name
        assert f'<at user_id="{now}"></at>' in json.loads(note.content)["text"]
        said = json.loads(note.content)["text"]
        assert "修复后验证未通过：`GET http://127.0.0.1:" in said  # the check's finding, worded
        assert "返回 503，预期 200" in said
        assert "expected 200" not in said
        shown = card_text((await card_with(bot, card, "已升级", f"<at id={now}></at>")).card)
        assert f"<at id={now}></at>" in shown
        assert (tmp_path / "elsewhere-web").exists()  # the fix ran, once
        assert not (tmp_path / "healthy-web").exists()

        # everywhere an SRE looks, it is there, and escalated
        await bot.send("/incidents", user="ou_alice")
        listed = card_text((await bot.expect_reply(contains="WebDown")).card)
        assert "#1" in listed
        assert "已升级" in listed
        await bot.send("/status", user="ou_alice")
        status = card_text((await bot.expect_reply(contains="事件")).card)
        assert "1 个已升级" in status
        await bot.send("/oncall", user="ou_alice")
        oncall = card_text((await bot.expect_reply(contains="当前值班")).card)
        assert f"当前值班：<at id={now}></at>" in oncall
        assert "#1" in oncall
        assert "已升级" in oncall
        alice = await api.as_user("ou_alice")
        active = (await alice.get("/incidents", params={"status": "active"})).json()
        assert [(i["id"], i["status"]) for i in active["incidents"]] == [(1, "escalated")]
        detail = (await alice.get("/incidents/1")).json()
        assert detail["incident"]["status"] == "escalated"
        [why] = [e for e in detail["timeline"] if e["kind"] == "workflow.escalated"]
        assert "修复后验证未通过" in why["words"]  # the console shows the chat's words
        assert why["label"] == "已升级"
        worded = [(e["label"], e["words"]) for e in detail["timeline"]]

        # the next shift is told what it inherits, escalated first and said so
        assert bot.runtime.desk is not None
        handoffs = bot.runtime.desk.handoffs
        ahead = await handoffs.roster.next("primary")
        assert ahead is not None
        assert await handoffs.sweep(now=ahead[0] + timedelta(minutes=1)) == 1
        told = await bot.expect_reply(contains="值班交接")
        assert f'<at user_id="{after}"></at> 接班' in json.loads(told.content)["text"]
        assert "#1 WebDown（已升级）" in told.text

        # a war room with the person on call; resolved by an approver; the postmortem drafted
        await bot.send("/warroom 1", user="ou_alice")
        await bot.expect_reply(contains="作战群")
        [room] = bot.emulator.paging.created
        assert now in set(bot.emulator.chats[room].members or ())
        await bot.send("/resolve 1 回滚了配置", user="ou_carol")
        # the confirmation, and the war room's outcome said here (sent as the card is drawn)
        await bot.expect_replies("标记为已恢复", "作战群可以解散了")
        await bot.send("/incidents", user="ou_alice")
        assert "#1" not in (await bot.expect_reply()).text  # over: no longer listed
        active = (await alice.get("/incidents", params={"status": "active"})).json()
        assert active["incidents"] == []
        await bot.send("/oncall", user="ou_alice")
        oncall = card_text((await bot.expect_reply(contains="当前值班")).card)
        assert "#1" not in oncall
        await bot.sweep()
        await wait_until(lambda: bool(bot.emulator.documents.docs), what="the postmortem")
        [document] = bot.emulator.documents.docs.values()
        text = document.text()
        assert "修复后验证未通过" in text

    values = {
        "WebDown",
        "web is down",
        "web",
        url,
        "回滚了配置",
        "/incidents",
        "/status",
        "/oncall",
        "/warroom 1",
        "/resolve 1 回滚了配置",
        str(tmp_path),
    }
    leaked = [(line, english(line, values)) for line in text.splitlines()]
    assert chat_leaks(bot.emulator, "oc_ops", values) == []
    shown = [(pair, english(" · ".join(pair), values)) for pair in worded]
    assert [(pair, bits) for pair, bits in shown if bits] == []
    assert [(line, bits) for line, bits in leaked if bits] == []
