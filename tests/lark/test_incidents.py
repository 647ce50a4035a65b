"""An alert's whole life through the emulator: the real graph, plugins, policy and Postgres.

The remediation really acts: an allow-listed `touch` creates a file, and the local health
endpoint the alert points at is healthy exactly when that file exists; verification checks it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.lark.events import card_text
from bot.sandbox.record import Message
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.health import health_service
from workflows.intake import parse_generic

APPROVE, REJECT = "批准", "拒绝"


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """http://127.0.0.1:PORT/health: 200 when `tmp_path/healthy-web` exists, else 503."""
    async with health_service(tmp_path / "healthy-web") as url:
        yield url, tmp_path


def settings_for(state_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "approvers": ["ou_bob", "ou_carol"],
        "plugins": {
            "settings": {
                "command": {
                    "templates": {
                        "restart_web": {
                            "argv": ["/usr/bin/touch", f"{state_dir}/healthy-{{service}}"],
                            "params": {"service": "^[a-z]{1,20}$"},
                            "risk": "medium",
                            "timeout": 10,
                            "title_zh": "重启 Web 服务",
                            "title_en": "Restart the web service",
                        }
                    }
                }
            }
        },
        "runbooks": [
            {
                "name": "web-down",
                "match": {"alertname": "WebDown"},
                "diagnose": [
                    {
                        "plugin": "http_check",
                        "params": {"url": "{annotations.url}"},
                        "title_zh": "检查健康接口",
                        "title_en": "Check the health endpoint",
                    }
                ],
                "propose": {
                    "plugin": "command",
                    "params": {"template": "restart_web", "args": {"service": "{labels.service}"}},
                    "title_zh": "重启 Web 服务",
                    "title_en": "Restart the web service",
                },
                "verify": {"plugin": "http_check", "params": {"url": "{annotations.url}"}},
            }
        ],
        **extra,
    }


async def fire(bot: TestBot, url: str, title: str = "WebDown") -> Message:
    assert bot.runtime.desk is not None
    alerts = parse_generic(
        {
            "title": title,
            "severity": "critical",
            "labels": {"alertname": title, "service": "web"},
            "annotations": {"url": url, "summary": "web is down"},
        }
    )
    await bot.runtime.desk.receive(alerts, "oc_ops")
    return await bot.expect_reply(contains=title)


async def card_with(bot: TestBot, card: Message, *needles: str, timeout: float = 15) -> Message:
    """The incident card once it shows all `needles` (it is patched as the run goes)."""

    def ready(message: Message) -> bool:
        shown = card_text(message.card) + " ".join(card_buttons(message.card))
        return message.message_id == card.message_id and all(n in shown for n in needles)

    return await bot.emulator.wait_for_bot_message("oc_ops", ready, timeout)


async def status(bot: TestBot) -> list[tuple[str, str | None]]:
    return [tuple(r) for r in await bot.rows("SELECT status, escalation_reason FROM incidents")]


async def test_alert_to_verified_fix(make_testbot: Any, health: tuple[str, Path]) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, "http_check", APPROVE)
    shown = card_text(diagnosed.card)
    assert "处置手册 `web-down`：1 项检查中 1 项失败" in shown  # the rules' findings in words
    assert "检查健康接口失败" in shown
    assert "checks failed" not in shown
    click = await bot.click(diagnosed, APPROVE, user="ou_bob")
    assert click.toast is not None
    assert click.toast["type"] == "success"

    proposed = await card_with(bot, card, "restart_web", APPROVE)
    shown = card_text(proposed.card)
    assert f"/usr/bin/touch {state}/healthy-web" in shown  # the exact argv, not a JSON
    assert "重启 Web 服务" in shown  # the runbook's title in the chat's language
    assert "matched on" not in shown
    assert '"template"' not in shown
    assert not (state / "healthy-web").exists()
    click = await bot.click(proposed, APPROVE, user="ou_carol")
    assert click.toast is not None
    assert click.toast["type"] == "success"

    await wait_until(lambda: _is(bot, "resolved"), timeout=20, what="resolution")
    assert (state / "healthy-web").exists()  # the fix really ran, once
    assert await bot.rows("SELECT plugin, status FROM executions WHERE step = 'execute'") == [
        ("command", "succeeded")
    ]
    kinds = [r[0] for r in await bot.rows("SELECT kind FROM incident_events ORDER BY id")]
    for expected in (
        "incident.opened",
        "workflow.diagnosed",
        "click.accepted",
        "policy.decided",
        "workflow.executed",
        "workflow.verified",
        "workflow.resolved",
    ):
        assert expected in kinds


async def _is(bot: TestBot, wanted: str) -> bool:
    return [r[0] for r in await status(bot)] == [wanted]


