"""Durable inbound: committed before acked, duplicates dropped, bad input answered, nothing lost."""

from __future__ import annotations

import json
from typing import Any

from bot.lark.events import MAX_TEXT
from bot.router import Router
from tests.lark.testbot import TestBot, wait_until


async def test_event_is_committed_before_the_ack(testbot: TestBot) -> None:
    result = await testbot.send("/whoami")
    assert result.acked
    # by the time the ack arrived the row existed
    rows = await testbot.rows(
        f"SELECT event_type, message_id FROM inbound_events WHERE event_id = '{result.event_id}'"
    )
    assert rows == [("im.message.receive_v1", result.message_id)]
    await testbot.expect_reply("ou_alice")
    await wait_until(
        lambda: _status(testbot, result.event_id, "done"), what="the row to be marked done"
    )


async def _status(bot: TestBot, event_id: str, wanted: str) -> bool:
    rows = await bot.rows(f"SELECT status FROM inbound_events WHERE event_id = '{event_id}'")
    return rows == [(wanted,)]


async def test_redelivered_event_and_message_are_handled_once(testbot: TestBot) -> None:
    first = await testbot.send("/whoami", event_id="ev-dup-1", message_id="om_dup_1")
    await testbot.expect_reply("ou_alice")
    again = await testbot.send("/whoami", event_id="ev-dup-1", message_id="om_dup_1")
    renamed = await testbot.send("/whoami", event_id="ev-dup-2", message_id="om_dup_1")
    assert first.acked
    assert again.acked
    assert renamed.acked
    await testbot.expect_silence(within=1.0)
    count = await testbot.rows("SELECT count(*) FROM inbound_events WHERE message_id = 'om_dup_1'")
    assert count == [(1,)]


async def test_group_chatter_without_mention_is_ignored(testbot: TestBot) -> None:
    result = await testbot.send("/help", mention_bot=False)
    assert result.acked
    await testbot.expect_silence()
    await wait_until(lambda: _status(testbot, result.event_id, "ignored"), what="ignored row")


async def test_mention_without_command_points_at_help(testbot: TestBot) -> None:
    await testbot.send("服务器还好吗")
    reply = await testbot.expect_reply()
    assert "/help" in reply.text


async def test_p2p_messages_need_no_mention(testbot: TestBot) -> None:
    await testbot.send("/whoami", chat="oc_p2p_alice", mention_bot=False)
    assert "ou_alice" in (await testbot.expect_reply(chat="oc_p2p_alice")).text


async def test_other_bots_are_ignored_unless_alert_senders(make_testbot: Any) -> None:
    bot: TestBot = await make_testbot(settings={"alert_senders": ["ou_carol"]})
    await bot.send("/whoami", user="ou_bob", sender_type="app")
    await bot.expect_silence()
    await bot.send("/whoami", user="ou_carol", sender_type="app")
    assert "ou_carol" in (await bot.expect_reply()).text


async def test_malformed_envelopes_are_acked_and_recorded(testbot: TestBot) -> None:
    # (bytes that are not UTF-8 never reach a handler: the SDK decodes them first and leaves
    # such a frame unacknowledged; Lark sends UTF-8 JSON)
    not_json = await testbot.emulator.deliver_raw(b"not json at all {")
    no_header = await testbot.emulator.deliver_raw(
        {"schema": "2.0", "header": {"event_type": "im.message.receive_v1"}, "event": {}}
    )
    assert not_json.acked
    assert not_json.deliveries == 1
    assert no_header.acked
    assert no_header.deliveries == 1
    rows = await testbot.rows(
        "SELECT status, error FROM inbound_events WHERE event_type = 'malformed' ORDER BY id"
    )
    assert [r[0] for r in rows] == ["ignored", "ignored"]
    assert "not JSON" in rows[0][1]
    assert "event_id" in rows[1][1]
    await testbot.expect_silence()


async def test_unknown_event_types_are_acked_and_kept(testbot: TestBot) -> None:
    envelope = {
        "schema": "2.0",
        "header": {"event_id": "ev-unknown-1", "event_type": "im.chat.disbanded_v1"},
        "event": {"chat_id": "oc_ops"},
    }
    result = await testbot.emulator.deliver_raw(envelope)
    assert result.acked
    rows = await testbot.rows(
        "SELECT status, error FROM inbound_events WHERE event_id = 'ev-unknown-1'"
    )
    assert rows == [("ignored", "unsupported event type")]


async def test_non_json_content_gets_a_clear_answer(testbot: TestBot) -> None:
    emulator = testbot.emulator
    # a message the emulator knows (so the bot can reply to it), with broken content
    message, envelope = emulator._user_message(
        "oc_ops",
        "ou_alice",
        "/whoami",
        mention_bot=True,
        msg_type="text",
        chat_type=None,
        sender_type="user",
        event_id="ev-bad-content",
        message_id=None,
        parent_id=None,
    )
    envelope["event"]["message"]["content"] = "{not json"
    result = await emulator.deliver_raw(envelope)
    assert result.acked
    reply = await testbot.expect_reply()
    assert "无法解析" in reply.text
    assert reply.parent_id == message.message_id
    await wait_until(lambda: _status(testbot, "ev-bad-content", "done"), what="handled row")


async def test_huge_message_is_cut_and_the_user_told(testbot: TestBot) -> None:
    await testbot.send("/whoami " + "x" * (MAX_TEXT * 3))
    note = await testbot.expect_reply()
    assert str(MAX_TEXT) in note.text
    assert "ou_alice" in (await testbot.expect_reply()).text


