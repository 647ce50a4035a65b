"""Cards tell the truth (issue 15, item 4): an incident its alert resolved says so and offers
nothing to decide, a folded repeat shows its own value, an alert no runbook knows gets no
approval gate but what people can do, and the timeline has seconds and every refusal's reason."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.lark.events import card_text
from bot.sandbox.record import Message
from tests.lark.test_incidents import card_with, settings_for
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.health import health_service
from workflows.intake import parse_generic

APPROVE, REJECT = "批准", "拒绝"


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    async with health_service(tmp_path / "healthy-web") as url:
        yield url, tmp_path


async def fire(bot: TestBot, payload: dict[str, Any]) -> None:
    assert bot.runtime.desk is not None
    await bot.runtime.desk.receive(parse_generic(payload), "oc_ops")


async def status_is(bot: TestBot, incident: int, wanted: str) -> bool:
    rows = await bot.rows(f"SELECT status FROM incidents WHERE id = {incident}")
    return bool(rows) and rows[0][0] == wanted


async def latest(bot: TestBot, card: Message, *needles: str) -> str:
    return card_text((await card_with(bot, card, *needles)).card)


def disk_alert(url: str) -> dict[str, Any]:
    """A disk alert the default runbook diagnoses (its check at `url`), then a gate waits."""
    return {
        "title": "DiskFull",
        "severity": "warning",
        "labels": {"alertname": "DiskFull", "instance": "web-3"},
        "annotations": {"summary": "/var 已用 91%", "url": url},
    }


async def test_resolved_by_its_alert_folded_value_and_no_runbook(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    disk = disk_alert(url)
    await fire(bot, disk)
    card = await bot.expect_reply(contains="DiskFull")
    await card_with(bot, card, APPROVE)  # the default runbook diagnosed it: a gate waits
    await fire(bot, {**disk, "annotations": {**disk["annotations"], "summary": "/var 已用 97%"}})
    head = (await latest(bot, card, "97%")).split("---")[0]  # the incident, above its diagnosis
    assert "/var 已用 97%" in head
    assert "91%" not in head  # the folded repeat's value, not the first alert's

    await fire(bot, {**disk, "status": "resolved"})
    await wait_until(lambda: status_is(bot, 1, "resolved"), timeout=20, what="resolved")
    shown = await latest(bot, card, "已恢复")
    assert "告警已恢复" in shown
    assert "标记为已恢复" not in shown
    assert "<at id=alert" not in shown
    assert "过期" not in shown
    assert "请在" not in shown
    [message] = [m for m in bot.emulator.transcript("oc_ops") if m.message_id == card.message_id]
    assert card_buttons(message.card) == {}

    # an alert no runbook knows: no gate, the card says so and what can be done
    await fire(bot, {"title": "QueueStuck", "severity": "warning", "labels": {"queue": "mail"}})
    stuck = await bot.expect_reply(contains="QueueStuck")
    shown = await latest(bot, stuck, "未找到处置方案", "/run")
    assert "/escalate 2" in shown
    await wait_until(lambda: status_is(bot, 2, "open"), timeout=20, what="open, no gate")
    [message] = [m for m in bot.emulator.transcript("oc_ops") if m.message_id == stuck.message_id]
    assert card_buttons(message.card) == {}
    assert await bot.rows("SELECT count(*) FROM approvals WHERE incident_id = 2") == [(0,)]


async def test_the_timeline_has_seconds_and_the_reason_of_every_refused_click(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    await fire(
        bot,
        {
            "title": "WebDown",
            "severity": "critical",
            "labels": {"alertname": "WebDown", "service": "web"},
            "annotations": {"url": url},
        },
    )
    card = await bot.expect_reply(contains="WebDown")
    diagnosed = await card_with(bot, card, APPROVE)
    approve = card_buttons(diagnosed.card)[APPROVE]
    await bot.click(diagnosed, APPROVE, user="ou_alice")  # not an approver
    await bot.click(diagnosed, REJECT, user="ou_bob")
    await bot.click(diagnosed, APPROVE, user="ou_carol", value=approve)  # too late
    await wait_until(lambda: status_is(bot, 1, "escalated"), timeout=20, what="escalated")
    await bot.send("/incident 1")
    timeline = card_text((await bot.expect_reply(contains="时间线")).card)
    assert re.search(r"\d\d-\d\d \d\d:\d\d:\d\d · 事件创建", timeline)
    assert "<at id=ou_alice></at>：未生效：不在审批人名单中" in timeline
    assert "<at id=ou_bob></at>：拒绝了诊断" in timeline
    assert "<at id=ou_carol></at>：未生效：这一步已经处理过了" in timeline
    assert "已升级 · 系统：<at id=ou_bob></at> 拒绝了诊断" in timeline


async def test_a_recalled_incident_card_is_sent_again_showing_what_changed(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    """Someone recalls the incident's card (Feishu then refuses to update it, 230011): the
    next change of the incident brings a new card, with its gate's buttons, instead of being
    lost on a card nobody sees."""
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    disk = disk_alert(url)
    await fire(bot, disk)
    card = await bot.expect_reply(contains="DiskFull")
    await card_with(bot, card, APPROVE)
    bot.emulator.recall(card.message_id)
    versions = len(card.card_history)

    await fire(bot, {**disk, "annotations": {**disk["annotations"], "summary": "/var 已用 97%"}})
    again = await bot.emulator.wait_for_bot_message(
        "oc_ops", lambda m: m.card is not None and "97%" in card_text(m.card), 15, after=card.seq
    )
    assert APPROVE in card_buttons(again.card)

    async def replaced() -> bool:
        return await bot.rows("SELECT card_message_id FROM incidents") == [(again.message_id,)]

    await wait_until(replaced, timeout=10, what="the new card recorded")
    assert len(card.card_history) == versions  # the recalled card was left alone
