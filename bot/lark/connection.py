"""The Lark long connection: the official `lark_oapi.ws.Client`, in its own thread and loop.

The SDK creates its event loop at import (`lark_oapi.ws.client.loop`) and runs handlers
synchronously on it. So the client lives in a daemon thread with a fresh loop of its own (the
module global is replaced by a per-thread `ThreadLoop` before `start()`), and its handler only
hands the raw event to the app loop (`run_coroutine_threadsafe`) and waits for the inbox's
answer: the commit of a message event, or the response to a card action. If that fails or
takes too long the handler raises, the SDK acknowledges with code 500, and Lark redelivers:
nothing acknowledged is lost.

The SDK reconnects by itself (its ClientConfig comes from the server); connection state is
exported as the `larkops_lark_connected` gauge and `LongConnection.connected`.

Usage::

    connection = LongConnection(app_id, secret, domain, inbox.accept, loop)
    connection.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from prometheus_client import Counter, Gauge

from bot.lark import sdk
from bot.logs import get_logger

log = get_logger(__name__)

Accept = Callable[[bytes], Coroutine[Any, Any, dict[str, Any] | None]]
HANDOFF_TIMEOUT = 2.8  # seconds: under Lark's 3-second ack deadline
WATCH_EVERY = 5.0  # seconds between two readings of the connection for its gauge

CONNECTED = Gauge("larkops_lark_connected", "1 while the Lark long connection is up")
RECONNECTS = Counter("larkops_lark_reconnects_total", "Long-connection reconnect attempts")
HANDOFF_FAILURES = Counter(
    "larkops_lark_handoff_failures_total", "Events not acknowledged (commit failed or too slow)"
)


class _Handoff:
    """What the SDK calls for every data frame (its `_do_without_validation` contract)."""

    def __init__(self, accept: Accept, loop: asyncio.AbstractEventLoop) -> None:
        self._accept = accept
        self._loop = loop

    def _do_without_validation(self, payload: bytes) -> Any:
        future = asyncio.run_coroutine_threadsafe(self._accept(payload), self._loop)
        try:
            return future.result(timeout=HANDOFF_TIMEOUT)
        except FutureTimeout:
            future.cancel()
            HANDOFF_FAILURES.inc()
            log.error("lark.handoff_timeout", timeout=HANDOFF_TIMEOUT)
            raise
        except Exception as exc:
            HANDOFF_FAILURES.inc()
            log.error("lark.handoff_failed", error=f"{type(exc).__name__}: {exc}")
            raise


class ThreadLoop:
    """Stands in for `lark_oapi.ws.client.loop`: the calling thread's event loop.

    The SDK keeps one loop in a module global; with this in its place every client uses the
    loop of the thread it runs in, so several clients can share a process."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio.get_event_loop_policy().get_event_loop(), name)


def install_thread_loop(ws_client: Any) -> None:
    """Put a `ThreadLoop` in the SDK module (once; later calls change nothing)."""
    if not isinstance(ws_client.__dict__.get("loop"), ThreadLoop):
        ws_client.__dict__["loop"] = ThreadLoop()


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the SDK left running on its loop (ping loop, cache cron), then close it."""
    with contextlib.suppress(Exception):
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


class LongConnection:
    """One long connection to Lark (or the sandbox emulator), in its own thread."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        domain: str,
        accept: Accept,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._app_id = app_id
        self._secret = app_secret
        self._domain = domain
        self._handoff = _Handoff(accept, loop)
        self._thread: threading.Thread | None = None
        self._ws_loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._stopping = False
        self.error: str | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and getattr(self._client, "_conn", None) is not None

    def start(self) -> None:
        # the SDK is imported here, on the caller's thread, not in the connection's: the app
        # goes on importing its own modules meanwhile (`bot.lark.gateway`), and two threads
        # importing at once can meet each other's half-initialised modules
        sdk.ws_client()
        self._thread = threading.Thread(target=self._run, name="lark-long-connection", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._ws_loop = loop
        try:
            ws_client = sdk.ws_client()  # not the SDK's ~140 MB of API modules
            install_thread_loop(ws_client)  # the SDK captured another loop at import
            logging.getLogger("Lark").setLevel(logging.WARNING)
            client = ws_client.Client(
                self._app_id,
                self._secret,
                event_handler=self._handoff,
                domain=self._domain,
                log_level=sdk.log_level(ws_client).WARNING,
                auto_reconnect=True,
            )
            client.on_reconnecting = self._on_reconnecting
            client.on_reconnected = self._on_reconnected
            self._client = client
            log.info("lark.connecting", domain=self._domain)
            loop.call_soon(self._watch)
            client.start()  # runs the loop until stop()
        except RuntimeError as exc:
            if not self._stopping:
                self.error = str(exc)
                log.error("lark.connection_stopped", error=str(exc))
        except Exception as exc:  # bad credentials and the like end the connection
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("lark.connection_failed", error=self.error)
        finally:
            CONNECTED.set(0)
            _finish(loop)

    def _watch(self) -> None:
        """Keep the gauge in step with the SDK's connection (reconnects set it at once through
        the SDK's callbacks; this catches the first connect and a silent drop)."""
        CONNECTED.set(1 if self.connected else 0)
        if self._ws_loop is not None and not self._stopping:
            self._ws_loop.call_later(WATCH_EVERY, self._watch)

    def _on_reconnecting(self) -> None:
        RECONNECTS.inc()
        CONNECTED.set(0)
        log.warning("lark.reconnecting")

    def _on_reconnected(self) -> None:
        CONNECTED.set(1)
        log.info("lark.reconnected")

    def stop(self, patience: float = 5.0) -> None:
        """Close the socket and stop the thread's loop."""
        self._stopping = True
        loop, client = self._ws_loop, self._client
        if loop is not None and loop.is_running():
            if client is not None:
                client._auto_reconnect = False
                done = asyncio.run_coroutine_threadsafe(_shut(client), loop)
                with contextlib.suppress(Exception):
                    done.result(timeout=patience)
            # the loop may have ended (and been closed) on its own once `_shut` ended the SDK's
            # tasks: nothing is left to stop then
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=patience)
        CONNECTED.set(0)


async def _shut(client: Any) -> None:
    """Stop the SDK's own tasks (its receive and ping loops), retrieving what they raise, then
    close the socket: a shutdown logs no ERROR and leaves no "Task exception was never
    retrieved" (the receive loop would otherwise die on the close frame and log it)."""
    me = asyncio.current_task()
    # not the SDK's main wait (`_select`): `client.start()` runs the loop on it, and `stop()`
    # ends that loop once this returns
    others = [
        task
        for task in asyncio.all_tasks()
        if task is not me and getattr(task.get_coro(), "__qualname__", "") != "_select"
    ]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    await client._disconnect()
