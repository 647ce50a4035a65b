"""A resolved incident's postmortem draft, published as a Feishu document through the emulator
and compared field by field with the incident's own timeline."""

from __future__ import annotations

from typing import Any

from bot.lark.events import card_text
from cards.lists import kind_name
from cards.report import span
from cards.texts import texts
from tests.lark.test_oncall import contract, fire, shows
from tests.lark.testbot import TestBot, card_buttons, wait_until


async def test_a_resolved_incident_gets_a_postmortem_draft_that_follows_its_timeline(
    make_testbot: Any,
) -> None:
    settings = contract(postmortems={"enabled": True})
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    card = await fire(bot, "DiskFull")
    await wait_until(lambda: _settled(bot), timeout=20, what="the workflow to wait for people")
    await bot.sweep()  # level 1 pages the chat
    await bot.send("/ack 1", user="ou_alice")
    await bot.expect_reply(contains="已确认事件 #1")
    await bot.send("/resolve 1 disk cleaned", user="ou_carol")
    await bot.expect_reply(contains="已恢复")
    await bot.sweep()  # the postmortem is drafted

    [document] = bot.emulator.documents.docs.values()
    assert document.title == "复盘：#1 DiskFull"
    lines = document.text().splitlines()
    say = texts("zh")
    [(opened, acked, resolved)] = await bot.rows(
        "SELECT created_at, acknowledged_at, resolved_at FROM incidents"
    )
    assert say("pm.mtta", value=span((acked - opened).total_seconds(), say)) in lines
    assert say("pm.mttr", value=span((resolved - opened).total_seconds(), say)) in lines
    assert "认领人：ou_alice" in lines
    assert "恢复：ou_carol" in lines
    assert "恢复备注：disk cleaned" in lines
    events = await bot.rows(
        "SELECT kind, actor FROM incident_events WHERE incident_id = 1 "
        "AND id < (SELECT id FROM incident_events WHERE kind = 'postmortem.drafted') ORDER BY id"
    )
    start = lines.index("时间线") + 1
    timeline = lines[start : start + len(events)]
    for (kind, actor), line in zip(events, timeline, strict=True):
        assert f" · {kind_name(kind, say)} · " in line
        if actor.startswith("ou_"):
            assert actor in line
    assert lines[start + len(events)] == "诊断与证据"  # every entry, nothing else
    assert {"incident.opened", "page.sent", "incident.acknowledged"} <= {k for k, _ in events}
    assert "为「DiskFull」编写处置手册" in lines  # no runbook matched it

    linked = await shows(bot, card, "复盘草稿")
    assert f"https://feishu.cn/docx/{document.document_id}" in card_text(linked.card)
    await bot.send("/postmortem 1", user="ou_bob")  # drafted again, as a new document
    again = await bot.expect_reply(contains="已生成事件 #1 的复盘草稿")
    assert len(bot.emulator.documents.docs) == 2
    assert await bot.rows("SELECT drafts FROM postmortems") == [(2,)]
    newest = next(d for d in bot.emulator.documents.docs if d != document.document_id)
    assert newest in again.text


async def test_a_postmortem_waits_for_the_incident_to_be_resolved(make_testbot: Any) -> None:
    """The desk refuses to draft one for an incident still open, or for none at all: the
    reply says why, and no document is made."""
    bot: TestBot = await make_testbot(settings=contract(), incidents=True)
    await fire(bot, "DiskFull")
    await wait_until(lambda: _settled(bot), timeout=20, what="the workflow to wait for people")
    await bot.send("/postmortem 1", user="ou_bob")
    reply = await bot.expect_reply(contains="#1")
    assert reply.text == texts("zh")("postmortem.not_resolved", id=1)
    await bot.send("/postmortem #42", user="ou_bob")
    assert (await bot.expect_reply()).text == texts("zh")("incident.not_found", id=42)
    assert bot.emulator.documents.docs == {}
    assert await bot.rows("SELECT count(*) FROM postmortems") == [(0,)]


