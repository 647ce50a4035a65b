"""Changes in Postgres wake the loops that wait for them (storage.notices over the one change
feed, migration 0017): a loop with nothing in flight sleeps until a row it follows changes, not
every few seconds; a statement that changes no row (a sweep finding nothing) wakes nobody, or
the sweeps would wake each other for ever; an alert's repeat (folded into its incident) wakes
nobody either, or a storm would notify once per alert; and the loops and the REST API's event
stream listen on one connection."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import text

from storage.changes import ChangeFeed
from storage.models import Incident
from storage.notices import Notices, paced
from tests.conftest import World
from tests.support.cancellation import cancel_at_every_turn
from tests.support.wait import wait_until

QUIET = 600.0  # longer than any test: only a change can wake the loop


async def open_incident(world: World, title: str) -> None:
    async with world.db.session() as session:
        await session.execute(
            text(
                "INSERT INTO incidents (fingerprint, title, chat_id, status, severity) "
                "VALUES (:t, :t, 'oc_ops', 'open', 'warning')"
            ),
            {"t": title},
        )


async def test_a_change_wakes_a_subscriber_and_a_statement_changing_nothing_does_not(
    world: World,
) -> None:
    notices = Notices(world.db_url)
    calls: list[str] = []
    notices.on_change(("incidents",), lambda: calls.append("incidents"))
    approvals = notices.event("approvals")
    await notices.start()
    try:
        calls.clear()  # a start calls everyone once: what changed before it listened
        approvals.clear()
        async with world.db.session() as session:  # a sweep that finds nothing to expire
            await session.execute(text("UPDATE approvals SET status = 'expired' WHERE false"))
        await open_incident(world, "HighCPU")
        await wait_until(lambda: calls == ["incidents"], what="the opened incident's notice")
        assert not approvals.is_set()
    finally:
        await notices.stop()


async def test_a_quiet_loop_sleeps_until_a_change(world: World) -> None:
    notices = Notices(world.db_url)
    changed = notices.event("incidents")
    await notices.start()
    changed.clear()  # the start's own wake-up (whatever changed before it listened)
    rounds: list[int] = []

    async def round_() -> None:
        rounds.append(len(rounds))

    async def nothing_in_flight() -> bool:
        return False

    loop = asyncio.create_task(paced(round_, nothing_in_flight, every=0.01, changed=changed))
    try:
        await wait_until(lambda: rounds == [0], what="the first round")
        await open_incident(world, "DiskFull")
        await wait_until(lambda: rounds == [0, 1], what="a round after the change")
        await open_incident(world, "DiskFull again")
        await wait_until(lambda: rounds == [0, 1, 2], what="a round after the next change")
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await notices.stop()


async def test_a_repeat_notifies_nobody_and_a_status_change_does(world: World) -> None:
    feed = ChangeFeed.shared(world.db_url)
    notices = Notices(world.db_url)
    woken: list[str] = []
    notices.on_change(("incidents",), lambda: woken.append("incidents"))
    await notices.start()
    try:
        async with feed.subscribe() as changes:
            await open_incident(world, "HighLatency")
            opened = await asyncio.wait_for(changes.get(), 10)
            assert (opened["kind"], opened["op"]) == ("incident", "insert")
            woken.clear()
            async with world.db.session() as session:  # what triage's fold does per repeat
                await session.execute(
                    text(
                        "UPDATE incidents SET alert_count = alert_count + 1, "
                        "last_seen_at = now(), summary = 'p99 2.1 s', updated_at = now() "
                        "WHERE id = :id"
                    ),
                    {"id": opened["id"]},
                )
                await session.execute(
                    text("UPDATE incidents SET status = 'resolved' WHERE id = :id"),
                    {"id": opened["id"]},
                )
            resolved = await asyncio.wait_for(changes.get(), 10)
            assert (resolved["id"], resolved["op"], resolved["status"]) == (
                opened["id"],
                "update",
                "resolved",
            )
            assert changes.empty()  # the repeat came on nobody's queue
            await wait_until(lambda: woken == ["incidents"], what="the status change's wake-up")
    finally:
        await notices.stop()
        await feed.close()


async def test_the_loops_and_the_event_stream_share_one_listening_connection(
    world: World,
) -> None:
    feed = ChangeFeed.shared(world.db_url)
    notices = Notices(world.db_url)
    approvals = notices.event("approvals")
    await notices.start()
    try:
        async with feed.subscribe():
            async with world.db.session() as session:
                listening = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                )
            assert listening == 1
        approvals.clear()
        async with world.db.session() as session:  # the stream's end leaves the loops listening
            await session.execute(
                text(
                    "INSERT INTO approvals (run_id, gate, interrupt_id, expires_at) "
                    "VALUES (gen_random_uuid(), 'fix', 'i', now() + interval '1 hour')"
                )
            )
        await asyncio.wait_for(approvals.wait(), 10)
    finally:
        await notices.stop()
        await feed.close()


def test_every_incident_column_either_notifies_or_is_an_alerts_repeat() -> None:
    """A column added to incidents must be named in the feed's trigger (or be one that an
    alert's repeat changes, or one that never changes), or its changes would reach nobody
    (the trigger as the latest migration that redraws it watches)."""
    versions = Path(__file__).parents[2].glob("migrations/versions/0*.py")
    *_, path = sorted(p for p in versions if "WATCHED_COLUMNS =" in p.read_text())  # the latest
    spec = importlib.util.spec_from_file_location("one_change_feed", path)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    repeat = {"alert_count", "last_seen_at", "summary", "updated_at"}
    fixed = {"id", "run_id", "fingerprint", "first_seen_at", "created_at"}
    columns = {column.name for column in Incident.__table__.columns}
    assert columns == set(migration.WATCHED_COLUMNS) | repeat | fixed


async def test_a_caller_cancelled_while_the_feed_closes_ends_cancelled(world: World) -> None:
    """Closing the feed waits for its listening connection to close. A caller cancelled at
    any moment of that wait (a `stop()` itself cancelled) ends cancelled: it never goes on as
    if closing had simply finished (the cancellation was swallowed with the listener's)."""
    feeds: list[ChangeFeed] = []

    async def begin() -> Coroutine[Any, Any, None]:
        feeds.append(ChangeFeed(world.db_url))
        await feeds[-1].open()
        return feeds[-1].close()

    async def closed(_: int) -> None:
        await feeds[-1].close()

    sweep = await cancel_at_every_turn(begin, after=closed)
    assert sweep.lost == []  # turns at which the caller's cancellation was lost
    assert sweep.turns > 2  # the sweep went through the close
