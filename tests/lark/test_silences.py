"""Silences in the chat: a bare word is refused with the syntax, errors are in Chinese, an
approver ends a silence early with /unsilence or the button on /silences (audited), and a
matching alert opens an incident again afterwards; viewers and other chats' buttons change
nothing."""

from __future__ import annotations

from typing import Any

from bot.lark.events import card_text
from tests.lark.testbot import TestBot, card_buttons
from workflows.intake import parse_generic

SETTINGS = {"roles": {"default": "viewer", "global": {"approver": ["ou_bob"]}}}


def web_down() -> Any:
    return parse_generic({"title": "WebDown", "labels": {"alertname": "WebDown", "env": "prod"}})


async def test_bad_matchers_are_refused_in_words_with_the_syntax(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=SETTINGS)
    await bot.send("/silence foo 2h", user="ou_bob")
    refused = (await bot.expect_reply()).text
    assert "alertname=foo" in refused
    assert "用法：/silence" in refused
    await bot.send('/silence instance=~"[" 2h', user="ou_bob")
    assert "正则表达式" in (await bot.expect_reply()).text
    await bot.send("/silence alertname=X 10x", user="ou_bob")
    assert "看不懂时长「10x」" in (await bot.expect_reply()).text
    assert await bot.rows("SELECT id FROM silences") == []


async def test_a_matcher_copied_from_alertmanager_and_a_duration_said_in_words(
    make_testbot: Any,
) -> None:
    """A braced matcher with spaces and a quoted value (as Alertmanager's UI and alert texts
    show it) and a duration in Chinese make the silence; it holds back the alert it names and
    not the one it does not."""
    bot: TestBot = await make_testbot(settings=SETTINGS, incidents=True)
    assert bot.runtime.desk is not None
    await bot.send(
        '/silence {alertname="Web Down", env=~"prod|staging"} 一个半小时 升级网关', user="ou_bob"
    )
    assert "编号 1" in (await bot.expect_reply()).text
    rows = await bot.rows("SELECT matchers, reason, ends_at - starts_at FROM silences")
    assert [(row[0]["terms"], row[1], row[2].total_seconds()) for row in rows] == [
        ([["alertname", "=", "Web Down"], ["env", "=~", "prod|staging"]], "升级网关", 5400.0)
    ]
    named = parse_generic({"title": "x", "labels": {"alertname": "Web Down", "env": "prod"}})
    assert (await bot.runtime.desk.receive(named, "oc_ops")).silenced == 1
    other = parse_generic({"title": "x", "labels": {"alertname": "Web Down", "env": "dev"}})
    assert (await bot.runtime.desk.receive(other, "oc_ops")).silenced == 0
    await bot.send("/unsilence ＃1，", user="ou_bob")  # as a Chinese keyboard types it
    await bot.expect_reply("已解除静默 #1")


async def test_unsilence_ends_it_and_alerts_open_incidents_again(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=SETTINGS, incidents=True)
    assert bot.runtime.desk is not None
    await bot.send("/silence alertname=WebDown 2h 维护", user="ou_bob")
    assert "编号 1" in (await bot.expect_reply()).text
    caught = await bot.runtime.desk.receive(web_down(), "oc_ops")
    assert caught.silenced == 1
    await bot.send("/unsilence 1")  # a viewer
    assert "审批人" in (await bot.expect_reply()).text
    await bot.send("/unsilence 1", user="ou_bob")
    assert "已解除静默 #1" in (await bot.expect_reply()).text
    await bot.send("/unsilence 1", user="ou_bob")
    assert "没有生效中的静默 #1" in (await bot.expect_reply()).text
    again = await bot.runtime.desk.receive(web_down(), "oc_ops")
    assert again.silenced == 0
    assert len(again.new) == 1
    audit = await bot.rows(
        "SELECT actor, data->>'id' FROM incident_events WHERE kind = 'silence.ended'"
    )
    assert [tuple(row) for row in audit] == [("ou_bob", "1")]


