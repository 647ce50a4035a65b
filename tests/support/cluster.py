"""Pieces for replica and fault tests: a private `redis-server`, `larkops run` replicas against
the Lark emulator, and the checks every such test ends with (no lost incident, one card each,
no fix run twice). The service under repair is in `tests.support.repair`.

The test process plays Lark (the emulator, seeded so the choice of connection per event is
reproducible) and the monitored services; each bot is a real `larkops run` subprocess.

    redis = RedisServer(tmp / "redis").start()        # never the system Redis at :6379
    replica = await Replica("a", tmp / "a", env).start(emulator)   # ready and connected
    await replica.kill()                               # SIGKILL
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil
import psycopg
import pytest

from bot.lark.events import card_text
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.record import Message
from tests.e2e.process import Bot
from tests.support.wait import wait_until, wait_until_sync

if TYPE_CHECKING:
    from tests.support.repair import Services

TOKEN = "cluster-webhook-token"
APPROVE = "批准"
CARD_TITLE = re.compile(r"^#(\d+) ")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# Redis --------------------------------------------------------------------------------------


class RedisServer:
    """A private `redis-server` on its own port and directory (no persistence)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is required for the replica and fault tests "
                "(apt-get install redis-server)",
                pytrace=False,
            )
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"redis-server exited {process.returncode}")
            return self.answers()

        wait_until_sync(up, timeout, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


# larkops replicas ---------------------------------------------------------------------------


class Replica:
    """One `larkops run` process (see `tests.e2e.process.Bot`); blocking calls run in threads
    so the emulator, served by the test's loop, keeps answering meanwhile."""

    def __init__(self, name: str, home: Path, env: dict[str, str]) -> None:
        self.name = name
        self.home = home
        self.env = env
        self.bot: Bot | None = None

    @property
    def url(self) -> str:
        assert self.bot is not None
        return self.bot.url

    @property
    def pid(self) -> int:
        assert self.bot is not None
        assert self.bot.process is not None
        return self.bot.process.pid

    @property
    def alive(self) -> bool:
        return bool(self.bot and self.bot.process and self.bot.process.poll() is None)

    async def start(self, emulator: LarkEmulator | None = None) -> Replica:
        # a replica here stands for one machine's one process (several processes on one machine:
        # tests/replicas/test_intake_workers.py)
        self.bot = Bot(self.home, free_port(), env=self.env, args=("--workers", "1"))
        await asyncio.to_thread(self.bot.start, True, 90)
        if emulator is not None:
            await self.connected(emulator)
        return self

    async def connected(self, emulator: LarkEmulator, timeout: float = 60) -> None:
        await wait_until(
            lambda: self.connection(emulator) is not None,
            timeout,
            f"{self.name}'s long connection\n{self.log()[-3000:]}",
        )

    def connection(self, emulator: LarkEmulator) -> str | None:
        """The id of this process's live long connection at the emulator."""
        ports = self.local_ports()
        for conn in emulator.gateway.connections.values():
            if int(conn.peer.rsplit(":", 1)[-1] or 0) in ports:
                return conn.conn_id
        return None

    def local_ports(self) -> set[int]:
        if not self.alive:
            return set()
        try:
            sockets = psutil.Process(self.pid).net_connections(kind="tcp")
        except psutil.Error:
            return set()
        return {s.laddr.port for s in sockets if s.laddr}

    async def ready(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                return (await client.get(f"{self.url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(f"{self.url}/readyz")
        return answer.status_code, dict(answer.json())

    async def post(self, body: dict[str, Any], chat: str = "oc_ops") -> httpx.Response:
        async with httpx.AsyncClient(timeout=15) as client:
            return await client.post(
                f"{self.url}/webhooks/generic?chat={chat}",
                content=json.dumps(body),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )

    async def kill(self) -> None:
        """SIGKILL, as the OOM killer or a node failure would."""
        assert self.bot is not None
        code = await asyncio.to_thread(self.bot.stop, signal.SIGKILL, 30)
        assert code == -signal.SIGKILL, f"{self.name} exited {code} before the kill"

    async def stop(self) -> int | None:
        """SIGTERM (a clean stop); None when it was not running."""
        if self.bot is None or self.bot.process is None:
            return None
        if self.bot.process.poll() is not None:
            return self.bot.process.returncode
        try:
            return await asyncio.to_thread(self.bot.stop, signal.SIGTERM, 45)
        except subprocess.TimeoutExpired:
            self.bot.process.kill()
            return await asyncio.to_thread(self.bot.process.wait, 10)

    def log(self) -> str:
        return self.bot.log() if self.bot is not None else ""


def replica_env(
    emulator: LarkEmulator, lark_url: str, config: Path, **extra: str
) -> dict[str, str]:
    env = {
        "LARK_APP_ID": emulator.app_id,
        "LARK_APP_SECRET": emulator.app_secret,
        "LARK_DOMAIN": lark_url,
        "LARKOPS_CONFIG": str(config),
        "LARKOPS_WEBHOOK_TOKEN": TOKEN,
        "LARKOPS_ALERT_CHAT_ID": "oc_ops",
        "LARKOPS_LOG_LEVEL": "info",
        # the services under repair answer on 127.0.0.1: listed, as a real deployment would
        "LARKOPS_FETCH_ALLOW": "127.0.0.1",
    }
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def running(*replicas: Replica) -> AsyncIterator[None]:
    """Stop (SIGTERM, then SIGKILL) every replica still running at the end, even on failure."""
    try:
        yield
    finally:
        for replica in replicas:
            with contextlib.suppress(Exception):
                await replica.stop()
            if replica.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(replica.pid, signal.SIGKILL)


# the database and the transcript ------------------------------------------------------------


async def rows(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return list(await (await conn.execute(sql, args or None)).fetchall())


async def inbox_settled(dsn: str) -> bool:
    """True once no inbound event is pending or being handled: every message the bot took has
    been dealt with, so none of them will be answered (again) later."""
    left = await rows(
        dsn, "SELECT count(*) FROM inbound_events WHERE status IN ('pending', 'processing')"
    )
    return bool(left[0][0] == 0)


def incident_cards(emulator: LarkEmulator, chat: str = "oc_ops") -> dict[int, list[Message]]:
    """Incident id -> the bot's card messages titled `#<id> …` in the chat."""
    found: dict[int, list[Message]] = {}
    for message in emulator.transcript(chat):
        if message.sender_id != emulator.bot.open_id or message.card is None:
            continue
        title = str(((message.card.get("header") or {}).get("title") or {}).get("content", ""))
        match = CARD_TITLE.match(title)
        if match:
            found.setdefault(int(match.group(1)), []).append(message)
    return found


def approve_value(message: Message) -> dict[str, Any] | None:
    """The callback value of the card's 批准 button, when it has one."""
    stack: list[Any] = [message.card]
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


def shows(message: Message, text: str) -> bool:
    return text in card_text(message.card)


async def check_invariants(
    dsn: str, emulator: LarkEmulator, board: Services, fingerprints: dict[str, int]
) -> dict[str, Any]:
    """No lost incident (one per service alerted, alert counts add up), exactly one card per
    incident, each execution step once, each fix run at most once. Returns a summary."""
    incidents = await rows(
        dsn,
        "SELECT id, coalesce(labels->>'service', labels->>'instance'), alert_count, status, "
        "card_message_id FROM incidents",
    )
    by_service = {
        service: (iid, count, status, card) for iid, service, count, status, card in incidents
    }
    assert sorted(by_service) == sorted(fingerprints), (by_service, fingerprints)
    assert len(incidents) == len(fingerprints), "two incidents for one alert"
    for service, sent in fingerprints.items():
        assert by_service[service][1] == sent, f"{service}: {by_service[service][1]} of {sent}"
    cards = incident_cards(emulator)
    for iid, _service, _count, _status, card_id in incidents:
        messages = cards.get(iid, [])
        assert [m.message_id for m in messages] == [card_id], f"incident {iid} cards: {messages}"
    doubled = await rows(
        dsn, "SELECT run_id, step, count(*) FROM executions GROUP BY 1, 2 HAVING count(*) > 1"
    )
    assert doubled == []
    runs = board.runs()
    assert all(n == 1 for n in runs.values()), f"a fix ran twice: {runs}"
    return {
        "incidents": len(incidents),
        "statuses": dict(Counter(status for _i, _s, _c, status, _m in incidents)),
        "alerts": sum(count for _i, _s, count, _st, _m in incidents),
        "cards": sum(len(v) for v in cards.values()),
        "fixes_run": sum(runs.values()),
    }


async def describe(dsn: str) -> str:
    """The incidents and their last events, for a failure message."""
    lines = []
    for iid, status, count, reason in await rows(
        dsn, "SELECT id, status, alert_count, escalation_reason FROM incidents ORDER BY id"
    ):
        events = await rows(
            dsn,
            "SELECT kind FROM incident_events WHERE incident_id = %s ORDER BY id",
            iid,
        )
        kinds = " > ".join(k for (k,) in events[-8:])
        lines.append(f"#{iid} {status} x{count} {reason or ''}: … {kinds}")
    for gate in await rows(dsn, "SELECT incident_id, gate, status FROM approvals ORDER BY id"):
        lines.append(f"gate {gate}")
    return "\n".join(lines)
