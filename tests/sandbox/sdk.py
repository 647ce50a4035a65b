"""Drive the real lark_oapi SDK against the emulator from async tests.

`lark_oapi.ws.client` keeps one module-level asyncio `loop` and `Client.start()` blocks forever
running it, so every SDK WebSocket client runs in its own daemon thread with its own loop. The
module-level `loop` is replaced by a proxy resolving to the calling thread's loop, which lets
several SDK clients run at once. REST calls use the synchronous SDK API in a worker thread
(the SDK fetches tokens with blocking `requests` even in its async methods).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import lark_oapi as lark
import lark_oapi.ws.client as ws_client
from lark_oapi.core.token.manager import TokenManager

from bot.lark.connection import install_thread_loop

install_thread_loop(ws_client)


class RecordingHandler:
    """Duck-typed SDK event handler: records every payload, answers via `respond`."""

    def __init__(self, respond: Callable[[dict[str, Any], int], Any] | None = None) -> None:
        self.respond = respond
        self.payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _do_without_validation(self, payload: bytes) -> Any:
        data = json.loads(payload)
        with self._lock:
            self.payloads.append(data)
            count = len(self.payloads)
        return self.respond(data, count) if self.respond else None

    @property
    def event_ids(self) -> list[str]:
        return [p["header"]["event_id"] for p in self.payloads]


class SdkWsClient:
    """A real `lark_oapi.ws.Client` running in a daemon thread."""

    def __init__(self, base_url: str, app_id: str, app_secret: str, handler: Any) -> None:
        self.base_url = base_url
        self.app_id = app_id
        self.app_secret = app_secret
        self.handler = handler
        self.client: lark.ws.Client | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self.client = lark.ws.Client(
            self.app_id,
            self.app_secret,
            log_level=lark.LogLevel.ERROR,
            event_handler=self.handler,
            domain=self.base_url,
        )
        self._ready.set()
        try:
            self.client.start()
        except RuntimeError:
            pass  # the loop was stopped by stop()
        except BaseException as exc:
            self.error = exc
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def start(self) -> SdkWsClient:
        self._thread.start()
        self._ready.wait(5)
        return self

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    def stop(self) -> None:
        loop, client = self.loop, self.client
        if loop is None or client is None or loop.is_closed() or self.finished:
            return

        async def shutdown() -> None:
            client._auto_reconnect = False
            me = asyncio.current_task()
            for task in asyncio.all_tasks():  # the receive and ping loops, not start()'s wait
                if task is not me and task.get_coro().__qualname__ != "_select":
                    task.cancel()
            await client._disconnect()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)


def rest_client(base_url: str, app_id: str, app_secret: str) -> lark.Client:
    """A real SDK REST client pointed at the emulator."""
    return (
        lark.Client.builder()
        .app_id(app_id)
        .app_secret(app_secret)
        .domain(base_url)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )


def forget_token(app_id: str) -> None:
    """Drop the SDK's process-wide cached tenant token for `app_id`."""
    TokenManager.cache.set(f"self_tenant_token:{app_id}", "", 0)
