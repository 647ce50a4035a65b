"""A service under repair for incident tests: `/health` is 200 exactly while a marker file
exists, so a remediation that creates the file really fixes it and a check can verify that."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.wait import wait_until


@contextlib.asynccontextmanager
async def health_service(marker: Path) -> AsyncIterator[str]:
    """Serve the endpoint on a free port; yields its URL."""

    async def check(_: Request) -> PlainTextResponse:
        healthy = marker.exists()
        return PlainTextResponse("ok" if healthy else "down", status_code=200 if healthy else 503)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        Starlette(routes=[Route("/health", check)]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:
        if task.done():
            task.result()
            raise RuntimeError("the health endpoint stopped during start-up")
        return bool(server.started)

    await wait_until(started, 10, "the health endpoint to serve")
    try:
        yield f"http://127.0.0.1:{port}/health"
    finally:
        server.should_exit = True
        await task