async def test_forged_and_string_button_values_change_nothing(testbot: TestBot) -> None:
    await testbot.send("/ping")
    card = await testbot.expect_reply(contains="pong")
    before = json.dumps(card.card, sort_keys=True)
    real = next(iter(_values(card)))
    forged = {**real, "chat_id": "oc_dev"}  # signature no longer matches
    for value in (forged, "approve", {"action": "ping.refresh", "v": 1}, 42):
        click = await testbot.click(card, "重新测量", value=value)
        assert click.toast is not None
        assert click.toast["type"] == "error"
        assert "未做任何改动" in click.toast["content"]
        assert click.card is None
    current = testbot.emulator.transcript("oc_ops")
    assert (
        json.dumps(next(m for m in current if m.message_id == card.message_id).card, sort_keys=True)
        == before
    )


def _values(message: Any) -> list[dict[str, Any]]:
    from tests.lark.testbot import card_buttons

    return [v for v in card_buttons(message.card).values() if isinstance(v, dict)]


async def test_button_from_another_chat_is_refused(testbot: TestBot) -> None:
    await testbot.send("/ping", chat="oc_dev")
    dev_card = await testbot.expect_reply(contains="pong", chat="oc_dev")
    await testbot.send("/ping")
    ops_card = await testbot.expect_reply(contains="pong")
    dev_value = _values(dev_card)[0]
    click = await testbot.click(ops_card, "重新测量", value=dev_value)
    assert click.toast is not None
    assert click.toast["type"] == "error"


async def test_handler_error_answers_with_trace_id(make_testbot: Any) -> None:
    broken = Router("broken")

    @broken.command("/boom")
    async def boom() -> None:
        """总是失败。
        Always fails."""
        raise RuntimeError("kaput")

    bot: TestBot = await make_testbot(extra_router=broken)
    result = await bot.send("/boom")
    reply = await bot.expect_reply()
    assert "trace" in reply.text
    await wait_until(lambda: _status(bot, result.event_id, "failed"), what="failed row")


async def test_role_restricted_command(make_testbot: Any) -> None:
    admin = Router("admin")

    @admin.command("/purge", roles=("admin",))
    async def purge() -> None:
        """仅管理员。
        Admins only."""
        return None

    bot: TestBot = await make_testbot(extra_router=admin, settings={"admins": ["ou_carol"]})
    await bot.send("/purge", user="ou_alice")
    assert "没有执行此操作的权限" in (await bot.expect_reply()).text
    await bot.send("/purge", user="ou_carol")
    await bot.expect_silence()


async def test_dropped_connection_reconnects_and_loses_nothing(testbot: TestBot) -> None:
    emulator = testbot.emulator
    assert await emulator.drop_connections() >= 1
    # sent while the bot is away: Lark keeps it until a connection is back
    message = emulator.post_message("oc_ops", "ou_alice", "/whoami")
    reply = await testbot.expect_reply("ou_alice", timeout=15)
    assert reply.parent_id == message.message_id
    await wait_until(lambda: emulator.connections > 0, what="reconnection")


async def test_pending_events_survive_a_restart(make_testbot: Any) -> None:
    first: TestBot = await make_testbot()
    # stop the workers but keep the connection: the event is committed, not handled
    assert first.runtime.inbox is not None
    await first.runtime.inbox.stop()
    result = await first.send("/whoami")
    assert result.acked
    assert await first.rows(
        f"SELECT status FROM inbound_events WHERE event_id = '{result.event_id}'"
    ) == [("pending",)]
    await first.runtime.stop()
    # a new process on the same database and the same (still running) Lark
    second: TestBot = await make_testbot(
        emulator=first.emulator, base_url=first.runtime.target.domain
    )
    reply = await second.expect_reply("ou_alice", timeout=15)
    assert reply.parent_id == result.message_id
    await second.expect_silence(within=1.0)
    await wait_until(lambda: _status(second, result.event_id, "done"), what="done row")


async def test_crash_mid_handling_is_handled_once_after_restart(make_testbot: Any) -> None:
    """The worker dies while handling (its transaction never commits): the next process
    handles the event, and the user sees exactly one answer."""
    import asyncio

    calls: list[str] = []
    entered = asyncio.Event()
    slow = Router("slow")

    @slow.command("/deploy")
    async def deploy(ctx: Any) -> None:
        """部署。
        Deploy."""
        calls.append(ctx.event.event_id)
        if len(calls) == 1:
            entered.set()
            await asyncio.Event().wait()  # hangs until the "crash"
        await ctx.reply_text("deployed once")

    first: TestBot = await make_testbot(extra_router=slow)
    result = await first.send("/deploy")
    await asyncio.wait_for(entered.wait(), 10)
    await first.runtime.stop()  # the process dies mid-handling
    rows = await first.rows(
        f"SELECT status, attempts FROM inbound_events WHERE event_id = '{result.event_id}'"
    )
    assert rows == [("pending", 0)]  # the claim rolled back with the dead transaction

    second: TestBot = await make_testbot(
        emulator=first.emulator, base_url=first.runtime.target.domain, extra_router=slow
    )
    reply = await second.expect_reply("deployed once", timeout=15)
    assert reply.parent_id == result.message_id
    await second.expect_silence(within=1.0)
    assert calls == [result.event_id, result.event_id]
    await wait_until(lambda: _status(second, result.event_id, "done"), what="done row")
