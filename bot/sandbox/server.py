"""Run a `LarkEmulator` standalone with uvicorn (tests, local experiments)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from bot.sandbox.emulator import LarkEmulator


@contextlib.asynccontextmanager
async def serve_emulator(
    emulator: LarkEmulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    extra_routes: list[BaseRoute] | None = None,
) -> AsyncIterator[str]:
    """Serve the emulator with uvicorn (free port by default); yields `http://host:port`."""
    config = uvicorn.Config(
        Starlette(routes=[*emulator.routes(), *(extra_routes or [])]),
        host=host,
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the emulator server stopped during start-up")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        await emulator.aclose()
        server.should_exit = True
        await task
