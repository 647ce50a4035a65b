"""A bot with its REST API served over real HTTP: `api = await make_api(settings=...)`.

The bot is the Lark scenario test bot (emulator, real Postgres); the API is the app's own
(`bot.api`, mounted in `bot.endpoints.build_app`) on a port of its own, reading the bot's
services; keys are made with `storage.api_keys` as the CLI makes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from bot.api import api_routes
from bot.api.access import Backend
from bot.console import console_routes
from bot.endpoints import Readiness, build_app
from storage import api_keys
from storage.changes import ChangeFeed
from tests.conftest import World
from tests.lark.conftest import make_testbot  # noqa: F401  (the bots these APIs serve)
from tests.lark.testbot import TestBot, wait_until


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        proxy_headers=False,  # as `larkops run`: bot.api.proxies decides
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), what="the API server")
    if task.done():
        task.result()
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Api:
    bot: TestBot
    url: str
    backend: Backend
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def key(self, owner: str, name: str = "test") -> str:
        return (await api_keys.create(self.bot.db, name=name, owner=owner)).key

    def client(self, key: str | None = None, **options: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        made = httpx.AsyncClient(
            base_url=self.url + "/api/v1", headers=headers, timeout=30, **options
        )
        self.clients.append(made)
        return made

    async def as_user(self, owner: str) -> httpx.AsyncClient:
        return self.client(await self.key(owner))


@pytest.fixture
async def make_api(
    make_testbot: Callable[..., Any],  # noqa: F811
    world: World,
) -> AsyncIterator[Any]:
    stack = AsyncExitStack()

    async def start(**options: Any) -> Api:
        bot: TestBot = await make_testbot(**options)
        await wait_until(lambda: bot.runtime.services is not None, what="the bot's services")
        feed = ChangeFeed(world.db_url)
        stack.push_async_callback(feed.close)
        backend = Backend(lambda: bot.runtime.services, feed, bot.runtime.target)
        stack.push_async_callback(backend.drain)
        url = await stack.enter_async_context(
            serve(
                build_app(Readiness(started=True), [*api_routes(backend), *console_routes(backend)])
            )
        )
        api = Api(bot, url, backend)

        async def close_clients() -> None:
            for client in api.clients:
                await client.aclose()

        stack.push_async_callback(close_clients)
        return api

    yield start
    await stack.aclose()
