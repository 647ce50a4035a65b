"""Changes in Postgres wake the loops that wait for them (storage.notices, migration 0013): a
loop with nothing in flight sleeps until a row it follows changes, not every few seconds, and
a statement that changes no row (a sweep finding nothing) wakes nobody, or the sweeps would
wake each other for ever."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from storage.notices import Notices, paced
from tests.conftest import World
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
