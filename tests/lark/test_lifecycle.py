"""The incident life cycle in the chat (README, "Incidents"): an escalated incident stays in view
until someone resolves it; `/incidents` lists everything not yet resolved, escalated first;
`/resolve` closes an escalated incident and `/escalate` says it already is; its alert's recovery
resolves it; the first person to decide a gate acknowledges the incident (MTTA counts it) and a
later `/ack` names them instead of overwriting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.lark.events import card_text
from tests.lark.test_incidents import APPROVE, REJECT, card_with, fire, health, settings_for
from tests.lark.testbot import TestBot
from workflows.intake import parse_generic

__all__ = ["health"]  # the fixture, used by name


async def escalated_one(make_testbot: Any, health: tuple[str, Path]) -> TestBot:
    """A bot with incident #1 escalated by a rejection and incident #2 still in its workflow."""
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url, "WebDown")
    diagnosed = await card_with(bot, card, REJECT)
    await bot.click(diagnosed, REJECT, user="ou_carol")
    await card_with(bot, card, "已升级")
    await bot.expect_reply(contains="已升级")  # the escalation notice
    second = await fire(bot, url, "ApiSlow")
    await card_with(bot, second, APPROVE)
    return bot


async def test_escalated_incidents_stay_listed_first_until_resolved(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    bot = await escalated_one(make_testbot, health)
    remembered = await bot.rows("SELECT source_id FROM knowledge WHERE kind = 'incident'")
    assert [row[0] for row in remembered] == ["1"]  # /similar finds it while it is escalated
    await bot.send("/similar 2")
    assert "WebDown" in card_text((await bot.expect_reply(contains="#2")).card)
    await bot.send("/incidents")
    listed = card_text((await bot.expect_reply(contains="未解决的事件")).card)
    assert "WebDown" in listed
    assert "ApiSlow" in listed
    assert listed.index("WebDown") < listed.index("ApiSlow")  # escalated first
    assert "已升级" in listed

    await bot.send("/escalate 1", user="ou_bob")
    assert "已升级，等待处理" in (await bot.expect_reply()).text
    await bot.send("/resolve 1 磁盘已清理", user="ou_bob")
    assert "已将事件 #1 标记为已恢复" in (await bot.expect_reply(contains="#1")).text
    rows = await bot.rows("SELECT status, resolved_by FROM incidents WHERE id = 1")
    assert [tuple(row) for row in rows] == [("resolved", "ou_bob")]

    await bot.send("/similar 2")  # and once it is resolved
    assert "WebDown" in card_text((await bot.expect_reply(contains="#2")).card)
    await bot.send("/incidents")
    listed = card_text((await bot.expect_reply(contains="未解决的事件")).card)
    assert "WebDown" not in listed
    assert "ApiSlow" in listed
    await bot.send("/resolve 1", user="ou_bob")
    over = (await bot.expect_reply(contains="#1")).text
    assert "已经结束（已恢复）" in over  # the status in words, not `resolved`


async def test_the_alerts_recovery_resolves_an_escalated_incident(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    bot = await escalated_one(make_testbot, health)
    assert bot.runtime.desk is not None
    repeat = parse_generic(
        {
            "title": "WebDown",
            "severity": "critical",
            "labels": {"alertname": "WebDown", "service": "web"},
        }
    )
    await bot.runtime.desk.receive(repeat, "oc_ops")  # folds into the escalated incident
    counted = await bot.rows("SELECT alert_count FROM incidents WHERE id = 1")
    assert counted[0][0] == 2
    recovered = parse_generic(
        {
            "title": "WebDown",
            "status": "resolved",
            "labels": {"alertname": "WebDown", "service": "web"},
        }
    )
    await bot.runtime.desk.receive(recovered, "oc_ops")
    rows = await bot.rows("SELECT status, resolved_by FROM incidents WHERE id = 1")
    assert [tuple(row) for row in rows] == [("resolved", "alert")]
    assert [tuple(r) for r in await bot.rows("SELECT count(*) FROM incidents")] == [(2,)]


async def test_the_first_decision_acknowledges_and_ack_keeps_it(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    bot = await escalated_one(make_testbot, health)
    rows = await bot.rows(
        "SELECT id, acknowledged_by, acknowledged_at IS NOT NULL FROM incidents ORDER BY id"
    )
    assert [tuple(row) for row in rows] == [(1, "ou_carol", True), (2, None, False)]
    await bot.send("/report 24h")
    report = card_text((await bot.expect_reply(contains="告警健康报告")).card)
    assert "（1 个事件被确认）" in report  # the rejection counts for MTTA
    assert "MTTA（响应）中位数 —" not in report
    await bot.send("/ack 1", user="ou_bob")
    assert "已由" in (await bot.expect_reply(contains="#1")).text
    rows = await bot.rows("SELECT acknowledged_by FROM incidents WHERE id = 1")
    assert rows[0][0] == "ou_carol"  # the first acknowledgement stays
    await bot.send("/ack 2", user="ou_bob")
    assert "已确认事件 #2" in (await bot.expect_reply(contains="#2")).text
    rows = await bot.rows("SELECT acknowledged_by FROM incidents WHERE id = 2")
    assert rows[0][0] == "ou_bob"


async def test_a_card_resolved_by_its_alert_says_so_and_shows_no_expiry(
    make_testbot: Any, health: tuple[str, Path]
) -> None:
    url, state = health
    bot: TestBot = await make_testbot(settings=settings_for(state), incidents=True)
    card = await fire(bot, url, "WebDown")
    await card_with(bot, card, APPROVE)
    assert bot.runtime.desk is not None
    recovered = parse_generic(
        {
            "title": "WebDown",
            "status": "resolved",
            "labels": {"alertname": "WebDown", "service": "web"},
        }
    )
    await bot.runtime.desk.receive(recovered, "oc_ops")
    final = await card_with(bot, card, "告警已恢复")
    shown = card_text(final.card)
    assert "审批已取消" in shown
    assert "过期" not in shown  # a cancelled gate has no expiry to show
    assert "标记为已恢复" not in shown  # nobody marked it: the alert recovered
    assert APPROVE not in shown
