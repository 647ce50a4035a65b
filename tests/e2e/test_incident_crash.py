"""Crashes of the real `larkops run` process (SIGKILL) in the middle of incidents.

The test process plays Lark (the emulator) and the service under repair (a health endpoint);
the bot is a separate process that gets its alert through the real webhook. It is killed while
paused at each gate, and while the remediation runs; after a restart the buttons still work and
nothing is repeated.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from bot.lark.events import card_text
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import ClientConfig
from bot.sandbox.record import Message
from bot.sandbox.server import serve_emulator
from tests.conftest import free_port
from tests.e2e.process import Bot
from tests.lark.testbot import card_buttons, wait_until
from tests.support.health import health_service

TOKEN = "webhook-test-token"
APPROVE = "批准"


@dataclass
class World:
    emulator: LarkEmulator
    lark_url: str
    health_url: str
    state: Path
    home: Path
    env: dict[str, str]

    def bot(self) -> Bot:
        return Bot(self.home, free_port(), env=self.env).start()

    def dsn(self) -> str:
        port = (self.home / "postgres" / "port").read_text(encoding="utf-8").strip()
        return f"postgresql://postgres@127.0.0.1:{port}/larkops"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn()) as conn:
            return list(conn.execute(sql).fetchall())

    def runs_logged(self) -> int:
        log = self.state / "runs.log"
        return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    state = tmp_path / "state"
    state.mkdir()
    marker = state / "healthy-web"

    emulator = LarkEmulator(client_config=ClientConfig(reconnect_interval=1, reconnect_nonce=0))
    slow = (
        f"import time,pathlib;pathlib.Path('{state}/runs.log').open('a').write('run\\n');"
        f"time.sleep(4);pathlib.Path('{marker}').touch()"  # the fix's work takes 4 s
    )
    config = {
        "approvers": ["ou_bob", "ou_carol"],
        "plugins": {
            "settings": {
                "command": {
                    "templates": {
                        "restart_web": {
                            "argv": [sys.executable, "-c", slow],
                            "risk": "medium",
                            "timeout": 30,
                        },
                    }
                }
            }
        },
        "runbooks": [
            {
                "name": "web-down",
                "match": {"alertname": "WebDown"},
                "diagnose": [{"plugin": "http_check", "params": {"url": "{annotations.url}"}}],
                "propose": {"plugin": "command", "params": {"template": "restart_web", "args": {}}},
                "verify": {"plugin": "http_check", "params": {"url": "{annotations.url}"}},
            }
        ],
    }
    (tmp_path / "larkops.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    async with health_service(marker) as health_url, serve_emulator(emulator) as lark_url:
        env = {
            "LARK_APP_ID": emulator.app_id,
            "LARK_APP_SECRET": emulator.app_secret,
            "LARK_DOMAIN": lark_url,
            "LARKOPS_CONFIG": str(tmp_path / "larkops.yaml"),
            "LARKOPS_WEBHOOK_TOKEN": TOKEN,
            "LARKOPS_ALERT_CHAT_ID": "oc_ops",
            "LARKOPS_FETCH_ALLOW": "127.0.0.1",  # the health endpoint, as a deployment lists it
        }
        yield World(emulator, lark_url, health_url, state, tmp_path / "home", env)


async def connected(world: World, bot: Bot) -> None:
    def up() -> bool:
        body = httpx.get(f"{bot.url}/readyz").json()
        return body.get("lark") == "connected" and world.emulator.connections > 0

    await wait_until(lambda: asyncio.to_thread(up), timeout=60, what="the long connection")


async def post_alert(world: World, bot: Bot) -> dict[str, Any]:
    alert = {
        "title": "WebDown",
        "severity": "critical",
        "labels": {"alertname": "WebDown", "service": "web"},
        "annotations": {"url": world.health_url},
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{bot.url}/webhooks/generic", json=alert, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def gate_card(world: World, gate_hint: str) -> tuple[Message, dict[str, Any]]:
    """The incident card once it offers the approve button for the gate (`gate_hint` shown)."""

    def ready(message: Message) -> bool:
        return APPROVE in card_buttons(message.card) and gate_hint in card_text(message.card)

    card = await world.emulator.wait_for_bot_message("oc_ops", ready, 30)
    return card, dict(card_buttons(card.card)[APPROVE])


async def approve(world: World, card: Message, value: dict[str, Any], who: str) -> str:
    click = await world.emulator.click(card.message_id, who, value)
    assert click.toast is not None
    return str(click.toast["type"])


def kill(bot: Bot) -> None:
    assert bot.stop(signal.SIGKILL) == -signal.SIGKILL


@pytest.mark.parametrize("gate", ["diagnosis", "proposal"])
async def test_killed_while_paused_at_a_gate(world: World, gate: str) -> None:
    bot = world.bot()
    await connected(world, bot)
    assert (await post_alert(world, bot))["alerts"] == 1
    card, value = await gate_card(world, "http_check")
    if gate == "proposal":
        assert await approve(world, card, value, "ou_bob") == "success"
        card, value = await gate_card(world, "restart_web")
    kill(bot)

    bot = world.bot()
    try:
        await connected(world, bot)
        # the button sent before the crash still works after it
        assert await approve(world, card, value, "ou_carol") == "success"
        if gate == "diagnosis":
            card, value = await gate_card(world, "restart_web")
            assert await approve(world, card, value, "ou_carol") == "success"
        await wait_until(
            lambda: asyncio.to_thread(
                lambda: world.rows("SELECT status FROM incidents") == [("resolved",)]
            ),
            timeout=40,
            what="resolution",
        )
        assert world.runs_logged() == 1
        assert world.rows("SELECT count(*) FROM executions WHERE step = 'execute'") == [(1,)]
        assert world.rows("SELECT count(*) FROM incidents") == [(1,)]
    finally:
        assert await bot.astop() == 0


async def test_killed_while_the_fix_runs_is_not_run_twice(world: World) -> None:
    bot = world.bot()
    await connected(world, bot)
    await post_alert(world, bot)
    card, value = await gate_card(world, "http_check")
    assert await approve(world, card, value, "ou_bob") == "success"
    card, value = await gate_card(world, "restart_web")
    assert await approve(world, card, value, "ou_carol") == "success"
    await wait_until(lambda: world.runs_logged() == 1, timeout=30, what="the fix to start")
    kill(bot)  # mid-remediation

    bot = world.bot()
    try:
        await connected(world, bot)
        await wait_until(
            lambda: asyncio.to_thread(
                lambda: world.rows("SELECT status FROM incidents")[0][0] == "escalated"
            ),
            timeout=40,
            what="escalation of the interrupted fix",
        )
        reason = world.rows("SELECT escalation_reason FROM incidents")[0][0]
        assert "not run again" in reason
        # the orphaned first run (its own session: the SIGKILL did not reach it) finishes…
        await wait_until(
            lambda: (world.state / "healthy-web").exists(), timeout=30, what="the orphaned fix"
        )
        # …and nothing started another, nor recorded a second execution
        assert world.runs_logged() == 1
        assert world.rows("SELECT count(*) FROM executions WHERE step = 'execute'") == [(1,)]
    finally:
        assert await bot.astop() == 0


async def test_webhook_refuses_bad_requests_and_dedupes(world: World) -> None:
    bot = world.bot()
    try:
        url = f"{bot.url}/webhooks"
        good = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient() as client:
            assert (await client.post(f"{url}/generic", json={"title": "x"})).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await client.post(f"{url}/generic", json={}, headers=wrong)).status_code == 401
            bad = await client.post(f"{url}/generic", content=b"{nope", headers=good)
            assert bad.status_code == 400
            assert "JSON" in bad.json()["error"]
            empty = await client.post(f"{url}/alertmanager", json={"alerts": []}, headers=good)
            assert empty.status_code == 400
            assert (await client.post(f"{url}/nagios", json={}, headers=good)).status_code == 404
            body = json.dumps({"title": "DiskFull", "labels": {"alertname": "DiskFull"}})
            first = await client.post(f"{url}/generic", content=body, headers=good)
            again = await client.post(f"{url}/generic", content=body, headers=good)
        assert first.status_code == 202
        assert again.json()["status"] == "duplicate"
        await wait_until(
            lambda: asyncio.to_thread(
                lambda: world.rows("SELECT title, alert_count FROM incidents") == [("DiskFull", 1)]
            ),
            timeout=30,
            what="the incident",
        )
    finally:
        assert await bot.astop() == 0
