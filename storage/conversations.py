"""Conversations with the chat agent: one per thread, its messages kept short and redacted.

A new @bot question opens a conversation keyed by its own message id; a reply in that thread
(Lark gives it the same `root_id`) continues it. Only the newest `MAX_STORED` messages of a
conversation are kept; the prompt takes the newest ones that fit (`history`), never starting
in the middle of a tool exchange.

Usage::

    talk = await open_conversation(db, "oc_1", "om_root", "ou_alice")
    await append(db, talk.id, [{"role": "user", "content": "…", "message_id": "om_root"}])
    past = await history(db, talk.id, max_chars=24_000)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from storage.database import Database
from storage.models import Conversation, ConversationMessage

MAX_STORED = 120  # messages kept per conversation


async def open_conversation(
    db: Database, chat_id: str, root_message_id: str, started_by: str
) -> Conversation:
    """The conversation of a thread, created on first use (twice is once)."""
    async with db.session() as session:
        await session.execute(
            insert(Conversation)
            .values(chat_id=chat_id, root_message_id=root_message_id, started_by=started_by)
            .on_conflict_do_nothing(constraint="uq_conversations_root")
        )
        row = await session.scalar(
            select(Conversation).where(
                Conversation.chat_id == chat_id, Conversation.root_message_id == root_message_id
            )
        )
    assert row is not None
    return row


async def find(db: Database, chat_id: str, root_message_id: str) -> Conversation | None:
    async with db.session() as session:
        return await session.scalar(
            select(Conversation).where(
                Conversation.chat_id == chat_id, Conversation.root_message_id == root_message_id
            )
        )


async def asked(db: Database, conversation_id: int, message_id: str) -> bool:
    """Whether the question in Lark message `message_id` is already in the conversation."""
    async with db.session() as session:
        found = await session.scalar(
            select(ConversationMessage.id)
            .where(
                ConversationMessage.conversation_id == conversation_id,
                ConversationMessage.message_id == message_id,
            )
            .limit(1)
        )
    return found is not None


async def append(db: Database, conversation_id: int, messages: Sequence[dict[str, Any]]) -> None:
    """Add messages (dicts of ConversationMessage columns) in order; prune the oldest."""
    if not messages:
        return
    questions = sum(1 for m in messages if m.get("role") == "user")
    async with db.session() as session:
        talk = await session.get(Conversation, conversation_id, with_for_update=True)
        if talk is None:
            return
        last = await session.scalar(
            select(func.coalesce(func.max(ConversationMessage.seq), 0)).where(
                ConversationMessage.conversation_id == conversation_id
            )
        )
        seq = int(last or 0)
        for message in messages:
            seq += 1
            session.add(ConversationMessage(conversation_id=conversation_id, seq=seq, **message))
        talk.questions += questions
        talk.updated_at = datetime.now(UTC)
        await session.flush()
        await session.execute(
            delete(ConversationMessage).where(
                ConversationMessage.conversation_id == conversation_id,
                ConversationMessage.seq <= seq - MAX_STORED,
            )
        )


async def history(
    db: Database, conversation_id: int, *, max_chars: int, max_messages: int = 60
) -> list[ConversationMessage]:
    """The newest messages that fit in `max_chars`, oldest first, starting at a question."""
    async with db.session() as session:
        rows = (
            await session.scalars(
                select(ConversationMessage)
                .where(ConversationMessage.conversation_id == conversation_id)
                .order_by(ConversationMessage.seq.desc())
                .limit(max_messages)
            )
        ).all()
    kept: list[ConversationMessage] = []
    size = 0
    for row in rows:  # newest first
        size += len(row.content) + len(str(row.tool_calls))
        if size > max_chars and kept:
            break
        kept.append(row)
    kept.reverse()
    while kept and kept[0].role != "user":
        kept.pop(0)  # never begin with an answer to a question that was cut off
    return kept


async def set_answering(db: Database, conversation_id: int, message_id: str | None) -> None:
    """Mark (or clear) the answer card being streamed."""
    async with db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(
                answering_message_id=message_id,
                answering_since=datetime.now(UTC) if message_id else None,
            )
        )


async def interrupted(db: Database, older_than: timedelta) -> list[tuple[int, str, str]]:
    """Answers left unfinished (by a process that stopped) for longer than `older_than`, as
    (conversation id, chat id, answer card message id); each is cleared as it is returned, so
    one replica reports it."""
    cutoff = datetime.now(UTC) - older_than
    async with db.session() as session:
        rows = (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.answering_message_id.is_not(None),
                    Conversation.answering_since < cutoff,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        found = [(row.id, row.chat_id, str(row.answering_message_id)) for row in rows]
        for row in rows:
            row.answering_message_id, row.answering_since = None, None
    return found
