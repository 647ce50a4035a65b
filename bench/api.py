"""Issue 19: the REST API under load, and how soon a change reaches the event stream.

The real bot (`larkops run`, the local sandbox, its own embedded Postgres) serves the API;
N incidents (default 100,000) are in the database first. Figures:

- `GET /api/v1/incidents` with an API key at a steady R requests/s (default 200, open loop:
  each request leaves on its schedule whether or not earlier ones answered, and its latency
  counts from then) for S seconds, after a warm-up, `--runs` times (default 3): the medians of
  p50 and p99 latency, the rate achieved, the bot's CPU per request, errors (goal p99 < 50 ms);
- an alert posted to `/webhooks/generic` → the `incident` event on `GET /api/v1/stream`
  (triage, the insert, Postgres NOTIFY, the stream): p50 and p99 over A alerts
  (goal p99 < 500 ms).

    python bench/api.py --incidents 100000 --rate 200 --seconds 15 --alerts 30 --runs 3
    python bench/api.py --profile /tmp/bot.prof    # where the bot's CPU goes (python -m pstats)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from figures import figure
from sqlalchemy import text

from storage import api_keys
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade

TOKEN = "bench-webhook-token"
INCIDENTS = (
    "INSERT INTO incidents (fingerprint, title, chat_id, severity, status, alert_count) "
    "SELECT md5(g::text), 'Bench ' || (g % 500), 'oc_ops', "
    "(ARRAY['critical','warning','info'])[1 + g % 3], "
    "CASE WHEN g % 100 = 0 THEN 'escalated' ELSE 'resolved' END, 1 + g % 7 "
    "FROM generate_series(1, :n) AS g"
)


# the bot under cProfile timed by CPU, not the wall clock (the machine may be busy), over the
# measured runs only (SIGUSR1 starts it after the warm-up, SIGUSR2 writes it)
PROFILED = (
    "import cProfile, signal, sys, time; from bot.cli import main; "
    "profile = cProfile.Profile(time.process_time); "
    "signal.signal(signal.SIGUSR1, lambda *_: profile.enable()); "
    "signal.signal(signal.SIGUSR2, lambda *_: (profile.disable(), "
    "profile.dump_stats(sys.argv[1]))); sys.exit(main(sys.argv[2:]))"
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def prepare(url: str, incidents: int) -> str:
    database = await Database.open(url, pool_size=2)
    try:
        await upgrade(database)
        async with database.session() as session:
            # no change notice per seeded row (whatever the feed's triggers are called)
            await session.execute(text("ALTER TABLE incidents DISABLE TRIGGER USER"))
            await session.execute(text(INCIDENTS), {"n": incidents})
            await session.execute(text("ALTER TABLE incidents ENABLE TRIGGER USER"))
        async with database.session() as session:
            await session.execute(text("ANALYZE incidents"))
        return (await api_keys.create(database, name="bench", owner="ou_bench")).key
    finally:
        await database.close()


async def wait_ready(client: httpx.AsyncClient, key: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            answer = await client.get(
                "/api/v1/incidents", headers={"Authorization": f"Bearer {key}"}
            )
            if answer.status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise SystemExit("the bot did not serve the API within 120 s")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def database_cpu(data: Path) -> dict[int, float]:
    """The embedded Postgres's CPU by process: its postmaster and every backend."""
    found: dict[int, float] = {}
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        postmaster = psutil.Process(int((data / "postmaster.pid").read_text().split()[0]))
        for process in [postmaster, *postmaster.children()]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                found[process.pid] = times.user + times.system
    return found


def database_cpu_since(data: Path, before: dict[int, float]) -> float:
    """CPU seconds the database spent since `before` (in processes that still run)."""
    now = database_cpu(data)
    return sum(spent - before.get(pid, 0.0) for pid, spent in now.items())


class Connection:
    """One kept-alive HTTP/1.1 connection speaking just enough of the protocol: the load
    generator must cost far less than the server it measures (httpx costs ~15 ms a request)."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.request = (
            "GET /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\n\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length)
        return status if body.startswith(b'{"incidents":[{') else 0


@dataclass(frozen=True)
class Run:
    p50: float
    p99: float
    rate: float  # achieved, requests/s
    errors: int
    cpu_ms: float  # the bot's CPU per request
    own_ms: float  # this load generator's
    database_ms: float  # the database's (its processes still running at the end)


async def load(port: int, key: str, rate: float, seconds: float, server: int, data: Path) -> Run:
    """One run: requests leave at a fixed rate whether or not earlier ones have answered
    (open loop); a request's latency counts from when it was due to leave."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(Connection(port, key))
    latencies: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        connection = await pool.get()  # waiting for a free connection counts too
        try:
            ok = await asyncio.wait_for(connection.get(), 30) == 200
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            ok, connection = False, Connection(port, key)
        latencies.append((time.perf_counter() - due) * 1000)
        errors += 0 if ok else 1
        pool.put_nowait(connection)

    total = int(rate * seconds)
    server_cpu, own_cpu = cpu_seconds(server), cpu_seconds(os.getpid())
    database_before = database_cpu(data)
    start = time.perf_counter()
    tasks = []
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    sent = time.perf_counter() - start
    await asyncio.gather(*tasks)
    took = time.perf_counter() - start
    run = Run(
        p50=pct(latencies, 0.5),
        p99=pct(latencies, 0.99),
        rate=total / took,
        errors=errors,
        cpu_ms=(cpu_seconds(server) - server_cpu) / total * 1000,
        own_ms=(cpu_seconds(os.getpid()) - own_cpu) / total * 1000,
        database_ms=database_cpu_since(data, database_before) / total * 1000,
    )
    print(
        f"  {total} requests sent in {sent:.1f} s, answered in {took:.1f} s "
        f"({run.rate:.0f}/s, offered {rate:g}/s): p50 {run.p50:.1f} ms, p99 {run.p99:.1f} ms, "
        f"max {max(latencies):.1f} ms, errors {errors}; CPU per request: the bot "
        f"{run.cpu_ms:.2f} ms, Postgres {run.database_ms:.2f} ms, this load generator "
        f"{run.own_ms:.2f} ms"
    )
    return run


