"""`larkops run --workers 2`: two processes on one machine, one HTTP port, one database.

An alert storm is posted over fresh connections (the kernel spreads them over both processes'
sockets). Every alert is counted once, in the incidents one process would have made (one per
problem, its count the number of its alerts), both processes took deliveries, only the main
process holds the Lark long connection, and stopping the main process stops the other.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import httpx
import psutil
import psycopg

from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.server import serve_emulator
from tests.conftest import free_port
from tests.e2e.process import Bot
from tests.support.cluster import RedisServer, replica_env
from tests.support.repair import write_config
from tests.support.wait import wait_until

TOKEN_HEADER = {"Authorization": "Bearer replica-webhook-token"}
PROBLEMS = [(name, f"db-{n}") for name in ("DiskFull", "QueueLag", "HighLoad") for n in range(4)]
DELIVERIES = 40
SIZE = 20


def delivery(rng: random.Random) -> tuple[dict[str, object], list[tuple[str, str]]]:
    picked = [rng.choice(PROBLEMS) for _ in range(SIZE)]
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": name, "instance": host, "severity": "warning"},
            "annotations": {"summary": f"{name} on {host}", "n": str(rng.random())},
            "startsAt": "2026-01-01T00:00:00Z",
        }
        for name, host in picked
    ]
    return {"version": "4", "status": "firing", "alerts": alerts}, picked


def intake_processes(bot: Bot) -> list[psutil.Process]:
    assert bot.process is not None
    return [
        child
        for child in psutil.Process(bot.process.pid).children(recursive=True)
        if "--intake-of" in child.cmdline()
    ]


async def test_two_intake_processes_count_every_alert_once(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    emulator = LarkEmulator()
    config = write_config(tmp_path, {"incidents": {"storm_threshold": 1000}})
    try:
        async with serve_emulator(emulator) as url:
            env = replica_env(emulator, url, config, REDIS_URL=redis.url)
            env["LARKOPS_WEBHOOK_TOKEN"] = TOKEN_HEADER["Authorization"].removeprefix("Bearer ")
            bot = Bot(tmp_path / "home", free_port(), env=env, args=("--workers", "2"))
            await asyncio.to_thread(bot.start)
            try:
                await wait_until(lambda: len(intake_processes(bot)) == 1, 60, "intake process")
                await wait_until(lambda: "intake.ready" in bot.log(), 60, "intake ready")
                rng = random.Random(22)
                sent: Counter[tuple[str, str]] = Counter()
                for _ in range(DELIVERIES):
                    body, picked = delivery(rng)
                    sent.update(picked)
                    # a new connection each: the kernel picks a process per connection
                    async with httpx.AsyncClient() as client:
                        answer = await client.post(
                            f"{bot.url}/webhooks/alertmanager?chat=oc_ops",
                            json=body,
                            headers=TOKEN_HEADER,
                        )
                    assert answer.status_code == 202, answer.text
                dsn = f"postgresql://postgres@127.0.0.1:{_pg_port(tmp_path)}/larkops"

                async def settled() -> bool:
                    async with await psycopg.AsyncConnection.connect(dsn) as conn:
                        row = await (
                            await conn.execute(
                                "SELECT count(*) FROM inbound_events WHERE status = 'pending'"
                            )
                        ).fetchone()
                    return row is not None and row[0] == 0

                await wait_until(settled, 60, "every delivery handled")
                async with await psycopg.AsyncConnection.connect(dsn) as conn:
                    incidents = await (
                        await conn.execute(
                            "SELECT title, labels->>'instance', alert_count FROM incidents"
                        )
                    ).fetchall()
                    rows = await (await conn.execute("SELECT count(*) FROM alerts")).fetchone()
                    handled = await (
                        await conn.execute(
                            "SELECT status, count(*), count(DISTINCT claimed_by) "
                            "FROM inbound_events WHERE event_type LIKE 'alert.%' GROUP BY status"
                        )
                    ).fetchall()
                # one process would have made these: an incident per problem, every alert once
                assert {(t, i): n for t, i, n in incidents} == dict(sent)
                assert rows == (DELIVERIES * SIZE,)
                assert handled == [("done", DELIVERIES, 2)]  # both processes triaged
                assert emulator.connections == 1  # the main process alone holds it
                [intake] = intake_processes(bot)
            finally:
                await bot.astop(timeout=90)  # the workflows in flight finish their step
            assert not intake.is_running() or intake.status() == psutil.STATUS_ZOMBIE
            assert "intake.killed" not in bot.log()
    finally:
        redis.stop()


def _pg_port(tmp_path: Path) -> str:
    return (tmp_path / "home" / "postgres" / "port").read_text(encoding="utf-8").strip()
