"""Scheduled jobs from the chat: a sentence → confirmation card → Confirm → the job fires and
posts its result; clarify in the thread; only the creator changes a job; /jobs and /job."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.commands.schedules import ScheduleChoose
from bot.lark.events import card_text
from cards.actions import pack, unpack
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.fake_llm import FakeLLM, FakeTurn, fake_llm
from workflows.schedule.spec import Once

CONFIRM, EDIT, CANCEL = "确认", "修改", "取消"


@pytest.fixture
async def fake_model() -> AsyncIterator[tuple[FakeLLM, dict[str, Any]]]:
    async with fake_llm() as fake:
        yield (
            fake,
            {
                "LLM_PROVIDER": "openai",
                "LLM_MODEL": "gpt-test",
                "OPENAI_API_KEY": "sk-test-0123456789",
                "OPENAI_BASE_URL": f"{fake.base_url}/v1",
            },
        )


async def _status(bot: TestBot, wanted: str) -> bool:
    return await bot.rows("SELECT status FROM schedules ORDER BY id DESC LIMIT 1") == [(wanted,)]


async def test_sentence_to_confirmed_job_that_fires(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot()
    await bot.send("每个工作日早上9点检查服务器健康并发到群里")
    card = await bot.expect_reply("新的定时任务")
    shown = card_text(card.card)
    assert "检查服务器健康" in shown
    assert "09:00" in shown
    assert "host_disk" in shown  # what it will do
    assert await _status(bot, "pending")
    other = await bot.click(card, CONFIRM, user="ou_bob")  # not the creator
    assert other.toast is not None
    assert other.toast["type"] == "error"
    click = await bot.click(card, CONFIRM)
    assert click.toast is not None
    assert click.toast["type"] == "success"
    assert await _status(bot, "active")
    # make it due now: the leader picks the change up and fires it exactly once
    (schedule_id,) = (await bot.rows("SELECT id FROM schedules"))[0]
    soon = datetime.now(UTC) + timedelta(seconds=2)
    spec = json.dumps(Once(soon, "Asia/Shanghai").to_json())
    ((action,),) = await bot.rows(f"SELECT action FROM schedules WHERE id = {schedule_id}")
    for step in action["steps"]:
        if step["plugin"] == "host_load":  # this machine's load is the tests' own, not news
            step["params"]["warn_ratio"] = 1000
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE schedules SET spec = CAST(:s AS jsonb), kind = 'once', "
                "action = CAST(:a AS jsonb), updated_at = now() WHERE id = :i"
            ),
            {"s": spec, "a": json.dumps(action), "i": schedule_id},
        )
    assert bot.runtime.scheduling is not None
    bot.runtime.scheduling.service.wake()
    result = await bot.expect_reply("定时任务 #", timeout=20)
    assert "host_disk" in card_text(result.card)
    runs = await bot.rows("SELECT status FROM schedule_runs")
    assert len(runs) == 1
    await wait_until(lambda: _status(bot, "completed"), what="the one-shot to complete")


async def test_clarify_then_answer_in_the_thread(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot()
    await bot.send("提醒我开会")
    question = await bot.expect_reply()
    assert question.text  # a question, not a guess
    assert await bot.rows("SELECT count(*) FROM schedules") == [(0,)]
    await bot.send("明天下午3点", parent_id=question.message_id)
    card = await bot.expect_reply("新的定时任务")
    assert "开会" in card_text(card.card)
    assert "15:00" in card_text(card.card)


async def test_cancel_and_job_commands(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot()
    await bot.send("/schedule 每周五下午5点 检查磁盘使用率")
    card = await bot.expect_reply("新的定时任务")
    cancel_value = card_buttons(card.card)[CANCEL]
    await bot.click(card, CANCEL)
    assert await _status(bot, "deleted")
    again = await bot.click(
        card, CONFIRM, value=card_buttons(card.card).get(CONFIRM) or cancel_value
    )
    assert again.toast is not None
    assert again.toast["type"] == "error"
    await bot.send("/schedule 每天凌晨3点 提醒值班同学看备份")
    card = await bot.expect_reply("新的定时任务")
    await bot.click(card, CONFIRM)
    (job_id,) = (await bot.rows("SELECT max(id) FROM schedules"))[0]
    await bot.send("/jobs")
    listed = card_text((await bot.expect_reply("定时任务")).card)
    assert f"#{job_id}" in listed
    assert "03:00" in listed
    await bot.send(f"/job pause {job_id}", user="ou_bob")
    assert "创建人" in (await bot.expect_reply()).text
    await bot.send(f"/job pause {job_id}")
    await bot.expect_reply("已暂停")
    assert await _status(bot, "paused")
    await bot.send(f"/job {job_id}")
    assert "已暂停" in card_text((await bot.expect_reply(f"#{job_id}")).card)
    await bot.send(f"/job 恢复 ＃{job_id}")  # the verb and the number as typed in Chinese
    await bot.expect_reply("已恢复")
    assert await _status(bot, "active")
    await bot.send(f"/job {job_id} 暂停")
    await bot.expect_reply("已暂停")
    assert await _status(bot, "paused")


async def test_edit_form_makes_a_new_confirmation(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot()
    await bot.send("/schedule 每天早上9点 检查磁盘")
    card = await bot.expect_reply("新的定时任务")
    form = await bot.click(card, EDIT)
    assert form.toast is None or form.toast["type"] != "error"
    submit = card_buttons(bot.emulator.store.get(card.message_id).card)["重新识别"]
    result = await bot.emulator.click(
        card.message_id,
        bot.user,
        submit,
        form_value={"when": "每周五下午5点", "task": "检查内存"},
    )
    assert result.toast is not None
    shown = card_text(bot.emulator.store.get(card.message_id).card)
    assert "检查内存" in shown
    assert "17:00" in shown
    rows = await bot.rows("SELECT task, status FROM schedules ORDER BY id")
    assert rows == [("检查磁盘", "deleted"), ("检查内存", "pending")]


async def test_with_a_model_a_job_is_a_read_only_investigation(
    make_testbot: Any, fake_model: Any
) -> None:
    fake, settings = fake_model
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    await bot.send("/schedule 每天早上9点 看看 checkout 服务为什么变慢")
    card = await bot.expect_reply("新的定时任务")
    assert "模型" in card_text(card.card)  # what it will do
    await bot.click(card, CONFIRM)
    fake.script(
        FakeTurn(tool_calls=[("dns_resolve", {"name": "localhost"})]),
        FakeTurn(
            text=json.dumps(
                {
                    "summary": "checkout 的数据库连接池耗尽",
                    "hypotheses": [{"cause": "连接泄漏", "confidence": 0.6}],
                    "evidence": [],
                    "next_checks": ["查看连接池指标"],
                }
            )
        ),
    )
    await bot.send("/job run 1")
    result = await bot.expect_reply("连接池耗尽", timeout=20)
    assert "连接泄漏" in card_text(result.card)
    offered = {t["function"]["name"] for t in fake.requests[0].body["tools"]}
    assert "command" not in offered
    assert "dns_resolve" in offered


async def test_a_scheduled_fix_always_waits_for_a_person(make_testbot: Any, tmp_path: Any) -> None:
    """Even when the policy would run the fix by itself, a fix fired by the clock asks first."""
    settings = {
        "approvers": ["ou_bob"],
        "policy": {"auto_max_risk": "medium"},
        "plugins": {
            "settings": {
                "command": {
                    "templates": {
                        "touch_marker": {
                            "argv": ["/usr/bin/touch", f"{tmp_path}/marker"],
                            "risk": "medium",
                        }
                    }
                }
            }
        },
    }
    bot: TestBot = await make_testbot(settings=settings)
    await bot.send("/schedule 每天凌晨2点 /run command template=touch_marker")
    card = await bot.expect_reply("新的定时任务")
    assert "审批" in card_text(card.card)  # it says it will ask
    await bot.click(card, CONFIRM)
    await bot.send("/job run 1")
    approval = await bot.expect_reply("command", timeout=20)
    assert "批准" in card_buttons(approval.card)
    assert "总是需要人工审批" in card_text(approval.card)
    assert not (tmp_path / "marker").exists()
    await bot.click(approval, "批准", user="ou_bob")
    await wait_until(lambda: (tmp_path / "marker").exists(), what="the approved fix")


async def test_an_unclear_hour_is_asked_with_buttons_and_a_click_makes_the_job(
    make_testbot: Any,
) -> None:
    """3点开会: the small hours or the afternoon? Both are offered; a click enables the job."""
    bot: TestBot = await make_testbot()
    await bot.send("3点开会")
    question = await bot.expect_reply("请选择执行时间")
    labels = sorted(card_buttons(question.card))
    assert len(labels) == 2
    assert any("03:00" in label for label in labels)
    afternoon = next(label for label in labels if "15:00" in label)
    assert await bot.rows("SELECT count(*) FROM schedules") == [(0,)]  # nothing until a click
    chosen = dict(card_buttons(question.card)[afternoon])
    forged = dict(chosen)
    forged["spec"] = forged["spec"].replace("15:00", "04:00")
    refused = await bot.click(question, afternoon, value=forged)
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    click = await bot.click(question, afternoon)
    assert click.toast is not None
    assert click.toast["type"] == "success"
    assert await _status(bot, "active")
    ((spec,),) = await bot.rows("SELECT spec FROM schedules")
    assert spec["form"] == "once"
    assert datetime.fromisoformat(spec["at"]).hour == 15
    assert "15:00" in card_text(click.card)
    again = await bot.click(question, afternoon, value=chosen)  # a double click: no second job
    assert again.toast is not None
    assert again.toast["type"] == "success"
    assert await bot.rows("SELECT count(*) FROM schedules") == [(1,)]


async def test_a_draft_nobody_confirms_expires_and_its_buttons_say_so(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"pending_ttl_hours": 2})
    await bot.send("每天早上9点检查磁盘")
    first = await bot.expect_reply("新的定时任务")
    buttons = card_buttons(first.card)
    await bot.send("每天下午6点检查磁盘")
    second = await bot.expect_reply("新的定时任务")
    # the first was drafted three hours ago, the second just now
    await _age_drafts(bot, "3 hours", "WHERE id = (SELECT min(id) FROM schedules)")
    await bot.runtime.sweep()
    statuses = await bot.rows("SELECT id, status FROM schedules ORDER BY id")
    assert [row[1] for row in statuses] == ["expired", "pending"]
    # the sweep updated the expired draft's card, unclicked; the fresh one kept its buttons
    swept = card_text(first.card)
    assert "已过期" in swept
    assert "2 小时内无人确认" in swept
    assert card_buttons(first.card) == {}
    assert CONFIRM in card_buttons(second.card)
    late = await bot.click(first, CONFIRM, value=buttons[CONFIRM])
    assert late.toast is not None
    assert late.toast["type"] == "error"
    assert "已过期" in late.toast["content"]
    assert late.card is not None
    shown = card_text(late.card)
    assert "已过期" in shown
    assert "2 小时内无人确认" in shown
    assert CONFIRM not in card_buttons(late.card)
    edit = await bot.click(first, EDIT, value=buttons[EDIT])  # the old card's button
    assert edit.toast is not None
    assert "已过期" in edit.toast["content"]
    assert await bot.rows("SELECT status FROM schedules ORDER BY id") == [
        ("expired",),
        ("pending",),
    ]
    fine = await bot.click(second, CONFIRM)  # the fresh draft still works
    assert fine.toast is not None
    assert fine.toast["type"] == "success"


async def test_a_draft_past_its_time_is_refused_even_before_the_sweep(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"pending_ttl_hours": 1})
    await bot.send("每天早上9点检查磁盘")
    card = await bot.expect_reply("新的定时任务")
    await _age_drafts(bot, "2 hours")
    late = await bot.click(card, CONFIRM)
    assert late.toast is not None
    assert "已过期" in late.toast["content"]
    assert await bot.rows("SELECT status FROM schedules") == [("expired",)]
    assert await bot.rows("SELECT count(*) FROM schedule_runs") == [(0,)]


async def _age_drafts(bot: TestBot, age: str, where: str = "") -> None:
    """Make drafts look `age` old (as if made that long ago)."""
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE schedules SET created_at = now() - interval '{age}' {where}")
        )


async def _due_now(bot: TestBot, schedule_id: int) -> None:
    """Make a confirmed job fire two seconds from now, once, and tell the scheduler."""
    soon = datetime.now(UTC) + timedelta(seconds=2)
    spec = json.dumps(Once(soon, "Asia/Shanghai").to_json())
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE schedules SET spec = CAST(:s AS jsonb), kind = 'once', updated_at = now() "
                "WHERE id = :i"
            ),
            {"s": spec, "i": schedule_id},
        )
    assert bot.runtime.scheduling is not None
    bot.runtime.scheduling.service.wake()


async def test_the_weekly_report_sentence_is_the_advisor_report_over_7_days(
    make_testbot: Any,
) -> None:
    bot: TestBot = await make_testbot()
    await bot.send("每周五下午5点发周报")
    card = await bot.expect_reply("新的定时任务")
    shown = card_text(card.card)
    assert "发送最近 7 天的告警健康报告" in shown
    assert "发送提醒" not in shown
    await bot.click(card, CONFIRM)
    ((schedule_id, action),) = await bot.rows("SELECT id, action FROM schedules")
    assert action == {"type": "hygiene_report", "days": 7}
    await _due_now(bot, schedule_id)
    report = await bot.expect_reply("告警健康报告 · 最近", timeout=20)
    assert "7" in card_text(report.card)
    await bot.send("/jobs")
    listed = card_text((await bot.expect_reply("定时任务")).card)
    assert "运行中" not in listed


async def test_a_reminder_for_me_mentions_whoever_asked(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot()
    await bot.send("明天下午3点提醒我发版", user="ou_bob")
    card = await bot.expect_reply("新的定时任务")
    assert "@ 提出提醒的人" in card_text(card.card)
    await bot.click(card, CONFIRM, user="ou_bob")
    ((schedule_id,),) = await bot.rows("SELECT id FROM schedules")
    await _due_now(bot, schedule_id)
    reminder = await bot.expect_reply("提醒：发版", timeout=20)
    assert reminder.msg_type == "text"
    assert "ou_bob" in reminder.content  # <at user_id="ou_bob">: Lark notifies the asker

    async def recorded() -> bool:
        return await bot.rows("SELECT status FROM schedule_runs") == [("succeeded",)]

    await wait_until(recorded, what="the reminder's run to be recorded")


async def test_a_task_the_bot_cannot_do_is_asked_not_echoed(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot()
    await bot.send("每天凌晨3点清理7天前的日志")
    answer = await bot.expect_reply("这个任务我做不了")
    shown = card_text(answer.card)
    assert "清理7天前的日志" in shown
    for ability in ("周报", "提醒我", "host_disk", "/run"):
        assert ability in shown
    assert card_buttons(answer.card) == {}
    assert await bot.rows("SELECT count(*) FROM schedules") == [(0,)]


async def test_an_unanswered_question_expires_and_its_buttons_say_so(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"pending_ttl_hours": 2})
    await bot.send("3点开会")
    question = await bot.expect_reply("请选择执行时间")
    assert "2 小时内未选择，这个问题将过期" in card_text(question.card)
    afternoon = next(label for label in card_buttons(question.card) if "15:00" in label)
    fresh = unpack(card_buttons(question.card)[afternoon], bot.runtime.signing_key)
    assert isinstance(fresh, ScheduleChoose)
    asked_3h_ago = fresh.model_copy(update={"asked": fresh.asked - 3 * 3600})
    late = await bot.click(question, afternoon, value=pack(asked_3h_ago, bot.runtime.signing_key))
    assert late.toast is not None
    assert late.toast["type"] == "error"
    assert late.toast["content"] == "已过期"
    assert late.card is not None
    assert "已过期：2 小时内没有选择" in card_text(late.card)
    assert card_buttons(late.card) == {}
    assert await bot.rows("SELECT count(*) FROM schedules") == [(0,)]


async def test_an_answer_to_an_expired_question_is_not_read_with_it(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"pending_ttl_hours": 1})
    asked = await bot.send("提醒我开会")
    question = await bot.expect_reply()
    assert "1 小时内有效" in question.text  # the question says how long it waits
    async with bot.db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE inbound_events SET created_at = now() - interval '2 hours' "
                "WHERE message_id = :m"
            ),
            {"m": asked.message_id},
        )
    await bot.send("明天下午3点", parent_id=question.message_id)
    answer = await bot.expect_reply("已过期")
    assert "1 小时内没有回答" in answer.text
    assert await bot.rows("SELECT count(*) FROM schedules") == [(0,)]


async def test_an_end_written_after_the_task_is_on_the_card_and_in_the_job(
    make_testbot: Any,
) -> None:
    """ "…，持续3天": the card says the last day, shows no fire after it, and the confirmed job
    keeps it (before, the end stayed in the task and the job ran every day forever)."""
    bot: TestBot = await make_testbot()
    await bot.send("每天晚上11点检查磁盘，持续3天")
    card = await bot.expect_reply("新的定时任务")
    shown = card_text(card.card)
    assert "为止" in shown
    assert "持续" not in shown
    await bot.click(card, CONFIRM)
    assert await _status(bot, "active")
    ((spec,),) = await bot.rows("SELECT spec FROM schedules")
    assert "start" not in spec
    last = date.fromisoformat(spec["end"])
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    runs_from = today.date() if today.hour < 23 else today.date() + timedelta(days=1)
    assert last == runs_from + timedelta(days=2)
    assert f"到 {last.isoformat()} 为止" in shown
    assert (last + timedelta(days=1)).isoformat() not in shown
