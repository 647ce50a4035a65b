"""The alert-hygiene report through the emulator: `/report 7d` shows a seeded week's numbers;
a suggestion opens its confirmation, an approver confirms and it really applies (a following
matching alert is silenced; a fingerprint gets its own dedupe window; a rule change is posted
to paste); viewers, other chats' buttons and replays change nothing; the weekly job posts the
report through the elected scheduler."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bot.lark.events import card_text
from bot.reports import ReportConfirm
from cards.actions import pack
from cards.texts import texts
from tests.lark.conftest import SIGNING_KEY
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.report.seed import seed_week
from workflows.intake import parse_generic
from workflows.schedule.spec import Once

SILENCE, DEDUPE, THRESHOLD = "静默：NoisyProbe", "去重窗口：QueueLag", "阈值建议：DiskFull"
APPLY, BACK = "确认应用", "返回报告"
SETTINGS = {"approvers": ["ou_bob"]}


async def reported(make_testbot: Any) -> tuple[TestBot, Any]:
    bot: TestBot = await make_testbot(settings=SETTINGS, incidents=True)
    await seed_week(bot.db, datetime.now(UTC) - timedelta(days=7) + timedelta(hours=1))
    await bot.send("/report 7d")
    return bot, await bot.expect_reply("告警健康报告")


async def count(bot: TestBot, sql: str) -> int:
    return int((await bot.rows(sql))[0][0])


async def test_report_shows_the_weeks_numbers(make_testbot: Any) -> None:
    bot, report = await reported(make_testbot)
    shown = card_text(report.card)
    for needle in (
        "最近 7 天",
        "告警 **52** 条",
        "新事件 **13** 个",
        "MTTA（响应）中位数 5分钟",
        "MTTR（恢复）中位数 30分钟",
        "审批超时 2 次",
        "自动修复 4 次，成功率 67%",
        "NoisyProbe · 告警 30 条",
        "DiskFull · 恢复后又触发 3 次",
        "检查磁盘 · 失败 2 次",
    ):
        assert needle in shown, needle
    assert {SILENCE, DEDUPE, THRESHOLD} <= set(card_buttons(report.card))
    await bot.send("/report 99d")
    assert "/report [7d|24h|30d]" in (await bot.expect_reply()).text
    await bot.send("/report soon")
    assert "用法" in (await bot.expect_reply()).text


async def test_an_approver_applies_a_silence_that_then_silences(make_testbot: Any) -> None:
    bot, report = await reported(make_testbot)
    refused = await bot.click(report, SILENCE, user="ou_alice")  # a viewer
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    assert refused.card is None
    opened = await bot.click(report, SILENCE, user="ou_bob")
    assert opened.card is not None
    confirm = card_text(opened.card)
    assert "alertname=NoisyProbe,instance=probe-1" in confirm
    assert "1天" in confirm
    apply_value = card_buttons(opened.card)[APPLY]
    viewer = await bot.click(report, APPLY, user="ou_alice", value=apply_value)
    assert viewer.toast is not None
    assert viewer.toast["type"] == "error"
    assert await count(bot, "SELECT count(*) FROM silences") == 0

    done = await bot.click(report, APPLY, user="ou_bob", value=apply_value)
    assert done.toast is not None
    assert done.toast["type"] == "success"
    assert done.card is not None
    assert "已创建静默" in card_text(done.card)
    assert await bot.rows("SELECT matcher, created_by, chat_id FROM silences") == [
        ("alertname=NoisyProbe,instance=probe-1", "ou_bob", "oc_ops")
    ]
    audit = await bot.rows(
        "SELECT kind, actor FROM incident_events WHERE kind IN ('report.applied', "
        "'silence.created') ORDER BY id"
    )
    assert audit == [("silence.created", "ou_bob"), ("report.applied", "ou_bob")]
    again = await bot.click(report, APPLY, user="ou_bob", value=apply_value)  # a replay
    assert again.toast is not None
    assert again.toast["type"] == "error"
    assert again.toast["content"] == texts("zh")("report.toast.done_already")
    assert await count(bot, "SELECT count(*) FROM silences") == 1

    # the next NoisyProbe alert is recorded and starts nothing
    assert bot.runtime.desk is not None
    before = await count(bot, "SELECT count(*) FROM incidents")
    alerts = parse_generic(
        {"title": "NoisyProbe", "labels": {"alertname": "NoisyProbe", "instance": "probe-1"}}
    )
    outcome = await bot.runtime.desk.receive(alerts, "oc_ops")
    assert outcome.silenced == 1
    assert await count(bot, "SELECT count(*) FROM incidents") == before
    await bot.expect_silence()


async def test_a_suggested_silence_over_a_day_waits_for_another_approver(
    make_testbot: Any,
) -> None:
    """The report's silence goes through /silence's rule: over 24 h, the approver who applies
    it only asks; the card becomes the request another approver confirms."""
    settings = {
        "roles": {"default": "viewer", "global": {"approver": ["ou_bob", "ou_carol"]}},
        "advisor": {"rules": {"silence_hours": 48}},
    }
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    await seed_week(bot.db, datetime.now(UTC) - timedelta(days=7) + timedelta(hours=1))
    await bot.send("/report 7d")
    report = await bot.expect_reply("告警健康报告")
    opened = await bot.click(report, SILENCE, user="ou_bob")
    assert opened.card is not None
    apply_value = card_buttons(opened.card)[APPLY]
    asked = await bot.click(report, APPLY, user="ou_bob", value=apply_value)
    assert asked.toast is not None
    assert "需要另一位审批人确认" in asked.toast["content"]
    assert asked.card is not None
    shown = card_text(asked.card)
    assert "需要另一位审批人确认" in shown
    assert "超过 24 小时" in shown
    assert await bot.rows("SELECT matcher, status FROM silences") == [
        ("alertname=NoisyProbe,instance=probe-1", "pending")
    ]
    # not in force: the next NoisyProbe alert opens an incident as before
    assert bot.runtime.desk is not None
    alerts = parse_generic(
        {"title": "NoisyProbe", "labels": {"alertname": "NoisyProbe", "instance": "probe-1"}}
    )
    assert (await bot.runtime.desk.receive(alerts, "oc_ops")).silenced == 0
    own = await bot.click(report, "批准", user="ou_bob")
    assert own.toast is not None
    assert own.toast["type"] == "error"
    confirmed = await bot.click(report, "批准", user="ou_carol")
    assert confirmed.toast is not None
    assert confirmed.toast["type"] == "success"
    assert await bot.rows("SELECT status, decided_by FROM silences") == [("active", "ou_carol")]
    assert (await bot.runtime.desk.receive(alerts, "oc_ops")).silenced == 1


async def test_forged_and_foreign_buttons_change_nothing(make_testbot: Any) -> None:
    bot, report = await reported(make_testbot)
    opened = await bot.click(report, SILENCE, user="ou_bob")
    assert opened.card is not None
    value = dict(card_buttons(opened.card)[APPLY])
    tampered = {**value, "params": {**value["params"], "duration": "7d"}}
    forged = await bot.click(report, APPLY, user="ou_bob", value=tampered)
    assert forged.toast is not None
    assert "篡改" in forged.toast["content"]
    fields = {k: v for k, v in value.items() if k not in ("action", "v", "sig")}
    foreign = pack(ReportConfirm(**{**fields, "chat_id": "oc_elsewhere"}), SIGNING_KEY)
    other_chat = await bot.click(report, APPLY, user="ou_bob", value=foreign)
    assert other_chat.toast is not None
    assert "篡改" in other_chat.toast["content"]
    assert await count(bot, "SELECT count(*) FROM silences") == 0
    refused = await bot.rows("SELECT count(*) FROM incident_events WHERE kind = 'click.refused'")
    assert refused == [(2,)]
    back = await bot.click(report, BACK, user="ou_bob", value=card_buttons(opened.card)[BACK])
    assert back.card is not None
    assert "告警健康报告" in card_text(back.card)  # Cancel brings the report back


async def test_dedupe_applies_and_a_rule_change_is_posted(make_testbot: Any) -> None:
    bot, report = await reported(make_testbot)
    buttons = card_buttons(report.card)
    opened = await bot.click(report, DEDUPE, user="ou_bob", value=buttons[DEDUPE])
    assert opened.card is not None
    assert "7小时" in card_text(opened.card)
    await bot.click(report, APPLY, user="ou_bob", value=card_buttons(opened.card)[APPLY])
    assert await bot.rows("SELECT fingerprint, minutes, created_by FROM dedupe_overrides") == [
        ("fp-c", 420, "ou_bob")
    ]
    opened = await bot.click(report, THRESHOLD, user="ou_bob", value=buttons[THRESHOLD])
    assert opened.card is not None
    posted = await bot.click(report, APPLY, user="ou_bob", value=card_buttons(opened.card)[APPLY])
    assert posted.card is not None
    shown = card_text(posted.card)
    assert "for: 5m" in shown
    assert "没有修改任何文件" in shown
    audit = await bot.rows(
        "SELECT kind, data->>'kind' FROM incident_events WHERE kind LIKE 'report.%' ORDER BY id"
    )
    assert audit == [("report.applied", "dedupe"), ("report.posted", "threshold")]


async def test_the_weekly_job_posts_the_report_once(make_testbot: Any) -> None:
    settings = {**SETTINGS, "advisor": {"chats": ["oc_ops"], "days": 7}}
    bot: TestBot = await make_testbot(settings=settings)
    await wait_until(
        lambda: _system_jobs(bot), what="the advisor's system job to be created at start-up"
    )
    await bot.send("/jobs")
    assert "告警健康报告" in card_text((await bot.expect_reply("定时任务")).card)
    # make it due now: the elected scheduler fires it once and the report is posted
    soon = datetime.now(UTC) + timedelta(seconds=2)
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE schedules SET spec = CAST(:s AS jsonb), kind = 'once', updated_at = now() "
                "WHERE created_by = 'system'"
            ),
            {"s": json.dumps(Once(soon, "Asia/Shanghai").to_json())},
        )
    assert bot.runtime.scheduling is not None
    bot.runtime.scheduling.service.wake()
    posted = await bot.expect_reply("告警健康报告", timeout=20)
    assert "最近 7 天" in card_text(posted.card)
    assert "这段时间很安静" in card_text(posted.card)
    await wait_until(
        lambda: _runs(bot, [("succeeded",)]), what="the fire to be recorded as succeeded"
    )


async def _system_jobs(bot: TestBot) -> bool:
    return await bot.rows("SELECT count(*) FROM schedules WHERE created_by = 'system'") == [(1,)]


async def _runs(bot: TestBot, wanted: list[tuple[str]]) -> bool:
    return await bot.rows("SELECT status FROM schedule_runs") == wanted