async def measure(port: int, key: str, args: argparse.Namespace, server: int, data: Path) -> None:
    """A warm-up, then `--runs` runs; the figures are the runs' medians."""
    await load(port, key, min(args.rate, 50.0), 2.0, server, data)  # imports, caches, connections
    if args.profile:
        os.kill(server, signal.SIGUSR1)
    runs = []
    for n in range(args.runs):
        print(f"run {n + 1}/{args.runs}:")
        runs.append(await load(port, key, args.rate, args.seconds, server, data))
    if args.profile:
        os.kill(server, signal.SIGUSR2)
    p50 = statistics.median(run.p50 for run in runs)
    p99 = statistics.median(run.p99 for run in runs)
    achieved = statistics.median(run.rate for run in runs)
    cpu = statistics.median(run.cpu_ms for run in runs)
    database = statistics.median(run.database_ms for run in runs)
    errors = sum(run.errors for run in runs)
    rate = args.rate
    print(
        f"GET /api/v1/incidents at {rate:g}/s offered, median of {len(runs)} runs: "
        f"{achieved:.0f}/s achieved, p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors}, "
        f"CPU a request: the bot {cpu:.2f} ms, Postgres {database:.2f} ms (2 cores, shared "
        "with whatever else runs)"
    )
    figure(19, f"GET /incidents p50 at {rate:g} req/s", p50, "ms", "", None)
    figure(19, f"GET /incidents p99 at {rate:g} req/s", p99, "ms", "< 50", p99 < 50)
    figure(19, "GET /incidents achieved rate", achieved, "req/s", f">= {rate:g}", None)
    figure(19, "GET /incidents bot CPU per request", cpu, "ms", "", None)
    figure(19, "GET /incidents Postgres CPU per request", database, "ms", "", None)
    figure(19, "GET /incidents errors", errors, "requests", "0", errors == 0)


async def stream(client: httpx.AsyncClient, key: str, alerts: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    seen: dict[int, float] = {}
    connected = asyncio.Event()

    async def listen() -> None:
        async with client.stream("GET", "/api/v1/stream", headers=headers, timeout=None) as answer:
            async for line in answer.aiter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("data: "):
                    change = json.loads(line[6:])
                    if change.get("kind") == "incident" and change.get("op") == "insert":
                        seen.setdefault(int(change["id"]), time.perf_counter())

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(connected.wait(), 30)
    delays: list[float] = []
    for n in range(alerts):
        before = set(seen)
        began = time.perf_counter()
        answer = await client.post(
            "/webhooks/generic",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"title": f"BenchAlert {n}", "severity": "warning", "labels": {"n": str(n)}},
        )
        assert answer.status_code == 202, answer.text
        deadline = began + 10
        while set(seen) == before and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        new = set(seen) - before
        if new:
            delays.append((seen[min(new)] - began) * 1000)
        await asyncio.sleep(0.2)  # one alert at a time: each is its own incident and card
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    p50, p99 = pct(delays, 0.5), pct(delays, 0.99)
    print(
        f"alert → first SSE event: {len(delays)}/{alerts} seen, p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms, max {max(delays, default=float('nan')):.0f} ms"
    )
    figure(19, "alert → first SSE event p50", p50, "ms", "", None)
    figure(19, "alert → first SSE event p99", p99, "ms", "< 500", p99 < 500)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--alerts", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3, help="load runs; figures are medians")
    parser.add_argument("--profile", default="", help="the bot's CPU profile of the runs, here")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="larkops-bench-api-"))
    server = EmbeddedPostgres(home / "pg", fsync=False)
    url = await asyncio.to_thread(server.start)
    bot: subprocess.Popen[bytes] | None = None
    try:
        began = time.perf_counter()
        key = await prepare(url, args.incidents)
        print(f"{args.incidents} incidents in the database ({time.perf_counter() - began:.1f} s)")
        port = free_port()
        (home / "larkops.yaml").write_text(
            "api: {key_rate: 100000, key_burst: 100000, ip_rate: 100000, ip_burst: 100000}\n"
        )
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "LARKOPS_HOME": str(home / "home"),
            "LARKOPS_HTTP_PORT": str(port),
            "LARKOPS_WEBHOOK_TOKEN": TOKEN,
            "LARKOPS_ALERT_CHAT_ID": "oc_ops",
            "LARKOPS_CONFIG": str(home / "larkops.yaml"),
            "LARKOPS_LOG_LEVEL": "warning",
            "LARK_APP_ID": "",
        }
        command = [str(Path(sys.executable).parent / "larkops"), "run"]
        if args.profile:  # where the bot's time goes: read with `python -m pstats PATH`
            command = [sys.executable, "-c", PROFILED, args.profile, "run"]
        bot = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
        ) as client:
            await wait_ready(client, key)
            await measure(port, key, args, bot.pid, server.data)
            await stream(client, key, args.alerts)
    finally:
        if bot is not None:
            bot.send_signal(signal.SIGTERM)
            try:
                bot.wait(30)
            except subprocess.TimeoutExpired:
                bot.kill()
        await asyncio.to_thread(server.release)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
