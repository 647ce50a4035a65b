"""Alert storms (issue 22 item 4): end-to-end ingest rate, and alert → incident card latency.

`larkops run --workers N` plays the bot against the Lark emulator (its embedded Postgres, fsync
on; N intake processes share the HTTP port). Every run posts Alertmanager v4 deliveries (50 alerts
each, drawn from 40 fingerprints) to `/webhooks/alertmanager` in a chat of its own:

1. Throughput: `--alerts` alerts as fast as `--clients` clients post them; the clock stops when
   every alert is counted in the chat's incidents (sum of alert_count). Median of `--runs` runs.
   Also CPU-seconds per 1,000 alerts (bot processes + Postgres: less sensitive to a busy
   machine than the rate) and a loss check (alerts rows, counts, one incident per fingerprint).
2. Latency: for `--seconds`, repeats arrive at `--rate` alerts/s; meanwhile, every 0.25 s an
   alert of a new problem goes to one of eight chats; the time from its POST to its incident
   card in the emulator (p50/p99; goal p99 < 1 s), and from its POST to its incident row
   (`created_at`, the start of the transaction that made it): intake's share of the wait.

    .venv/bin/python bench/ingest.py [--workers 2] [--alerts 30000] [--runs 3] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import yaml
from figures import figure
from incident_resume import pct
from incidents import TOKEN, alert, free_port, labels, notification  # bench/, next to this file

from bot.lark.events import card_text
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import Chat
from bot.sandbox.server import serve_emulator

LARKOPS = str(Path(sys.executable).parent / "larkops")
NAMES = ["NodeCPUHigh", "NodeMemoryHigh", "DiskAlmostFull", "HTTP5xxRate", "PodCrashLooping"]
POOL = [(name, f"10.0.{n}.{7 + i}:9100") for n, name in enumerate(NAMES) for i in range(8)]
RUN_CHATS = [Chat(f"oc_bench_storm_{n}", f"storm {n}") for n in range(5)]
PROBE_CHATS = [Chat(f"oc_bench_probe_{n}", f"probe {n}") for n in range(8)]
SIZE = 50  # alerts per delivery, as Alertmanager groups them


class Bot:
    """`larkops run --workers N` against the emulator, with its embedded Postgres in `home`."""

    def __init__(self, home: Path, url: str, emulator: LarkEmulator, workers: int) -> None:
        self.home, self.port = home, free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.failed = 0  # POSTs whose connection failed (an open-loop sender over capacity)
        redis = {}
        if workers > 1:  # processes share leases and rate limits through Redis
            redis_port = free_port()
            self.redis = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(home),
                ],
                stdout=subprocess.DEVNULL,
            )
            redis = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        self.http = f"http://127.0.0.1:{self.port}"
        config = home / "larkops.yaml"
        # a storm threshold out of reach: every fingerprint is an ordinary incident
        incidents = {"storm_threshold": 1000, "storm_window_seconds": 10}
        config.write_text(yaml.safe_dump({"incidents": incidents}), encoding="utf-8")
        env = {
            "PATH": os.environ["PATH"],
            "LARKOPS_HOME": str(home / "home"),
            "LARKOPS_CONFIG": str(config),
            "LARKOPS_HTTP_PORT": str(self.port),
            "LARKOPS_LOG_FORMAT": "json",
            "LARKOPS_LOG_LEVEL": "warning",
            "LARKOPS_WEBHOOK_TOKEN": TOKEN,
            "LARK_APP_ID": emulator.app_id,
            "LARK_APP_SECRET": emulator.app_secret,
            "LARK_DOMAIN": url,
            **redis,
        }
        self.log = (home / "bot.log").open("wb")
        self.proc = subprocess.Popen(
            [LARKOPS, "run", "--workers", str(workers)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def dsn(self) -> str:
        port = (self.home / "home" / "postgres" / "port").read_text().strip()
        return f"postgresql://postgres@127.0.0.1:{port}/larkops"

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far of the main process, the intake processes and Postgres (its live
        processes and the backends the postmaster has reaped, so a closed connection's work still
        counts)."""
        pidfile = self.home / "home" / "postgres" / "data" / "postmaster.pid"
        server = psutil.Process(int(pidfile.read_text().split()[0]))
        bot = psutil.Process(self.proc.pid)

        def used(processes: list[psutil.Process], reaped: bool = False) -> float:
            total = 0.0
            for proc in processes:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
                    if reaped:  # children that exited (backends whose connection closed)
                        total += times.children_user + times.children_system
            return total

        postgres = used([server], reaped=True) + used(server.children(recursive=True))
        intake = []
        for child in bot.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "bot.cli" in child.cmdline():
                    intake.append(child)
        return used([bot]), used(intake), postgres

    async def ready(self) -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{self.http}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def post(self, client: httpx.AsyncClient, body: bytes, chat: str) -> int:
        """Alerts accepted (202) by one POST (0 when refused or the connection failed)."""
        try:
            answer = await client.post(
                f"{self.http}/webhooks/alertmanager?chat={chat}",
                content=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
        except httpx.TransportError:
            self.failed += 1
            return 0
        return int(answer.json()["alerts"]) if answer.status_code == 202 else 0

    async def one(self, query: str, *args: Any) -> Any:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            row = await (await conn.execute(query, args or None)).fetchone()
            return row[0] if row else None

    async def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            return list(await (await conn.execute(query, args or None)).fetchall())


def delivery(rng: random.Random, pool: list[tuple[str, str]]) -> bytes:
    picked = [rng.choice(pool) for _ in range(SIZE)]
    return notification(
        [
            alert(labels(n, i), {"summary": f"{n} on {i}", "value": f"{rng.random():.6f}"})
            for n, i in picked
        ]
    )


async def commits(bot: Bot) -> int:
    """Transactions committed in the bot's database so far (each of the bench's own queries is
    one of them)."""
    return int(
        await bot.one("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    )


async def counted(bot: Bot, chat: str) -> int:
    return int(
        await bot.one(
            "SELECT coalesce(sum(alert_count), 0) FROM incidents WHERE chat_id = %s", chat
        )
        or 0
    )


async def throughput(
    bot: Bot, emulator: LarkEmulator, chat: str, alerts: int, clients: int
) -> dict[str, float]:
    """One run: every fingerprint opens first (its card and workflow), then the storm."""
    rng = random.Random(chat)
    async with httpx.AsyncClient(timeout=60) as client:
        await bot.post(client, notification([alert(labels(*p), {}) for p in POOL]), chat)
        began = time.monotonic()
        while (
            await bot.one(
                "SELECT count(*) FROM incidents WHERE chat_id = %s AND card_message_id IS NOT NULL",
                chat,
            )
            < len(POOL)
            and time.monotonic() - began < 120
        ):
            await asyncio.sleep(0.2)
        bodies = [delivery(rng, POOL) for _ in range(alerts // SIZE)]
        deliveries = len(bodies)
        base = await counted(bot, chat)
        sent = 0
        committed = await commits(bot)
        cpu0, began = bot.cpu(), time.monotonic()

        async def client_loop() -> None:
            nonlocal sent
            while bodies:
                accepted = await bot.post(client, bodies.pop(), chat)
                sent += accepted

        await asyncio.gather(*(client_loop() for _ in range(clients)))
        http_s = time.monotonic() - began
        done, polls = base, 0
        while done - base < sent and time.monotonic() - began < 300:
            await asyncio.sleep(0.02)
            done = await counted(bot, chat)
            polls += 1
        e2e = time.monotonic() - began
        spent = [b - a for a, b in zip(cpu0, bot.cpu(), strict=True)]
        committed = await commits(bot) - committed - polls - 1  # not the bench's own
        cpu = sum(spent)
        patches = sum(
            1
            for message in emulator.transcript(chat)
            for at in message.card_times[1:]
            if began <= at <= began + e2e
        )
    rows = await bot.one(
        "SELECT count(*) FROM alerts a JOIN incidents i ON i.id = a.incident_id "
        "WHERE i.chat_id = %s",
        chat,
    )
    opened = await bot.one("SELECT count(*) FROM incidents WHERE chat_id = %s", chat)
    result = {
        "e2e": (done - base) / e2e,
        "http": sent / http_s,
        "cpu_per_1000": 1000 * cpu / max(1, done - base),
        "lost": sent - (done - base),
        "commits_per_delivery": committed / max(1, deliveries),
        "rows_off": rows - (sent + len(POOL)),
        "incidents": opened,
        "main": 1000 * spent[0] / max(1, done - base),
        "intake": 1000 * spent[1] / max(1, done - base),
        "postgres": 1000 * spent[2] / max(1, done - base),
        "patches": patches / e2e,
    }
    print(
        f"  run {chat}: {sent} alerts, HTTP {result['http']:.0f}/s, end to end "
        f"{result['e2e']:.0f}/s ({e2e:.1f} s), CPU {result['cpu_per_1000']:.2f} s per 1,000 "
        f"alerts (main {result['main']:.2f}, intake {result['intake']:.2f}, Postgres "
        f"{result['postgres']:.2f}); {result['commits_per_delivery']:.1f} commits per delivery "
        f"of {SIZE}; {result['patches']:.0f} card patches/s; counted {done - base}/{sent}, "
        f"alert rows {rows}/{sent + len(POOL)}, incidents {opened}/{len(POOL)}",
        flush=True,
    )
    return result


async def latency(bot: Bot, emulator: LarkEmulator, rate: float, seconds: float) -> list[float]:
    """Alert → its incident card while `rate` alerts/s of repeats arrive."""
    rng = random.Random(11)
    chat = RUN_CHATS[-1].chat_id
    posted: dict[str, tuple[str, float]] = {}  # title -> (chat, time posted)
    wall: dict[str, float] = {}  # title -> wall-clock time posted (to compare with Postgres)
    async with httpx.AsyncClient(timeout=60) as client:
        await bot.post(client, notification([alert(labels(*p), {}) for p in POOL]), chat)
        await asyncio.sleep(3)
        stop = time.monotonic() + seconds

        async def repeats() -> None:
            every, due = SIZE / rate, time.monotonic()
            while time.monotonic() < stop:
                asyncio.get_running_loop().create_task(bot.post(client, delivery(rng, POOL), chat))
                due += every
                await asyncio.sleep(max(0.0, due - time.monotonic()))

        async def probes() -> None:
            n = 0
            while time.monotonic() < stop:
                title = f"ProbeDown{n}"
                target = PROBE_CHATS[n % len(PROBE_CHATS)].chat_id
                body = notification([alert(labels(title, "10.9.9.9:80"), {})])
                posted[title] = (target, time.monotonic())
                wall[title] = time.time()
                asyncio.get_running_loop().create_task(bot.post(client, body, target))
                n += 1
                await asyncio.sleep(0.25)

        await asyncio.gather(repeats(), probes())
    shown: dict[str, float] = {}
    deadline = time.monotonic() + 30
    while len(shown) < len(posted) and time.monotonic() < deadline:
        for title, (target, _) in posted.items():
            if title in shown:
                continue
            for message in emulator.transcript(target):
                if message.card_times and title in card_text(message.card_history[0]):
                    shown[title] = message.card_times[0]
                    break
        await asyncio.sleep(0.1)
    opened = await bot.rows(
        "SELECT title, extract(epoch FROM created_at)::float FROM incidents WHERE title LIKE %s",
        "%ProbeDown%",
    )
    to_row = [
        1000 * (float(at) - wall[t]) for name, at in opened for t in wall if t in str(name).split()
    ]
    if to_row:  # where the time goes: before the incident exists (intake) or after (the card)
        print(
            f"  latency: alert -> incident row p50 {pct(to_row, 0.5):.0f} ms, "
            f"p99 {pct(to_row, 0.99):.0f} ms ({len(to_row)} incidents)"
        )
    if bot.failed:
        print(f"  latency: {bot.failed} POSTs failed at the connection (over capacity)")
    missing = len(posted) - len(shown)
    if missing:
        print(f"  latency: {missing} probe cards never shown within 30 s")
    return [1000 * (shown[t] - posted[t][1]) for t in shown] + [30_000.0] * missing


async def main_async(args: argparse.Namespace) -> None:
    emulator = LarkEmulator(chats=[*RUN_CHATS, *PROBE_CHATS])
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-ingest-"))
    async with serve_emulator(emulator) as url:
        bot = Bot(home, url, emulator, args.workers)
        try:
            while not (emulator.connections and await bot.ready()):
                if bot.proc.poll() is not None:
                    raise SystemExit(f"larkops exited: {(home / 'bot.log').read_text()}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)  # the intake processes come up after the main one
            print(f"ingest: larkops run --workers {args.workers}, {os.cpu_count()} cores")
            runs = [
                await throughput(bot, emulator, RUN_CHATS[n].chat_id, args.alerts, args.clients)
                for n in range(args.runs)
            ]
            rate = statistics.median(r["e2e"] for r in runs)
            cpu = statistics.median(r["cpu_per_1000"] for r in runs)
            lost = sum(abs(r["lost"]) + abs(r["rows_off"]) for r in runs)
            wrong = sum(r["incidents"] != len(POOL) for r in runs)
            print(
                f"alert ingest end to end: median {rate:.0f} alerts/s of {args.runs} runs "
                f"(goal >= 3000), HTTP {statistics.median(r['http'] for r in runs):.0f}/s; "
                f"CPU {cpu:.2f} s per 1,000 alerts (bot + Postgres); lost or extra {lost}, "
                f"runs with other than one incident per fingerprint {wrong}"
            )
            figure(
                22, "alert ingest end to end (median)", rate, "alerts/s", ">= 3000", rate >= 3000
            )
            figure(22, "alert ingest CPU per 1,000 alerts", cpu, "CPU s", "", None)
            per_delivery = statistics.median(r["commits_per_delivery"] for r in runs)
            figure(22, "alert ingest commits per delivery", per_delivery, "commits", "", None)
            figure(22, "alerts lost or counted twice", lost, "alerts", "0", lost == 0)
            if args.seconds > 0:
                waits = await latency(bot, emulator, args.rate, args.seconds)
                p99 = pct(waits, 0.99)
                print(
                    f"alert -> incident card at {args.rate:.0f} alerts/s: {len(waits)} cards, "
                    f"p50 {pct(waits, 0.5):.0f} ms, p99 {p99:.0f} ms (goal p99 < 1000 ms)"
                )
                figure(
                    22,
                    f"alert -> incident card p99 at {args.rate:.0f}/s",
                    p99,
                    "ms",
                    "< 1000",
                    p99 < 1000,
                )
        finally:
            bot.proc.send_signal(signal.SIGTERM)
            bot.proc.wait(60)
            bot.log.close()
            if bot.redis is not None:
                bot.redis.terminate()
                bot.redis.wait(10)
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--alerts", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10, help="0: no latency part")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