async def _settled(bot: TestBot) -> bool:
    """The workflow waits for people (at a gate, escalated, or open with no runbook to follow):
    nothing moves by itself."""
    [(status,)] = await bot.rows("SELECT status FROM incidents")
    unknown = await bot.rows("SELECT 1 FROM incident_events WHERE kind = 'workflow.no_runbook'")
    return bool(status in ("awaiting_approval", "escalated") or (status == "open" and unknown))


async def test_an_approver_turns_the_action_items_into_feishu_tasks(make_testbot: Any) -> None:
    settings = contract(postmortems={"enabled": True})
    bot: TestBot = await make_testbot(settings=settings, incidents=True)
    await fire(bot, "DiskFull")
    await wait_until(lambda: _settled(bot), timeout=20, what="the workflow to wait for people")
    await bot.send("/ack 1", user="ou_alice")
    # handled before the /resolve: two inbox workers may take them in either order, and a
    # resolved incident can no longer be acknowledged (the tasks would have no owner)
    await bot.expect_reply(contains="已确认事件 #1")
    await bot.send("/resolve 1", user="ou_carol")
    await bot.expect_reply(contains="已恢复")
    await bot.sweep()
    offer = await bot.expect_reply(contains="改进项")
    assert "为「DiskFull」编写处置手册" in card_text(offer.card)
    offered = [line[2:] for line in card_text(offer.card).splitlines() if line.startswith("- ")]
    value = card_buttons(offer.card)["创建飞书任务"]

    refused = await bot.click(offer, "创建飞书任务", user="ou_bob")  # not an approver
    assert refused.toast is not None
    assert refused.toast["type"] == "error"
    assert bot.emulator.documents.tasks == {}
    made = await bot.click(offer, "创建飞书任务", user="ou_carol")
    assert made.toast is not None
    assert made.toast["type"] == "success"
    tasks = list(bot.emulator.documents.tasks.values())
    assert [t.summary for t in tasks] == offered  # each item of the card, once
    assert "为「DiskFull」编写处置手册" in offered
    assert all(t.assignees == ("ou_alice",) for t in tasks)  # who acknowledged it owns them
    again = await bot.click(offer, "创建飞书任务", user="ou_carol", value=value)
    assert again.toast is not None
    assert again.toast["type"] == "info"
    assert len(bot.emulator.documents.tasks) == len(offered)
    [(guids,)] = await bot.rows("SELECT tasks FROM postmortems")
    assert guids == [t.guid for t in tasks]


async def test_with_a_model_it_words_the_summary_and_nothing_else(make_testbot: Any) -> None:
    import json

    from tests.support.fake_llm import FakeTurn, fake_llm

    worded = "数据库主机磁盘写满触发告警，值班同学认领后清理了日志，服务随即恢复。"
    async with fake_llm() as fake:
        diagnosis = {"summary": "磁盘写满", "hypotheses": [], "evidence": [], "next_checks": []}
        fake.script(FakeTurn(text=json.dumps(diagnosis)), FakeTurn(text=worded))
        settings = contract(
            postmortems={"enabled": True},
            LLM_PROVIDER="openai",
            LLM_MODEL="gpt-test",
            OPENAI_API_KEY="sk-test-0123456789",
            OPENAI_BASE_URL=f"{fake.base_url}/v1",
        )
        bot: TestBot = await make_testbot(settings=settings, incidents=True)
        await fire(bot, "DiskFull")
        await wait_until(lambda: _settled(bot), timeout=20, what="the workflow to wait for people")
        await bot.send("/resolve 1 logs cleaned", user="ou_carol")
        await bot.expect_reply(contains="已恢复")
        await bot.sweep()
        [document] = bot.emulator.documents.docs.values()
        lines = document.text().splitlines()
        assert worded in lines
        assert texts("zh")("pm.model_note") in lines
        assert "恢复备注：logs cleaned" in lines  # the facts are still the template's
        purposes = [r[0] for r in await bot.rows("SELECT purpose FROM llm_turns ORDER BY id")]
        assert purposes[-1] == "postmortem"
        asked = json.dumps(fake.requests[-1].body, ensure_ascii=False)
        assert "DiskFull" in asked
        assert "sk-test-0123456789" not in asked