async def test_refused_clicks_change_nothing(make_testbot: Any, health: tuple[str, Path]) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, APPROVE)
    value = card_buttons(diagnosed.card)[APPROVE]

    outsider = await bot.click(diagnosed, APPROVE, user="ou_alice")  # not an approver
    assert outsider.toast is not None
    assert "审批人名单" in outsider.toast["content"]
    forged = await bot.click(diagnosed, APPROVE, value={**value, "gate": "proposal"})
    assert forged.toast is not None
    assert forged.toast["type"] == "error"
    assert await _is(bot, "awaiting_approval")

    # two approvers at the same instant: exactly one decides
    first, second = await asyncio.gather(
        bot.click(diagnosed, APPROVE, user="ou_bob"), bot.click(diagnosed, APPROVE, user="ou_carol")
    )
    toasts = sorted([first.toast["type"], second.toast["type"]])  # type: ignore[index]
    assert toasts == ["error", "success"]
    # the same click again, later: stale
    again = await bot.click(diagnosed, APPROVE, user="ou_bob", value=value)
    assert again.toast is not None
    assert again.toast["type"] == "error"
    refused = await bot.rows("SELECT count(*) FROM incident_events WHERE kind = 'click.refused'")
    assert refused == [(4,)]


async def test_reject_escalates_and_mentions_on_call(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, REJECT)
    click = await bot.click(diagnosed, REJECT, user="ou_carol")
    assert click.toast is not None
    assert click.toast["type"] == "success"
    note = await bot.expect_reply(contains="已升级")
    said = json.loads(note.content)["text"]
    assert '<at user_id="ou_bob"></at>' in said
    assert '<at user_id="ou_carol"></at> 拒绝了诊断' in said  # the cause in words, not English
    escalated = await card_with(bot, card, "原因：")
    shown = card_text(escalated.card)
    assert "拒绝了诊断" in shown
    assert "rejected" not in shown
    assert await status(bot) == [("escalated", "diagnosis rejected by ou_carol")]
    assert not (state / "healthy-web").exists()


async def test_resolved_alert_ends_a_paused_run(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url)
    await card_with(bot, card, APPROVE)
    assert bot.runtime.desk is not None
    resolved = parse_generic(
        {
            "title": "WebDown",
            "status": "resolved",
            "labels": {"alertname": "WebDown", "service": "web"},
            "annotations": {"url": url, "summary": "web is down"},
        }
    )
    await bot.runtime.desk.receive(resolved, "oc_ops")
    await wait_until(lambda: _is(bot, "resolved"), what="resolution by the alert")
    final = await card_with(bot, card, "已恢复")
    assert APPROVE not in card_buttons(final.card)
    assert await bot.rows("SELECT count(*) FROM executions WHERE step = 'execute'") == [(0,)]


async def test_incident_commands(make_testbot: Any, health: tuple[str, Path]) -> None:
    url, state = health
    bot: TestBot = await make_testbot(
        settings=settings_for(state, admins=["ou_alice"]), incidents=True
    )
    card = await fire(bot, url)
    await card_with(bot, card, APPROVE)
    incident_id = (await bot.rows("SELECT id FROM incidents"))[0][0]
    await bot.send("/incidents")
    listed = await bot.expect_reply(contains="WebDown")
    assert listed.card is not None
    await bot.send(f"/incident {incident_id}")
    timeline = await bot.expect_reply()
    shown = card_text(timeline.card)
    assert "事件创建 · 系统" in shown  # audit kinds and actors in words, not codes
    assert "incident.opened" not in shown
    again = await bot.expect_reply()  # its gate is pending: the card with its buttons again
    assert APPROVE in card_buttons(again.card)
    await bot.send(f"/ack {incident_id}")
    assert f"#{incident_id}" in (await bot.expect_reply()).text
    await bot.send("/silence alertname=WebDown 2h 维护")
    assert "已静默" in (await bot.expect_reply()).text
    await bot.send("/silences")
    assert "WebDown" in card_text((await bot.expect_reply()).card)
    await bot.send(f"/resolve {incident_id} 手动恢复")
    assert f"#{incident_id}" in (await bot.expect_reply(contains="已恢复")).text
    assert await status(bot) == [("resolved", None)]
    await bot.send("/incident 99999")
    assert "找不到" in (await bot.expect_reply()).text
    await bot.send("/resolve abc")
    assert "用法" in (await bot.expect_reply()).text


