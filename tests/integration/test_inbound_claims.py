"""The inbox's claims of webhook deliveries (`storage.inbound.claim_batch`) on real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from bot.lark.inbox import Inbox
from storage import inbound
from storage.database import Database, driver_url
from tests.support.wait import wait_until


async def test_a_batch_of_alert_deliveries_is_one_chats(migrated_db: Database) -> None:
    """A new problem in one chat is not claimed with (and held behind) another chat's storm."""
    for n, chat in enumerate(["oc_storm", "oc_other", "oc_storm", "oc_storm"]):
        await inbound.record(
            migrated_db,
            event_id=f"webhook:{n}",
            event_type="alert.alertmanager",
            payload={"chat_id": chat, "alerts": []},
            source="webhook",
        )
    async with inbound.claim_batch(migrated_db, worker="w1", alerts=20) as storm:
        assert [row.event_id for row in storm] == ["webhook:0", "webhook:2", "webhook:3"]
        async with inbound.claim_batch(migrated_db, worker="w2", alerts=20) as other:
            assert [row.event_id for row in other] == ["webhook:1"]
            for row in other:
                row.status = "done"
        for row in storm:
            row.status = "done"
    assert await inbound.pending_count(migrated_db) == 0


async def test_deliveries_claimed_together_cost_no_empty_claims(
    migrated_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten deliveries committed while the worker triages an earlier one are claimed in one
    batch; the ten wake-ups they sent do not each make a claim that finds nothing (a
    transaction per delivery in a storm): one claim confirms nothing is left."""
    held, batches, empty = asyncio.Event(), list[list[str]](), [0]
    claim = inbound.claim_batch

    @contextlib.asynccontextmanager
    async def counted(db: Database, *, worker: str, alerts: int) -> AsyncIterator[Any]:
        async with claim(db, worker=worker, alerts=alerts) as rows:
            empty[0] += not rows
            yield rows

    async def triage(deliveries: list[tuple[str, dict[str, Any], str]]) -> list[Any]:
        batches.append([event_id for _, _, event_id in deliveries])
        await held.wait()
        return ["done"] * len(deliveries)

    monkeypatch.setattr(inbound, "claim_batch", counted)
    inbox = Inbox(migrated_db, workers=1, alerts=triage)

    async def deliver(n: int) -> None:
        payload = {"chat_id": "oc_storm", "alerts": []}
        await inbound.record(
            migrated_db, event_id=f"webhook:{n}", event_type="alert.am", payload=payload
        )
        inbox.wake()

    inbox.start()
    try:
        await deliver(0)
        await wait_until(lambda: batches == [["webhook:0"]], what="the first delivery claimed")
        empty[0] = 0  # (the start's look for what a previous run left may have found nothing)
        for n in range(1, 11):
            await deliver(n)
        held.set()
        await wait_until(lambda: len(batches) == 2, what="the others claimed together")
        assert batches[1] == [f"webhook:{n}" for n in range(1, 11)]
        # the worker is done once no wake-up is left for it (each would be one more claim)
        await wait_until(
            lambda: empty[0] >= 1 and inbox._signals.locked(), what="the worker waiting again"
        )
        assert empty[0] == 1
        assert await inbound.pending_count(migrated_db) == 0
    finally:
        await inbox.stop()


async def test_an_event_recorded_on_a_connection_the_server_closed_is_kept(
    migrated_db: Database,
) -> None:
    """Postgres ends the connection `record` used last (a restart, an idle timeout, an
    administrator) and the bot has not read the news yet: the next event is still recorded,
    once, and a redelivery of it is still known as one."""

    async def record(n: int) -> int | None:
        return await inbound.record(
            migrated_db, event_id=f"lark:{n}", event_type="im.message.receive_v1", payload={}
        )

    first = await record(1)
    assert first is not None
    # blocking calls, so that the event loop cannot read the server's goodbye in between;
    # pg_terminate_backend(pid, timeout) returns once the backend is gone (false: not in time)
    with psycopg.connect(driver_url(migrated_db.url, ""), autocommit=True) as admin:
        ended = admin.execute(
            "SELECT array_agg(pg_terminate_backend(pid, 10000)) FROM (SELECT pid "
            "FROM pg_stat_activity WHERE application_name = 'larkops' AND state = 'idle' "
            "OFFSET 0) AS idle"
        ).fetchone()
    assert ended is not None
    assert ended[0]
    assert all(ended[0])
    second = await record(2)
    assert second is not None
    assert second > first
    assert await record(2) is None
    assert await inbound.pending_count(migrated_db) == 2


async def test_a_claims_outcome_is_kept_for_each_delivery(migrated_db: Database) -> None:
    """Each delivery claimed together keeps its own outcome: handled ones their status and
    when, a deferred one its error and stays pending for the next try; each counts the try
    and who made it."""
    for n in range(3):
        await inbound.record(
            migrated_db,
            event_id=f"webhook:{n}",
            event_type="alert.alertmanager",
            payload={"chat_id": "oc_storm", "alerts": []},
            source="webhook",
        )
    async with inbound.claim_batch(migrated_db, worker="w1", alerts=20) as rows:
        assert [row.attempts for row in rows] == [1, 1, 1]
        rows[0].status = "done"
        rows[1].status, rows[1].error = "pending", "retry later: Lark 503"
        rows[2].status, rows[2].error = "failed", "bad"
    async with migrated_db.session() as session:
        kept = (
            await session.execute(
                text(
                    "SELECT event_id, status, error, attempts, claimed_by, "
                    "claimed_at IS NOT NULL, handled_at IS NOT NULL "
                    "FROM inbound_events ORDER BY id"
                )
            )
        ).all()
    assert [tuple(row) for row in kept] == [
        ("webhook:0", "done", None, 1, "w1", True, True),
        ("webhook:1", "pending", "retry later: Lark 503", 1, "w1", True, False),
        ("webhook:2", "failed", "bad", 1, "w1", True, True),
    ]
    async with inbound.claim_batch(migrated_db, worker="w2", alerts=20) as again:
        assert [(row.event_id, row.attempts) for row in again] == [("webhook:1", 2)]
        again[0].status, again[0].error = "done", None
    async with migrated_db.session() as session:
        second = (
            await session.execute(
                text(
                    "SELECT status, error, attempts, claimed_by FROM inbound_events WHERE id = :id"
                ),
                {"id": again[0].id},
            )
        ).one()
    assert tuple(second) == ("done", None, 2, "w2")


async def test_events_are_recorded_behind_a_pooler_without_prepared_statements(
    migrated_db: Database,
) -> None:
    """`DATABASE_URL` may turn SQLAlchemy's prepared-statement cache off (a PgBouncer in
    transaction mode): `record`'s own connections follow it, and still record."""
    url = (
        f"{migrated_db.url}{'&' if '?' in migrated_db.url else '?'}prepared_statement_cache_size=0"
    )
    db = await Database.open(url)
    try:
        assert db.autocommit.connect["statement_cache_size"] == 0
        assert await inbound.record(db, event_id="lark:1", event_type="x", payload={}) is not None
    finally:
        await db.close()
    assert await inbound.pending_count(migrated_db) == 1