async def test_the_button_on_silences_ends_one(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings=SETTINGS)
    await bot.send("/silence alertname=WebDown 2h", user="ou_bob")
    await bot.expect_reply()
    await bot.send("/silence alertname=DiskFull,env=prod 1h", user="ou_bob")
    await bot.expect_reply()
    await bot.send("/silences")
    listed = await bot.expect_reply(contains="WebDown")
    assert set(card_buttons(listed.card)) == {"解除 #1", "解除 #2"}
    viewer = await bot.click(listed, "解除 #1", user="ou_alice")
    assert viewer.toast is not None
    assert viewer.toast["type"] == "error"
    forged = dict(card_buttons(listed.card)["解除 #1"], chat_id="oc_other")
    refused = await bot.click(listed, "解除 #1", user="ou_bob", value=forged)
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    ended = await bot.click(listed, "解除 #1", user="ou_bob")
    assert ended.toast is not None
    assert ended.toast["type"] == "success"
    assert ended.card is not None
    assert "WebDown" not in card_text(ended.card)
    assert set(card_buttons(ended.card)) == {"解除 #2"}
    rows = await bot.rows("SELECT id FROM silences WHERE cancelled_at IS NOT NULL")
    assert [row[0] for row in rows] == [1]


APPROVERS = {"roles": {"default": "viewer", "global": {"approver": ["ou_bob", "ou_carol"]}}}


def critical(title: str = "WebDown") -> Any:
    return parse_generic(
        {"title": title, "severity": "critical", "labels": {"alertname": title, "env": "prod"}}
    )


async def test_a_silence_of_everything_or_over_a_day_needs_another_approver(
    make_testbot: Any,
) -> None:
    bot: TestBot = await make_testbot(settings=APPROVERS, incidents=True)
    assert bot.runtime.desk is not None
    await bot.send('/silence alertname=~".*" 2h 全部维护', user="ou_bob")
    request = await bot.expect_reply(contains="需要另一位审批人确认")
    shown = card_text(request.card)
    assert "匹配所有告警" in shown
    assert set(card_buttons(request.card)) >= {"批准", "拒绝"}
    # not in force before someone else confirms it
    assert (await bot.runtime.desk.receive(web_down(), "oc_ops")).silenced == 0
    own = await bot.click(request, "批准", user="ou_bob")
    assert own.toast is not None
    assert own.toast["type"] == "error"
    assert "不能审批自己发起的操作" in own.toast["content"]
    viewer = await bot.click(request, "批准", user="ou_alice")
    assert viewer.toast is not None
    assert viewer.toast["type"] == "error"
    confirmed = await bot.click(request, "批准", user="ou_carol")
    assert confirmed.toast is not None
    assert confirmed.toast["type"] == "success"
    assert confirmed.card is not None
    assert "已生效" in card_text(confirmed.card)
    assert "批准" not in card_buttons(confirmed.card)
    caught = await bot.runtime.desk.receive(
        parse_generic({"title": "DiskFull", "labels": {"alertname": "DiskFull"}}), "oc_ops"
    )
    assert caught.silenced == 1

    await bot.send("/silence alertname=DiskFull 2d 迁移", user="ou_bob")
    long = await bot.expect_reply(contains="需要另一位审批人确认")
    assert "超过 24 小时" in card_text(long.card)
    rejected = await bot.click(long, "拒绝", user="ou_carol")
    assert rejected.toast is not None
    assert rejected.toast["type"] == "success"
    assert rejected.card is not None
    assert "已拒绝" in card_text(rejected.card)
    rows = await bot.rows("SELECT id, status FROM silences ORDER BY id")
    assert [tuple(row) for row in rows] == [(1, "active"), (2, "rejected")]
    audit = await bot.rows(
        "SELECT kind, actor FROM incident_events WHERE kind LIKE 'silence.%' ORDER BY id"
    )
    assert [tuple(row) for row in audit] == [
        ("silence.requested", "ou_bob"),
        ("silence.confirmed", "ou_carol"),
        ("silence.requested", "ou_bob"),
        ("silence.rejected", "ou_carol"),
    ]


