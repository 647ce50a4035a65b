"""Plugins from the chat: /plugins, /plugin, /run (at once, by approval card, refused), /runbooks,
/policy and /policy check — through the emulator, the real policy, plugins and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.lark.events import card_text
from storage import schedules
from storage.models import Schedule
from tests.lark.testbot import TestBot, card_buttons, wait_until
from tests.support.health import health_service
from workflows.schedule.spec import Once

APPROVE, REJECT = "批准", "拒绝"


def settings_for(state: Path, **policy: Any) -> dict[str, Any]:
    return {
        "approvers": ["ou_bob", "ou_carol"],
        "plugins": {
            "settings": {
                "command": {
                    "templates": {
                        "make_marker": {
                            "argv": ["/usr/bin/touch", f"{state}/marker-{{name}}"],
                            "params": {"name": "^[a-z]{1,20}$"},
                            "risk": "medium",
                            "timeout": 10,
                        }
                    }
                }
            }
        },
        "policy": {
            "approver_lists": {"leads": ["ou_carol"]},
            "approvers_by_risk": {"high": "leads"},
            **policy,
        },
    }


async def started(make_testbot: Any, tmp_path: Path, **policy: Any) -> TestBot:
    bot: TestBot = await make_testbot(settings=settings_for(tmp_path, **policy))
    return bot


async def test_catalogue_and_one_plugin(make_testbot: Any, tmp_path: Path) -> None:
    bot = await started(make_testbot, tmp_path)
    await bot.send("/plugins")
    listing = card_text((await bot.expect_reply("插件")).card)
    for name in ("http_check", "tcp_check", "dns_resolve", "host_disk", "command"):
        assert name in listing
    assert listing.index("诊断") < listing.index("修复")
    await bot.send("/plugin tcp_check")
    detail = card_text((await bot.expect_reply("tcp_check")).card)
    assert "host" in detail
    assert "port" in detail
    assert "/run tcp_check host=… port=…" in detail
    await bot.send("/plugin tcp_chek")
    unknown = await bot.expect_reply("tcp_chek")
    assert "tcp_check" in unknown.text  # suggests the close name


async def test_diagnostic_runs_at_once(make_testbot: Any, tmp_path: Path) -> None:
    bot = await started(make_testbot, tmp_path)
    async with health_service(tmp_path / "up") as url:
        (tmp_path / "up").touch()
        await bot.send(f"/run http_check url={url}")
        result = card_text((await bot.expect_reply("http_check")).card)
    assert "返回 200，符合预期" in result  # the plugin's finding in the chat's words
    rows = await bot.rows("SELECT plugin, status, auto FROM executions")
    assert rows == [("http_check", "succeeded", False)]
    audit = await bot.rows("SELECT kind FROM incident_events WHERE incident_id IS NULL")
    assert [kind for (kind,) in audit] == ["action.auto", "action.executed"]


async def test_fix_waits_for_an_approver_and_runs_once(make_testbot: Any, tmp_path: Path) -> None:
    bot = await started(make_testbot, tmp_path)
    await bot.send("/run command template=make_marker args.name=web")
    card = await bot.expect_reply("command")
    value = card_buttons(card.card)[APPROVE]
    assert not (tmp_path / "marker-web").exists()
    own = await bot.click(card, APPROVE, user="ou_alice")  # the requester is no approver
    assert own.toast is not None
    assert own.toast["type"] == "error"
    click = await bot.click(card, APPROVE, user="ou_bob")
    assert click.toast is not None
    assert click.toast["type"] == "success"
    await wait_until(lambda: (tmp_path / "marker-web").exists(), what="the approved fix")
    again = await bot.click(card, APPROVE, user="ou_carol", value=value)
    assert again.toast is not None
    assert again.toast["type"] == "error"
    await wait_until(lambda: _status(bot, "succeeded"), what="the action to be marked succeeded")
    assert await bot.rows("SELECT count(*) FROM executions") == [(1,)]

    def patched() -> str:
        message = next(
            m for m in bot.emulator.transcript(bot.chat) if m.message_id == card.message_id
        )
        return card_text(message.card)

    # the card is patched after the row is marked: wait for the patch, not for the row
    await wait_until(
        lambda: "command succeeded" in patched() or "成功" in patched(),
        what="the card to show the result",
    )
    assert "<at id=ou_bob></at>" in patched()  # the approver as a mention, not a raw record
    assert "open_id" not in patched()
    last = next(m for m in bot.emulator.transcript(bot.chat) if m.message_id == card.message_id)
    assert APPROVE not in card_buttons(last.card)


async def _status(bot: TestBot, wanted: str) -> bool:
    return await bot.rows("SELECT status FROM actions") == [(wanted,)]


async def test_rejected_and_refused_runs_change_nothing(make_testbot: Any, tmp_path: Path) -> None:
    bot = await started(make_testbot, tmp_path)
    await bot.send("/run command template=make_marker args.name=api")
    card = await bot.expect_reply("command")
    await bot.click(card, REJECT, user="ou_bob")
    await wait_until(lambda: _status(bot, "rejected"), what="the rejection")
    await bot.send('/run command template=make_marker args.name="x; rm -rf /"')
    refused = card_text((await bot.expect_reply("⛔")).card)
    assert "does not match" in refused or "不匹配" in refused or "无效" in refused
    assert "rm -rf" not in refused.split("```")[0]  # the reason never echoes the value
    await bot.send("/run command template=rm_everything")
    await bot.expect_reply("⛔")
    await bot.send("/run command template=make_marker args.name=ok args.name=no")
    assert "args.name 重复给出" in (await bot.expect_reply("参数")).text
    assert not list(tmp_path.glob("marker-*"))
    assert await bot.rows("SELECT count(*) FROM executions") == [(0,)]


async def test_policy_card_and_check(make_testbot: Any, tmp_path: Path) -> None:
    bot = await started(
        make_testbot,
        tmp_path,
        max_per_target_per_hour=5,
        targets={"hosts": ["127.0.0.1", "localhost"]},
    )
    await bot.send("/policy")
    shown = card_text((await bot.expect_reply("当前策略")).card)
    assert "leads (1)" in shown
    assert "hosts: 127.0.0.1, localhost" in shown
    # the sandbox's fetch default, and what to set with a real app
    assert "可访问的地址" in shown
    assert "本地沙箱：不限制" in shown
    await bot.send("/policy check tcp_check host=10.0.0.9 port=22")
    check = card_text((await bot.expect_reply("策略检查")).card)
    assert "10.0.0.9" in check
    assert "不在策略允许的范围内" in check
    await bot.send("/policy check command template=make_marker args.name=web")
    gated = card_text((await bot.expect_reply("策略检查")).card)
    assert "需要审批" in gated
    assert "command:make_marker:name=web" in gated
    assert await bot.rows("SELECT count(*) FROM actions") == [(0,)]  # a check runs nothing


async def test_expired_action_gate_runs_nothing(make_testbot: Any, tmp_path: Path) -> None:
    bot = await started(make_testbot, tmp_path)
    await bot.send("/run command template=make_marker args.name=late")
    card = await bot.expect_reply("command")
    value = card_buttons(card.card)[APPROVE]
    async with bot.db.engine.begin() as conn:
        await conn.execute(text("UPDATE approvals SET expires_at = now() - interval '1 second'"))
    assert bot.runtime.operations is not None
    assert await bot.runtime.operations.sweep_expired() == 1
    await wait_until(lambda: _status(bot, "expired"), what="the expiry")
    click = await bot.click(card, APPROVE, user="ou_bob", value=value)
    assert click.toast is not None
    assert click.toast["type"] == "error"
    assert not (tmp_path / "marker-late").exists()


async def test_a_replayed_run_request_is_the_same_action(make_testbot: Any, tmp_path: Path) -> None:
    """A /run delivery handled again (a crash after its card, before its inbox row was done)
    asks for the same action: no second action, no second card, no second approval."""
    bot = await started(make_testbot, tmp_path)
    sent = await bot.send("/run command template=make_marker args.name=web")
    card = await bot.expect_reply("command")
    await wait_until(lambda: _status(bot, "pending"), what="the action at its gate")
    await wait_until(lambda: _inbound_status(bot, sent.event_id, "done"), what="the delivery")
    # the delivery is claimed again, as the inbox does with a row a dead process left (a
    # crash after the handler, before the inbox row and the dispatch mark were written)
    await bot.runtime.coordination.forget(f"dispatched:{sent.event_id}")
    async with bot.db.session() as session:
        await session.execute(
            text("UPDATE inbound_events SET status = 'pending' WHERE event_id = :id"),
            {"id": sent.event_id},
        )
    bot.runtime.wake()
    await wait_until(
        lambda: _inbound_status(bot, sent.event_id, "done"), what="the delivery handled again"
    )
    assert await bot.rows("SELECT count(*) FROM actions") == [(1,)]
    cards = [m for m in bot.emulator.transcript(bot.chat) if m.card is not None]
    assert [m.message_id for m in cards] == [card.message_id]
    await bot.click(card, APPROVE, user="ou_bob")
    await wait_until(lambda: _status(bot, "succeeded"), what="the one action to run")
    assert await bot.rows("SELECT count(*) FROM executions") == [(1,)]


async def _inbound_status(bot: TestBot, event_id: str, wanted: str) -> bool:
    async with bot.db.session() as session:
        found = await session.scalar(
            text("SELECT status FROM inbound_events WHERE event_id = :id"), {"id": event_id}
        )
    return found == wanted


async def test_a_scheduled_fix_fired_again_is_the_same_action(
    make_testbot: Any, tmp_path: Path
) -> None:
    """A scheduled fix whose firing runs again (its replica died after asking for the fix,
    before the card was posted or the run was finished) asks for the same action: one action,
    one approval card, one run once approved."""
    bot = await started(make_testbot, tmp_path)
    later = datetime.now(UTC) + timedelta(days=300)
    row = await schedules.create(
        bot.db,
        chat_id=bot.chat,
        created_by="ou_alice",
        source_text="每天早上重启 web",
        task="重启 web",
        timezone="Asia/Shanghai",
        kind="once",
        spec=Once(later, "Asia/Shanghai").to_json(),
        cron=None,
        run_at=later,
        action={
            "type": "fix",
            "plugin": "command",
            "params": {"template": "make_marker", "args": {"name": "web"}},
        },
        next_run_at=later,
    )
    async with bot.db.session() as session:
        schedule = await session.get(Schedule, row.id)
    assert schedule is not None
    run = await schedules.claim_run(bot.db, row.id, later, replica="test")
    assert run is not None
    runner = bot.runtime.scheduling.runner
    await runner.run(schedule, run, False)
    await wait_until(lambda: _status(bot, "pending"), what="the fix at its gate")
    await runner.run(schedule, run, False)  # the same firing, run again
    assert await bot.rows("SELECT count(*) FROM actions") == [(1,)]
    cards = [m for m in bot.emulator.transcript(bot.chat) if m.card is not None]
    assert len(cards) == 1, [card_text(m.card) for m in cards]
    await bot.click(cards[0], APPROVE, user="ou_bob")
    await wait_until(lambda: _status(bot, "succeeded"), what="the one action to run")
    assert await bot.rows("SELECT count(*) FROM executions") == [(1,)]
    assert (tmp_path / "marker-web").exists()


async def test_a_fix_whose_card_was_never_posted_is_shown_by_the_sweep(
    make_testbot: Any, tmp_path: Path
) -> None:
    """A fix asked for by a process that died before posting its card (a scheduled fix's
    replica) waits at a gate nobody can see: the sweep posts its card to the chat once, and the
    approval runs it once."""
    bot = await started(make_testbot, tmp_path)
    ops = bot.runtime.operations
    params = {"template": "make_marker", "args": {"name": "db"}}
    outcome = await ops.request(bot.chat, "ou_alice", "command", params, force_approval=True)
    assert outcome.gate is not None  # the gate is open; no card was posted (the asker died)
    await bot.runtime.sweep()
    assert not [m for m in bot.emulator.transcript(bot.chat) if m.card is not None]
    async with bot.db.session() as session:  # the gate has waited longer than a requester would
        await session.execute(
            text("UPDATE approvals SET created_at = now() - interval '5 minutes'")
        )
    await bot.runtime.sweep()
    await bot.runtime.sweep()  # a second round posts nothing more
    cards = [m for m in bot.emulator.transcript(bot.chat) if m.card is not None]
    assert len(cards) == 1, [card_text(m.card) for m in cards]
    assert APPROVE in card_buttons(cards[0].card)
    await bot.click(cards[0], APPROVE, user="ou_bob")
    await wait_until(lambda: _status(bot, "succeeded"), what="the fix to run")
    assert await bot.rows("SELECT count(*) FROM executions") == [(1,)]
    assert (tmp_path / "marker-db").exists()
