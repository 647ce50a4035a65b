"""Postgres stopped and started again under load (the embedded server, data dir kept).

Messages keep arriving over Lark while the database is down: the bot cannot commit them, so it
does not acknowledge them and Lark redelivers (the emulator backs off like Lark does); a webhook
sender gets an error and retries, as Alertmanager does; an incident's diagnosis is under way.
After the restart the bot reconnects by itself (`/readyz` went red, then green again), every
acknowledged message is answered exactly once, the alert has its incident and the incident's
run goes on to the end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.sandbox.model import DeliveryResult
from storage.embedded import EmbeddedPostgres
from tests.faults.conftest import Stage
from tests.support.cluster import (
    Replica,
    approve_value,
    check_invariants,
    inbox_settled,
    incident_cards,
    rows,
    running,
    shows,
)
from tests.support.repair import alert
from tests.support.wait import wait_until

DOWN = 4.0


async def post_until_accepted(bot: Replica, body: dict[str, object]) -> list[int]:
    """POST like Alertmanager: retry on errors; the statuses seen."""
    statuses = []
    for _ in range(40):
        try:
            status = (await bot.post(body)).status_code
        except OSError:
            status = 0
        statuses.append(status)
        if status == 202:
            return statuses
        await asyncio.sleep(0.5)  # the sender's retry interval (as Alertmanager's), not a wait
    raise AssertionError(f"webhook never accepted: {statuses}")


async def test_postgres_restart_loses_no_acknowledged_event(stage: Stage, tmp_path: Path) -> None:
    began = time.monotonic()
    emulator = stage.emulator
    emulator.redelivery_delays = (0.5, 1.0, 2.0, 4.0)
    emulator.max_deliveries = 6
    server = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    dsn = await asyncio.to_thread(server.start)
    bot = stage.replica("bot", DATABASE_URL=dsn)
    try:
        async with running(bot):
            await bot.start(emulator)
            stage.board.slow["web"] = 3.0  # its diagnosis is in flight when the database stops
            assert (await bot.post(alert(stage.board, "web"))).status_code == 202
            await wait_until(
                lambda: rows(dsn, "SELECT 1 FROM incidents"), 20, "the incident to open"
            )

            deliveries: list[asyncio.Task[DeliveryResult]] = []

            async def traffic(count: int) -> None:
                for _ in range(count):
                    deliveries.append(
                        asyncio.create_task(emulator.send_message("oc_ops", "ou_alice", "/whoami"))
                    )
                    await asyncio.sleep(0.25)  # the traffic's pace: 4 messages a second

            sender = asyncio.create_task(traffic(36))  # 9 s of messages
            # the database stops with messages flowing and the web diagnosis under way
            await wait_until(
                lambda: any(d.done() and d.result().acked for d in deliveries),
                20,
                "a message acknowledged before the outage",
            )
            await wait_until(lambda: stage.board.checks["web"], 20, "the web diagnosis's check")
            await asyncio.to_thread(server.release)  # the last holder leaves: it stops
            stopped = time.monotonic()
            red = await wait_until(lambda: _red(bot), 10, "/readyz to report the database")
            webhook = asyncio.create_task(post_until_accepted(bot, alert(stage.board, "api")))
            await asyncio.sleep(max(0.0, DOWN - (time.monotonic() - stopped)))  # the outage
            await asyncio.to_thread(server.start)  # same data directory and port
            try:
                await wait_until(bot.ready, 30, "/readyz to turn green again")
            except AssertionError:
                print("DSN", dsn, server.dsn, await bot.readyz())
                print(bot.log()[-5000:])
                raise
            await sender
            results = await asyncio.gather(*deliveries)
            statuses = await webhook

            acked = [r for r in results if r.acked]
            retried = sum(1 for r in results if r.deliveries > 1)

            def answered() -> dict[str, int]:
                wanted = {r.message_id for r in acked}
                found: dict[str, int] = {}
                for m in emulator.transcript("oc_ops"):
                    if m.sender_id == emulator.bot.open_id and m.parent_id in wanted:
                        assert "ou_alice" in m.text, m.text  # the answer, not an error
                        found[m.parent_id] = found.get(m.parent_id, 0) + 1
                return found

            await wait_until(lambda: len(answered()) == len(acked), 40, "every acked message")
            assert len(acked) == len(results), [r for r in results if not r.acked]
            stage.board.slow.clear()

            # the run whose diagnosis the outage interrupted goes on; both gates, then done
            async def gate() -> bool:
                found = await rows(dsn, "SELECT id FROM incidents WHERE labels->>'service' = 'web'")
                for card in incident_cards(emulator).get(int(found[0][0]), []):
                    value = approve_value(card)
                    if value:
                        await emulator.click(card.message_id, "ou_bob", value)
                        return True
                    if shows(card, "✅ 已恢复"):
                        return True
                return False

            for _ in range(2):
                await wait_until(gate, 60, "the web incident's next gate")
            await wait_until(
                lambda: rows(dsn, "SELECT 1 FROM incidents WHERE status = 'resolved'"),
                60,
                "the interrupted incident to resolve",
            )
            # every event handled (none pending or in progress): nothing is left to answer again
            await wait_until(lambda: inbox_settled(dsn), 30, "every inbound event handled")
            assert set(answered().values()) == {1}
            summary = await check_invariants(dsn, emulator, stage.board, {"web": 1, "api": 1})
            print(
                f"injected: Postgres stopped for {DOWN:.0f} s during a diagnosis while "
                f"{len(results)} messages arrived; the webhook sender saw {statuses}"
            )
            print(
                f"survived: /readyz said {red!r} while down, 200 after; {len(acked)}/"
                f"{len(results)} messages acknowledged ({retried} after redeliveries), each "
                f"answered once; {summary}; {time.monotonic() - began:.0f} s"
            )
    finally:
        await asyncio.to_thread(server.release)


async def _red(bot: Replica) -> str | None:
    status, body = await bot.readyz()
    check = str(body.get("checks", {}).get("database", ""))
    return check if status == 503 and check.startswith("error") else None