async def test_a_silence_request_nobody_decides_expires(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={**APPROVERS, "pending_ttl_hours": 2})
    await bot.send("/silence env=prod 3d", user="ou_bob")
    request = await bot.expect_reply(contains="需要另一位审批人确认")
    async with bot.db.session() as session:
        from sqlalchemy import text

        await session.execute(
            text("UPDATE silences SET created_at = created_at - interval '3 hours'")
        )
        await session.execute(
            text("UPDATE approvals SET expires_at = expires_at - interval '3 hours'")
        )
    buttons = card_buttons(request.card)
    await bot.runtime.sweep()
    assert await bot.rows("SELECT status FROM silences") == [("expired",)]
    # the sweep updated the request's card: it says it expired, without buttons, unclicked
    swept = card_text(request.card)
    assert "已过期" in swept
    assert "2 小时内无人确认" in swept
    assert "批准" not in card_buttons(request.card)
    late = await bot.click(request, "批准", user="ou_carol", value=buttons["批准"])
    assert late.toast is not None
    assert late.toast["type"] == "error"
    assert "已过期" in late.toast["content"]
    assert late.card is not None
    shown = card_text(late.card)
    assert "已过期" in shown
    assert "2 小时内无人确认" in shown
    assert "批准" not in card_buttons(late.card)
    assert await bot.rows("SELECT status FROM silences") == [("expired",)]


async def test_caught_alerts_are_counted_and_a_critical_one_leaves_a_notice(
    make_testbot: Any,
) -> None:
    bot: TestBot = await make_testbot(settings=SETTINGS, incidents=True)
    assert bot.runtime.desk is not None
    await bot.send("/silence alertname=WebDown 2h 维护", user="ou_bob")
    await bot.expect_reply(contains="编号 1")
    await bot.runtime.desk.receive(web_down(), "oc_ops")  # a warning: counted, no notice
    await bot.runtime.desk.receive(critical(), "oc_ops")
    notice = await bot.expect_reply(contains="已被静默 #1 拦截")
    assert "WebDown" in notice.text
    assert "\n" not in notice.text.strip()  # one line
    await bot.runtime.desk.receive(critical(), "oc_ops")  # the same again within the hour
    await bot.expect_silence()  # the warning and the repeat left none
    await bot.send("/silences")
    listed = card_text((await bot.expect_reply(contains="WebDown")).card)
    assert "已拦截 3 条" in listed


async def test_every_match_all_form_gets_the_confirmation_card_and_silences_lists_it(
    make_testbot: Any,
) -> None:
    """`{}` is read as Alertmanager reads it (every alert), and like `alertname=~".+"` or
    `severity!=""` it waits for another approver; `/silences` shows what waits, who asked and
    when it expires."""
    bot: TestBot = await make_testbot(settings={**APPROVERS, "pending_ttl_hours": 3})
    for matcher in ("{}", 'alertname=~".+"', 'severity!=""'):
        await bot.send(f"/silence {matcher} 2h 全部维护", user="ou_bob")
        request = await bot.expect_reply(contains="需要另一位审批人确认")
        assert "匹配所有告警" in card_text(request.card)
        assert set(card_buttons(request.card)) >= {"批准", "拒绝"}
    rows = await bot.rows("SELECT matcher, status FROM silences ORDER BY id")
    assert [tuple(row) for row in rows] == [
        ("{}", "pending"),
        ('alertname=~".+"', "pending"),
        ('severity!=""', "pending"),
    ]
    await bot.send("/silences")
    listed = card_text((await bot.expect_reply(contains="等待确认")).card)
    assert "#1 `{}` · 时长 2h · 发起人 <at id=ou_bob></at>" in listed
    assert "前无人确认则过期" in listed
    assert "当前没有生效的静默" in listed  # none in force yet
    confirmed = await bot.click(request, "批准", user="ou_carol")
    assert confirmed.toast is not None
    assert confirmed.toast["type"] == "success"
    await bot.send("/silences")
    after = card_text((await bot.expect_reply(contains="静默规则")).card)
    assert '#3 `severity!=""`' in after  # in force now
    assert "#1 `{}` · 时长 2h" in after  # still waiting