async def test_storm_is_grouped_and_diagnosed_on_request(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    settings = settings_for(state, incidents={"storm_threshold": 2})
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    assert bot.runtime.desk is not None
    batch = [
        a
        for n in range(5)
        for a in parse_generic(
            {
                "title": f"Disk{n}",
                "labels": {"alertname": f"Disk{n}", "host": f"db-{n}"},
                "annotations": {"url": url},  # the default runbook knows it: a gate follows
            }
        )
    ]
    await bot.runtime.desk.receive(batch, "oc_ops")
    storm = await bot.expect_reply(contains="Disk4", timeout=15)
    shown = card_text(storm.card)
    assert all(f"Disk{n}" in shown for n in (2, 3, 4))
    cards = [m for m in bot.emulator.transcript("oc_ops") if m.sender_type == "bot"]
    assert len(cards) == 3  # two incident cards, then one storm card for the rest
    stormed = [r[0] for r in await bot.rows("SELECT id FROM incidents WHERE storm ORDER BY id")]
    assert len(stormed) == 3

    # an approver starts one; they asked for it, so they may not approve it themselves
    await bot.send(f"/diagnose {stormed[0]}", user="ou_bob")
    # the answer and the run's first card race each other; either may come first
    await wait_until(
        lambda: any(
            f"#{stormed[0]}" in m.text and "诊断" in m.text
            for m in bot.emulator.transcript("oc_ops")
        ),
        what="the /diagnose answer",
    )
    card = await bot.expect_reply(contains="Disk2", timeout=15)
    gated = await card_with(bot, card, APPROVE)
    own = await bot.click(gated, APPROVE, user="ou_bob")
    assert own.toast is not None
    assert "自己发起" in own.toast["content"]
    other = await bot.click(gated, APPROVE, user="ou_carol")
    assert other.toast is not None
    assert other.toast["type"] == "success"


async def test_per_chat_approvers(make_testbot: Any, health: tuple[str, Path]) -> None:
    url, state = health
    settings = settings_for(state, incidents={"approvers_by_chat": {"oc_ops": ["ou_alice"]}})
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    card = await fire(bot, url)
    gated = await card_with(bot, card, APPROVE)
    click = await bot.click(gated, APPROVE, user="ou_alice")  # approver for this chat only
    assert click.toast is not None
    assert click.toast["type"] == "success"


async def test_unanswered_gate_expires_and_escalates(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    from datetime import timedelta

    from workflows.incident_graph import GatePolicy

    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    assert bot.runtime.desk is not None
    deps = bot.runtime.desk.runs.deps
    # the gate is due the moment it opens; the test's sweep (not a timer) expires it
    deps.gates = GatePolicy(ttl=timedelta(0), approvers=deps.gates.approvers)
    card = await fire(bot, url)
    gated = await card_with(bot, card, APPROVE)
    value = card_buttons(gated.card)[APPROVE]
    await bot.sweep()
    note = await bot.expect_reply(contains="已升级")
    assert "诊断审批超时" in json.loads(note.content)["text"]  # the cause in words
    late = await bot.click(gated, APPROVE, user="ou_bob", value=value)
    assert late.toast is not None
    assert late.toast["type"] == "error"
    assert await status(bot) == [("escalated", "diagnosis approval timed out")]
    final = await card_with(bot, card, "已升级")
    assert APPROVE not in card_buttons(final.card)


async def test_policy_names_who_approves_the_fix(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    """The fix's gate takes its approvers from the policy's list for its risk, not the chat's."""
    url, state = health
    policy = {"approver_lists": {"leads": ["ou_carol"]}, "approvers_by_risk": {"medium": "leads"}}
    bot: TestBot = await make_testbot(settings=settings_for(state, policy=policy), incidents=True)
    card = await fire(bot, url)
    diagnosed = await card_with(bot, card, "http_check", APPROVE)
    await bot.click(diagnosed, APPROVE, user="ou_bob")  # the diagnosis gate: usual approvers
    proposed = await card_with(bot, card, "restart_web", APPROVE)
    assert "leads" in card_text(proposed.card)  # the reason names the list
    value = card_buttons(proposed.card)[APPROVE]
    refused = await bot.click(proposed, APPROVE, user="ou_bob", value=value)
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    assert not (state / "healthy-web").exists()
    accepted = await bot.click(proposed, APPROVE, user="ou_carol", value=value)
    assert accepted.toast is not None
    assert accepted.toast["type"] == "success"
    await wait_until(lambda: _is(bot, "resolved"), timeout=20, what="resolution")
    targets = await bot.rows("SELECT target, auto FROM executions WHERE step = 'execute'")
    assert targets == [("command:restart_web:service=web", False)]


async def test_a_resolved_incident_is_remembered_and_recalled(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    """Fix an incident; the next one like it shows "seen before … fixed by"; notes are kept."""
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url)
    await bot.click(await card_with(bot, card, "http_check", APPROVE), APPROVE, user="ou_bob")
    await bot.click(await card_with(bot, card, "restart_web", APPROVE), APPROVE, user="ou_carol")
    await wait_until(lambda: _is(bot, "resolved"), timeout=20, what="resolution")
    await wait_until(
        lambda: _knowledge(bot, 1), timeout=10, what="the resolved incident to be remembered"
    )
    (state / "healthy-web").unlink()  # down again, a day later
    await bot.send("/note 1 重启后要检查连接池是否恢复", user="ou_bob")
    await bot.expect_reply("已为事件 #1 记下经验")
    second = await fire(bot, url, title="WebDown")
    shown = card_text((await card_with(bot, second, "以前见过")).card)
    assert "#1" in shown
    assert "restart_web" in shown
    await bot.send("/similar 2")
    listed = card_text((await bot.expect_reply("与事件 #2 相似")).card)
    assert "#1" in listed
    assert "连接池" in listed  # the operator's note is recalled too


async def _knowledge(bot: TestBot, count: int) -> bool:
    return await bot.rows("SELECT count(*) FROM knowledge WHERE kind = 'incident'") == [(count,)]
