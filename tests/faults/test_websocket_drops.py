"""The long connection dropped again and again while messages and clicks flow.

The emulator closes the bot's WebSocket every second; the SDK reconnects by itself. Events in
flight on a dropped socket are not acknowledged, so they are delivered again on the next one;
events sent while no socket is up wait for one. Every message is answered exactly once, every
click gets its answer, and the inbox holds each event once.
"""

from __future__ import annotations

import asyncio
import time

from bot.sandbox.model import ClickResult, DeliveryResult
from tests.faults.conftest import Stage
from tests.support.cluster import inbox_settled, rows, running
from tests.support.wait import wait_until

DROPS = 8


async def test_repeated_websocket_drops_lose_and_double_nothing(
    stage: Stage, fresh_db_url: str
) -> None:
    began = time.monotonic()
    emulator = stage.emulator
    bot = stage.replica("bot", DATABASE_URL=fresh_db_url)
    async with running(bot):
        await bot.start(emulator)
        await emulator.send_message("oc_ops", "ou_alice", "/ping")
        ping = await emulator.wait_for_bot_message("oc_ops", lambda m: m.card is not None, 20)
        button = next(
            b["behaviors"][0]["value"]
            for b in (ping.card or {})["body"]["elements"]
            if b.get("tag") == "button"
        )
        sends: list[asyncio.Task[DeliveryResult]] = []
        clicks: list[asyncio.Task[ClickResult]] = []

        async def traffic() -> None:
            for n in range(DROPS * 5):
                sends.append(
                    asyncio.create_task(emulator.send_message("oc_ops", "ou_alice", "/whoami"))
                )
                if n % 5 == 2:
                    clicks.append(
                        asyncio.create_task(emulator.click(ping.message_id, "ou_bob", button))
                    )
                await asyncio.sleep(0.2)  # the traffic's pace

        flowing = asyncio.create_task(traffic())
        dropped = 0
        for _ in range(DROPS):
            await asyncio.sleep(1.0)  # the fault's cadence: a drop a second
            # the drop lands on a live socket (the SDK comes back about a second after the last)
            await wait_until(lambda: emulator.connections > 0, 30, "the SDK to reconnect")
            for _ in range(3):  # in flight when the socket goes: delivered again
                sends.append(
                    asyncio.create_task(emulator.send_message("oc_ops", "ou_alice", "/whoami"))
                )
            # the drop's moment, not a wait: these frames are on the wire and their acks (sent
            # after a Postgres commit) not back yet
            await asyncio.sleep(0.003)
            dropped += await emulator.drop_connections()
        await flowing
        results = await asyncio.gather(*sends)
        clicked = await asyncio.gather(*clicks)

        asked = {r.message_id for r in results}

        def answers() -> dict[str, int]:
            found: dict[str, int] = {}
            for m in emulator.transcript("oc_ops"):
                if m.sender_id == emulator.bot.open_id and m.parent_id in asked:
                    found[m.parent_id] = found.get(m.parent_id, 0) + 1
            return found

        await wait_until(lambda: len(answers()) == len(asked), 40, "every answer")
        # every event handled (none pending or in progress): nothing is left to answer again
        await wait_until(lambda: inbox_settled(fresh_db_url), 30, "every inbound event handled")
        assert set(answers().values()) == {1}, answers()
        assert dropped == DROPS
        assert all(r.acked for r in results)
        assert all(c.toast is not None for c in clicked), [c.delivery for c in clicked]
        stored = await rows(
            fresh_db_url,
            "SELECT count(*), count(DISTINCT message_id) FROM inbound_events "
            "WHERE event_type = 'im.message.receive_v1'",
        )
        assert stored == [(len(asked) + 1, len(asked) + 1)]  # + the /ping
        redelivered = sum(r.deliveries - 1 for r in [*results, *(c.delivery for c in clicked)])
        print(
            f"injected: {dropped} WebSocket drops (one a second, each with events in flight) under "
            f"{len(results)} messages and {len(clicked)} clicks"
        )
        print(
            f"survived: {len(asked)} messages answered once each, {len(clicked)} clicks "
            f"answered, {redelivered} redeliveries absorbed, the inbox holds each event once; "
            f"{time.monotonic() - began:.0f} s"
        )
