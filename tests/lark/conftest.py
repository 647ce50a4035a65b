"""Fixtures for Lark scenario tests: the emulator, and a bot connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from bot.assembly import assemble
from bot.config import load_settings
from bot.lark.runtime import LarkTarget
from bot.router import Router
from bot.sandbox.emulator import LarkEmulator
from bot.sandbox.model import ClientConfig
from bot.sandbox.server import serve_emulator
from bot.timers import Timers
from storage.coordination import MemoryCoordination
from tests.conftest import World
from tests.lark.testbot import TestBot, wait_until
from workflows.checkpoint import open_checkpointer

SIGNING_KEY = b"k" * 32
# a test bot's sweeps and gauges run only when the test asks (`await bot.sweep()`)
TEST_TIMERS = Timers(
    sweep_every=None,
    backlog_every=None,
    reclaim_after=0.0,
    verify_every=0.2,
    expire_every=None,
    page_every=None,
)
Factory = Callable[..., Any]


@pytest.fixture
async def make_testbot(world: World) -> AsyncIterator[Callable[..., Any]]:
    """Start bots on demand: `await make_testbot(router=..., settings={...})`.

    Each bot lives in the test's own world (database, emulator, directory); its sweeps run only
    when the test calls `await bot.sweep()` (`timers=` to change that). It is built as the app is
    (`bot.assembly.assemble`), with every desk; `incidents=True` gives it the app's Postgres
    checkpointer (crash recovery, other replicas), else its runs are checkpointed in memory."""
    stack = AsyncExitStack()
    migrated_db, fresh_db_url, tmp_path = world.db, world.db_url, world.tmp

    async def start(
        *,
        emulator: LarkEmulator | None = None,
        base_url: str | None = None,
        extra_router: Router | None = None,
        settings: dict[str, Any] | None = None,
        wait_connected: bool = True,
        incidents: bool = False,
        timers: Timers | None = None,
    ) -> TestBot:
        if emulator is None:
            emulator = LarkEmulator(
                ack_deadline=3.0,
                client_config=ClientConfig(reconnect_interval=1, reconnect_nonce=0),
            )
        if base_url is None:
            base_url = await stack.enter_async_context(serve_emulator(emulator))
        options = {"home": str(tmp_path / "home"), **(settings or {})}
        checkpointer = None
        if incidents:
            checkpointer = await stack.enter_async_context(open_checkpointer(fresh_db_url))
        runtime = assemble(
            load_settings(**options),
            migrated_db,
            MemoryCoordination(),
            LarkTarget(emulator.app_id, emulator.app_secret, base_url, sandbox=True),
            SIGNING_KEY,
            checkpointer=checkpointer,
            extra_router=extra_router,
            timers=timers or TEST_TIMERS,
        )
        runtime.start()
        stack.push_async_callback(runtime.stop)
        if wait_connected:
            await wait_until(
                lambda: runtime.state() == "connected" and emulator.connections > 0,
                timeout=30,
                what=f"the long connection (state {runtime.state()})",
            )
            # and started: the desks recovered what a previous process left (a row a test adds
            # before that would be taken for such a leftover and run) and handle events
            await wait_until(
                lambda: runtime.dispatcher is not None, timeout=30, what="the desks started"
            )
        return TestBot(emulator, runtime, migrated_db)

    yield start
    await stack.aclose()


@pytest.fixture
async def testbot(make_testbot: Factory) -> TestBot:
    bot: TestBot = await make_testbot()
    return bot
