"""Migrations on the real embedded Postgres: the schema appears, goes, and comes back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.database import Database
from storage.migration import current_revision, downgrade, head_revision, upgrade
from storage.models import Base

TABLES = {
    "silences",
    "api_keys",
    "console_sessions",
    "actions",
    "inbound_events",
    "incidents",
    "alerts",
    "incident_events",
    "diagnoses",
    "proposals",
    "approvals",
    "executions",
    "llm_turns",
    "knowledge",
    "schedules",
    "schedule_runs",
    "conversations",
    "conversation_messages",
    "dedupe_overrides",
    "triaged_deliveries",
    "council_batches",
    "council_tasks",
    "pages",
    "oncall_overrides",
    "oncall_handoffs",
    "war_rooms",
    "postmortems",
}


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        return {row[0] for row in rows} - {"alembic_version"}


async def test_upgrade_downgrade_upgrade_round_trip(fresh_db: Database) -> None:
    assert await _tables(fresh_db) == set()

    assert await upgrade(fresh_db) is True
    assert await _tables(fresh_db) == TABLES
    assert await current_revision(fresh_db) == head_revision()

    await downgrade(fresh_db, "base")
    assert await _tables(fresh_db) == set()
    assert await current_revision(fresh_db) is None

    assert await upgrade(fresh_db) is True
    assert await _tables(fresh_db) == TABLES
    # a second upgrade finds nothing to do
    assert await upgrade(fresh_db) is False


async def test_pgvector_extension_is_created(migrated_db: Database) -> None:
    async with migrated_db.engine.connect() as conn:
        version = await conn.scalar(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        )
    assert version is not None


async def test_models_and_migrations_agree(migrated_db: Database) -> None:
    """A model change without a migration (or the reverse) fails here."""

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with migrated_db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_inbound_events_reject_duplicate_event_and_message_ids(
    migrated_db: Database,
) -> None:
    insert = text(
        "INSERT INTO inbound_events (event_id, message_id, event_type, payload) "
        "VALUES (:e, :m, 'im.message.receive_v1', '{}') ON CONFLICT DO NOTHING RETURNING id"
    )
    async with migrated_db.session() as session:
        first = (await session.execute(insert, {"e": "ev1", "m": "om1"})).scalar()
        same_event = (await session.execute(insert, {"e": "ev1", "m": "om2"})).scalar()
        same_message = (await session.execute(insert, {"e": "ev2", "m": "om1"})).scalar()
        no_message = (await session.execute(insert, {"e": "ev3", "m": None})).scalar()
        another_no_message = (await session.execute(insert, {"e": "ev4", "m": None})).scalar()
    assert first is not None
    assert same_event is None
    assert same_message is None
    assert no_message is not None
    assert another_no_message is not None
