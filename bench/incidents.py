"""Incident path figures: click → next card, alert ingest with dedupe, resume vs paused runs.

1. Ingest: Alertmanager v4 batches (50 alerts drawn from 40 fingerprints, one chat, storm
   threshold 1000 so every fingerprint is an ordinary incident) POSTed to
   `/webhooks/alertmanager` by several clients for `--seconds`: accepted alerts/s at HTTP,
   alerts/s committed to `alerts` end to end (waiting at most `--drain` s), loss check.
2. Clicks: `--incidents` WebDown incidents (rules provider: runbook, http_check, `command`
   template); the diagnosis gate's 批准 is clicked; ms until the emulator shows the proposal
   gate on that card: p50/p99, and where the time goes (incident_events timestamps).
3. Resume, in process without Lark: claim + `RunManager.resume` to the next gate, with 10 and
   with `--paused` other runs paused (two databases on one server, samples alternated).
Parts 1-2 play Lark with the emulator; `larkops run` is the bot (its embedded Postgres, fsync
on); part 2 runs first so the ingest backlog cannot slow it. Prints figures; asserts nothing.

    .venv/bin/python bench/incidents.py [--seconds 10] [--paused 10000] [--parts 123]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import yaml
from figures import figure
from incident_resume import med, pct, resume_part  # bench/, next to this file
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import Chat
from bot.sandbox.server import serve_emulator

LARKOPS = str(Path(sys.executable).parent / "larkops")
TOKEN = "bench-webhook-token"
INGEST = Chat("oc_bench_ingest", "ingest")
CLICK_CHATS = [Chat(f"oc_bench_click_{n}", f"click {n}") for n in range(6)]
APPROVE = "批准"
NAMES = ["NodeCPUHigh", "NodeMemoryHigh", "DiskAlmostFull", "HTTP5xxRate", "PodCrashLooping"]
POOL = [(name, f"10.0.{n}.{7 + i}:9100") for n, name in enumerate(NAMES) for i in range(8)]
AM_ALERT = {
    "status": "firing",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prom:9090/g",
}
AM_GROUP = {"version": "4", "status": "firing", "receiver": "larkops", "groupLabels": {}}
AM_GROUP |= {"commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def alert(labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    fingerprint = uuid.uuid4().hex[:16]  # Alertmanager's own; larkops computes its own
    return {
        **AM_ALERT,
        "labels": labels,
        "annotations": annotations,
        "startsAt": started,
        "fingerprint": fingerprint,
    }


def notification(alerts: list[dict[str, Any]]) -> bytes:
    key = f'{{}}:{{alertname="{alerts[0]["labels"]["alertname"]}"}}'
    return json.dumps({**AM_GROUP, "groupKey": key, "alerts": alerts}).encode()


def labels(name: str, instance: str) -> dict[str, str]:
    return {"alertname": name, "instance": instance, "job": "node", "severity": "warning"}


def ingest_batch(rng: random.Random, size: int = 50) -> bytes:
    picked = [rng.choice(POOL) for _ in range(size)]
    return notification(
        [
            alert(labels(n, i), {"summary": f"{n} on {i}", "value": f"{rng.random():.6f}"})
            for n, i in picked
        ]
    )


def gate_of(card: dict[str, Any] | None) -> dict[str, Any] | None:
    """The callback value of the card's 批准 button (it names the gate), if it has one."""
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("tag") == "button" and (node.get("text") or {}).get("content") == APPROVE:
                for behavior in node.get("behaviors") or []:
                    if behavior.get("type") == "callback":
                        return dict(behavior["value"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


class Bot:
    """`larkops run` against the emulator, with its embedded Postgres under `home`."""

    def __init__(self, home: Path, url: str, emulator: LarkEmulator) -> None:
        self.home, self.port = home, free_port()
        self.http = f"http://127.0.0.1:{self.port}"
        config = home / "larkops.yaml"
        config.write_text(yaml.safe_dump(settings(home)), encoding="utf-8")
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
        }
        self.log = (home / "bot.log").open("wb")
        self.proc = subprocess.Popen(
            [LARKOPS, "run"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    @property
    def dsn(self) -> str:
        port = (self.home / "home" / "postgres" / "port").read_text().strip()
        return f"postgresql://postgres@127.0.0.1:{port}/larkops"

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far of the bot, its Postgres (live processes) and this process."""
        pidfile = self.home / "home" / "postgres" / "data" / "postmaster.pid"
        server = psutil.Process(int(pidfile.read_text().split()[0]))
        postgres = 0.0
        for proc in [server, *server.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                postgres += sum(proc.cpu_times()[:2])
        mine, bot = psutil.Process(), psutil.Process(self.proc.pid)
        return sum(bot.cpu_times()[:2]), postgres, sum(mine.cpu_times()[:2])

    async def ready(self) -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{self.http}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def post(self, client: httpx.AsyncClient, body: bytes, chat: str) -> httpx.Response:
        return await client.post(
            f"{self.http}/webhooks/alertmanager?chat={chat}",
            content=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )

    async def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            return await (await conn.execute(query, args or None)).fetchall()


def settings(home: Path) -> dict[str, Any]:
    template = {
        "argv": ["/usr/bin/touch", f"{home}/healthy-{{service}}"],
        "params": {"service": "^[a-z]{1,20}$"},
        "risk": "medium",
        "timeout": 10,
        "title_zh": "重启 Web 服务",
        "title_en": "Restart the web service",
    }
    check = {"plugin": "http_check", "params": {"url": "{annotations.url}"}}
    fix = {"template": "restart_web", "args": {"service": "{labels.service}"}}
    return {
        "approvers": ["ou_bob"],
        "incidents": {"storm_threshold": 1000, "storm_window_seconds": 10},
        "plugins": {"settings": {"command": {"templates": {"restart_web": template}}}},
        "runbooks": [
            {
                "name": "web-down",
                "match": {"alertname": "WebDown"},
                "diagnose": [check],
                "propose": {
                    "plugin": "command",
                    "params": fix,
                    "title_zh": "重启",
                    "title_en": "Restart",
                },
                "verify": check,
            }
        ],
    }


async def clicks(bot: Bot, emulator: LarkEmulator, health: str, count: int) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(count):
            service = f"web{chr(97 + n // 26)}{chr(97 + n % 26)}"
            labelled = {"alertname": "WebDown", "service": service, "severity": "critical"}
            body = notification([alert(labelled, {"url": health, "summary": "web is down"})])
            await bot.post(client, body, CLICK_CHATS[n % len(CLICK_CHATS)].chat_id)
    started, cards = time.monotonic(), dict[str, tuple[str, dict[str, Any]]]()
    while len(cards) < count and time.monotonic() - started < 90:
        for chat in CLICK_CHATS:
            for message in emulator.transcript(chat.chat_id):
                value = gate_of(message.card)
                if value and value["gate"] == "diagnosis":
                    cards[message.message_id] = (chat.chat_id, value)
        await asyncio.sleep(0.2)
    print(
        f"clicks: {len(cards)}/{count} diagnosis gates shown in {time.monotonic() - started:.1f} s"
    )
    await asyncio.sleep(1.5)  # a person clicks a while after the card shows: buckets refilled
    clicked, shown, acks = {}, {}, []
    for message_id, (chat_id, value) in cards.items():

        def proposal(m: Any, mid: str = message_id) -> bool:
            return bool(m.message_id == mid and (gate_of(m.card) or {}).get("gate") == "proposal")

        clicked[value["incident_id"]] = time.time()
        acks.append((await emulator.click(message_id, "ou_bob", value)).latency_ms or 0.0)
        with contextlib.suppress(TimeoutError):
            await emulator.wait_for_bot_message(chat_id, proposal, 10)
            shown[value["incident_id"]] = time.time()
    latencies = [1000 * (shown[i] - clicked[i]) for i in shown]
    print(
        f"click 批准 -> proposal gate on the card ({len(shown)} incidents, "
        f"{len(cards) - len(shown)} never shown): p50 {pct(latencies, 0.5):.0f} ms, "
        f"p99 {pct(latencies, 0.99):.0f} ms (goal p99 < 300 ms); click ack p50 {med(acks):.0f} ms"
    )
    p99 = pct(latencies, 0.99)
    figure(4, "click -> next card (proposal gate) p99", p99, "ms", "< 300", p99 < 300)
    figure(
        4,
        "clicks whose next card never showed",
        len(cards) - len(shown),
        "clicks",
        "0",
        len(cards) == len(shown),
    )
    events = await bot.rows(
        "SELECT incident_id, kind, extract(epoch FROM created_at) FROM incident_events "
        "WHERE kind IN ('click.accepted', 'workflow.proposed', 'gate.opened') "
        "AND incident_id = ANY(%s) ORDER BY id",
        list(shown),
    )
    at = {(i, kind): float(t) for i, kind, t in events}  # the last gate.opened: the proposal's
    kinds = ["click.accepted", "workflow.proposed", "gate.opened"]
    marks = {i: [clicked[i], *(at[i, k] for k in kinds), shown[i]] for i in shown}
    names = ["claim committed", "resumed to proposed", "proposal gate opened", "card patched"]
    steps = [med([marks[i][n + 1] - marks[i][n] for i in shown]) for n in range(len(names))]
    print(
        "  where it goes, median ms after the previous step (transaction start times): "
        + ", ".join(f"{name} +{1000 * step:.0f}" for name, step in zip(names, steps, strict=True))
    )


async def ingest(bot: Bot, seconds: float, clients: int, drain: float) -> None:
    rng = random.Random(7)
    active = "SELECT count(*) FROM incidents WHERE chat_id = %s AND status = 'awaiting_approval'"
    async with httpx.AsyncClient(timeout=30) as client:
        # warm-up: every fingerprint opens its incident (cards are paced at 4.5/s per chat)
        started = time.monotonic()
        await bot.post(client, notification([alert(labels(*p), {}) for p in POOL]), INGEST.chat_id)
        while time.monotonic() - started < 60:
            if (await bot.rows(active, INGEST.chat_id))[0][0] >= len(POOL):
                break
            await asyncio.sleep(0.2)
        print(
            f"ingest: warm-up, {len(POOL)} incidents at their first gate in "
            f"{time.monotonic() - started:.1f} s"
        )
        bodies = [ingest_batch(rng) for _ in range(int(seconds * 4000 / 50))]
        base = (await bot.rows("SELECT count(*) FROM alerts"))[0][0]
        sent, latencies, refused, waits = 0, [], Counter[int](), Counter[str]()
        cpu0, began = bot.cpu(), time.monotonic()
        deadline, draining = began + seconds, True

        async def client_loop() -> None:
            nonlocal sent
            while time.monotonic() < deadline and bodies:
                t0 = time.perf_counter()
                answer = await bot.post(client, bodies.pop(), INGEST.chat_id)
                latencies.append((time.perf_counter() - t0) * 1000)
                if answer.status_code == 202:
                    sent += int(answer.json()["alerts"])
                else:
                    refused[answer.status_code] += 1

        async def sample_waits() -> None:
            async with await psycopg.AsyncConnection.connect(bot.dsn, autocommit=True) as conn:
                while draining:
                    for state, kind, event in await (
                        await conn.execute(
                            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                            "WHERE datname = 'larkops' AND state <> 'idle' "
                            "AND pid <> pg_backend_pid()"
                        )
                    ).fetchall():
                        waits[f"{state} {kind or 'cpu'}:{event or '-'}"] += 1
                    await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample_waits())
        await asyncio.gather(*(client_loop() for _ in range(clients)))
        http_s = time.monotonic() - began
        committed, last_change = base, time.monotonic()
        while committed - base < sent and time.monotonic() - began < seconds + drain:
            await asyncio.sleep(0.05)
            now = (await bot.rows("SELECT count(*) FROM alerts"))[0][0]
            if now != committed:
                committed, last_change = now, time.monotonic()
        draining = False
        await sampler
        e2e = last_change - began
        cpu = [(b - a) / (time.monotonic() - began) for a, b in zip(cpu0, bot.cpu(), strict=True)]
    done = committed - base == sent
    print(
        f"  {sent} alerts accepted in {http_s:.1f} s by {clients} clients: {sent / http_s:.0f} "
        f"alerts/s at HTTP; POST p50 {pct(latencies, 0.5):.0f} ms, "
        f"p99 {pct(latencies, 0.99):.0f} ms; "
        f"refused {dict(refused)}"
    )
    print(
        f"  committed end to end: {(committed - base) / e2e:.0f} alerts/s ({committed - base} in "
        f"{e2e:.1f} s{'' if done else f'; NOT drained after {drain:.0f} s more'}) "
        "(goal >= 2000 alerts/s sustained)"
    )
    print(
        f"  CPU cores busy over send+drain: bot {cpu[0]:.2f}, postgres {cpu[1]:.2f}, "
        f"bench {cpu[2]:.2f}"
    )
    total = sum(waits.values()) or 1
    print(
        "  bot's busy Postgres sessions (pg_stat_activity samples): "
        + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in waits.most_common(4))
    )
    rows, counted, silenced, opened, queued, waiting = (
        await bot.rows(  # one snapshot
            "SELECT (SELECT count(*) FROM alerts), (SELECT sum(alert_count) FROM incidents "
            "WHERE chat_id = %s), (SELECT count(*) FROM alerts WHERE incident_id IS NULL), "
            "(SELECT count(*) FROM incidents WHERE chat_id = %s), (SELECT count(*) FROM "
            "inbound_events WHERE status = 'pending'), (SELECT coalesce(sum(jsonb_array_length("
            "payload->'body'->'alerts')), 0) FROM inbound_events WHERE status = 'pending')",
            INGEST.chat_id,
            INGEST.chat_id,
        )
    )[0]
    rows, counted = rows - base, counted + silenced - len(POOL)
    print(
        f"  loss check: alerts rows {rows}/{sent} sent, sum(alert_count) + silenced {counted}/"
        f"{sent}, incidents {opened} (fingerprints {len(POOL)}); still queued {queued} "
        f"deliveries, {waiting} alerts: committed + queued - sent = {rows + waiting - sent} "
        "(deliveries being handled are partly committed yet still pending)"
    )
    rate, lost = (committed - base) / e2e, max(0, sent - rows - waiting)
    figure(4, "alert ingest committed end to end", rate, "alerts/s", ">= 2000", rate >= 2000)
    figure(4, "alerts lost (sent - committed - still queued)", lost, "alerts", "0", lost == 0)


async def lark_parts(seconds: float, clients: int, count: int, drain: float, parts: str) -> None:
    emulator = LarkEmulator(chats=[INGEST, *CLICK_CHATS])
    home = Path(tempfile.mkdtemp(prefix="larkops-bench-incidents-"))

    async def down(_: Request) -> PlainTextResponse:
        return PlainTextResponse("down", status_code=503)

    async with serve_emulator(emulator, extra_routes=[Route("/health", down)]) as url:
        bot = Bot(home, url, emulator)
        try:
            while not (emulator.connections and await bot.ready()):
                if bot.proc.poll() is not None:
                    raise SystemExit(f"larkops exited: {(home / 'bot.log').read_text()}")
                await asyncio.sleep(0.1)
            if "2" in parts:
                await clicks(bot, emulator, f"{url}/health", count)
            if "1" in parts:
                await ingest(bot, seconds, clients, drain)
        finally:
            bot.proc.send_signal(signal.SIGTERM)
            bot.proc.wait(60)
            bot.log.close()
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--drain", type=float, default=120, help="max wait for the backlog")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--incidents", type=int, default=30)
    parser.add_argument("--paused", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=25)
    parser.add_argument("--parts", default="123", help="which measurements, e.g. 13")
    args = parser.parse_args()
    if "1" in args.parts or "2" in args.parts:
        asyncio.run(lark_parts(args.seconds, args.clients, args.incidents, args.drain, args.parts))
    if "3" in args.parts:
        asyncio.run(resume_part(args.paused, args.samples, workers=os.cpu_count() or 2))


if __name__ == "__main__":
    main()
