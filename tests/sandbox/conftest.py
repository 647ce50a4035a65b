"""Fixtures: a fresh emulator on a free port per test, and real SDK clients against it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import lark_oapi as lark
import pytest

from bot.sandbox import ClientConfig, LarkEmulator, serve_emulator
from tests.sandbox.sdk import SdkWsClient, rest_client
from tests.support.wait import wait_until

FAST = ClientConfig(reconnect_count=-1, reconnect_interval=1, reconnect_nonce=0, ping_interval=30)


@pytest.fixture
def emu() -> LarkEmulator:
    """A new emulator; its unique app_id keeps the SDK's global token cache apart per test."""
    return LarkEmulator(app_id=f"cli_{secrets.token_hex(8)}", ack_deadline=0.5, client_config=FAST)


@pytest.fixture
async def base_url(emu: LarkEmulator) -> AsyncIterator[str]:
    async with serve_emulator(emu) as url:
        yield url


@pytest.fixture
def rest(emu: LarkEmulator, base_url: str) -> lark.Client:
    return rest_client(base_url, emu.app_id, emu.app_secret)


Connect = Callable[..., Any]


@pytest.fixture
async def sdk_clients(emu: LarkEmulator, base_url: str) -> AsyncIterator[list[SdkWsClient]]:
    """SDK clients to stop at teardown (in threads: the server shares this test's loop)."""
    clients: list[SdkWsClient] = []
    yield clients
    await asyncio.gather(*(asyncio.to_thread(client.stop) for client in clients))


@pytest.fixture
def connect(emu: LarkEmulator, base_url: str, sdk_clients: list[SdkWsClient]) -> Connect:
    """`await connect(handler)`: start a real SDK ws client and wait until it is connected."""

    async def start(handler: Any, *, count: int | None = None) -> SdkWsClient:
        client = SdkWsClient(base_url, emu.app_id, emu.app_secret, handler).start()
        sdk_clients.append(client)
        expected = count if count is not None else len(sdk_clients)
        await wait_until(lambda: emu.connections >= expected, what="the SDK client to connect")
        return client

    return start
