"""Conversations in Postgres: one per thread, questions counted, history bounded and never
starting mid-exchange, interrupted answers reported once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from storage import conversations
from storage.database import Database
from workflows.chat.prompt import to_messages, to_rows
from workflows.llm.model import Message, ToolCall


async def test_one_conversation_per_thread(migrated_db: Database) -> None:
    first = await conversations.open_conversation(migrated_db, "oc_1", "om_root", "ou_a")
    again = await conversations.open_conversation(migrated_db, "oc_1", "om_root", "ou_b")
    other = await conversations.open_conversation(migrated_db, "oc_2", "om_root", "ou_a")
    assert first.id == again.id
    assert again.started_by == "ou_a"
    assert other.id != first.id
    assert await conversations.find(migrated_db, "oc_1", "om_nope") is None


async def test_history_round_trips_tool_exchanges(migrated_db: Database) -> None:
    talk = await conversations.open_conversation(migrated_db, "oc_1", "om_r", "ou_a")
    call = ToolCall("call_1", "list_incidents", {"status": "active"}, '{"status":"active"}')
    said = [
        Message("user", "有哪些事件？"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '<data kind="tool_result">{}</data>', tool_call_id="call_1", name="x"),
        Message("assistant", "没有进行中的事件。"),
    ]
    rows = to_rows(said)
    rows[0]["message_id"] = "om_r"
    await conversations.append(migrated_db, talk.id, rows)
    back = to_messages(await conversations.history(migrated_db, talk.id, max_chars=10_000))
    assert back == said
    assert await conversations.asked(migrated_db, talk.id, "om_r")
    assert not await conversations.asked(migrated_db, talk.id, "om_other")
    refreshed = await conversations.find(migrated_db, "oc_1", "om_r")
    assert refreshed is not None
    assert refreshed.questions == 1


async def test_history_is_bounded_and_starts_at_a_question(migrated_db: Database) -> None:
    talk = await conversations.open_conversation(migrated_db, "oc_1", "om_long", "ou_a")
    for n in range(10):
        await conversations.append(
            migrated_db,
            talk.id,
            [
                {"role": "user", "content": f"question {n} " + "x" * 500},
                {"role": "assistant", "content": f"answer {n} " + "y" * 500},
            ],
        )
    kept = await conversations.history(migrated_db, talk.id, max_chars=2_500)
    assert kept[0].role == "user"
    assert kept[-1].content.startswith("answer 9")
    assert sum(len(row.content) for row in kept) <= 2_500 + 600
    assert [row.content.split()[1] for row in kept if row.role == "user"] == ["8", "9"]


async def test_only_the_newest_messages_are_stored(migrated_db: Database) -> None:
    talk = await conversations.open_conversation(migrated_db, "oc_1", "om_many", "ou_a")
    rows = [{"role": "user" if n % 2 == 0 else "assistant", "content": str(n)} for n in range(130)]
    await conversations.append(migrated_db, talk.id, rows)
    async with migrated_db.engine.connect() as conn:
        stored = (
            await conn.execute(
                text(
                    "SELECT min(seq), count(*) FROM conversation_messages "
                    "WHERE conversation_id = :c"
                ),
                {"c": talk.id},
            )
        ).one()
    assert tuple(stored) == (11, conversations.MAX_STORED)


async def test_interrupted_answers_are_reported_once(migrated_db: Database) -> None:
    talk = await conversations.open_conversation(migrated_db, "oc_1", "om_cut", "ou_a")
    await conversations.set_answering(migrated_db, talk.id, "om_card")
    assert await conversations.interrupted(migrated_db, timedelta(minutes=5)) == []  # too fresh
    async with migrated_db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE conversations SET answering_since = now() - interval '1 hour'")
        )
    found = await conversations.interrupted(migrated_db, timedelta(minutes=5))
    assert found == [(talk.id, "oc_1", "om_card")]
    assert await conversations.interrupted(migrated_db, timedelta(minutes=5)) == []
