"""The running app: start-up order, readiness and a clean shutdown.

Start-up: HTTP first (so `/healthz` answers and `/readyz` says "starting"), then the database
(embedded unless `DATABASE_URL`) and its migrations, then the Lark gateway opens
(`bot.lark.gateway`: the long connection connects, and events are committed to wait), and only
then is the rest of the bot imported and built: coordination, the workflows' checkpointer, the
desks and their graphs, the scheduler, the REST API and the console (`_start_desks`). Those
imports are most of the start-up's CPU (langgraph, langchain_core and langsmith, FastAPI, the
model SDKs' glue); this module imports none of them, and `_start_desks` imports them on a
thread while the loop goes on answering. So Lark is connected about a second sooner, and the
events that arrive meanwhile are handled once the desks are ready (issue 22).
Shutdown reverses it. Any failure stops start-up with one clear line (`StartupError`).

Usage::

    await App(load_settings()).run()     # until SIGTERM/SIGINT
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import psutil
import uvicorn
from starlette.routing import BaseRoute

from bot import metrics
from bot.config import Settings
from bot.endpoints import Later, Readiness, build_app
from bot.incidents.webhooks import WebhookSink, webhook_token
from bot.lark.gateway import Gateway, LarkTarget
from bot.logs import get_logger
from bot.signing import signing_key
from bot.startup import StartupError, open_database, paused_collection
from bot.version import package_version
from bot.workers import Intake, watch_parent
from storage import tracing
from storage.coordination import Coordination, CoordinationError, open_coordination
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migration import upgrade

if TYPE_CHECKING:
    from bot.api.access import Backend
    from bot.lark.inbox import Inbox
    from bot.lark.runtime import LarkRuntime
    from bot.sandbox.demo import DemoService
    from bot.sandbox.emulator import LarkEmulator
    from bot.sandbox.history import ChatHistory

log = get_logger(__name__)
# seconds start-up waits for the long connection before it builds the rest (`Gateway.connected`):
# a handshake takes a few hundred milliseconds, and the desks' imports would share the interpreter
# with it; a Lark slower than that is left to connect while start-up goes on
CONNECT_PATIENCE = 1.0


# what `_start_desks` builds the bot from: imported after the gateway opened
DESK_MODULES = (
    "bot.api",
    "bot.api.access",
    "bot.assembly",
    "bot.console",
    "bot.janitor",
    "storage.changes",
    "workflows.checkpoint",
)


def _import_desks() -> None:
    with paused_collection():
        for name in DESK_MODULES:
            importlib.import_module(name)


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling (the app owns SIGTERM/SIGINT) and without its
    tick: uvicorn wakes ten times a second to refresh its Date header and look at
    `should_exit`; this one sleeps until `stop()` (the Date header is left out)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        await self._exit.wait()

    def stop(self) -> None:
        self.should_exit = True
        self._exit.set()


def bind_socket(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """Bind the HTTP port ourselves so that a taken port is a clear error, not an exit;
    `shared`: with `SO_REUSEPORT`, as every process of `larkops run --workers` binds it (the
    kernel spreads connections over them, `bot.workers`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # accepted connections inherit it (without, keep-alive answers wait ~40 ms for an ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"LARKOPS_HTTP_PORT: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class App:
    """One larkops process: the main one, which starts `workers - 1` intake processes, or
    (`intake_of`: the pipe from the main process) one of them (`bot.workers`)."""

    def __init__(
        self, settings: Settings, *, workers: int = 1, intake_of: int | None = None
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.intake_of = intake_of
        self.intake: Intake | None = None
        self.readiness = Readiness()
        self.database: Database | None = None
        self.embedded: EmbeddedPostgres | None = None
        self.coordination: Coordination | None = None
        self.gateway: Gateway | None = None  # opened once the database is ready
        self.lark: LarkRuntime | None = None  # built after the gateway opened
        self.webhooks = WebhookSink(settings, webhook_token(settings))
        self.api: Backend | None = None  # what the REST API and the console reach, with the desks
        self.later = Later()  # the REST API's and the console's routes, once built
        self._resources = contextlib.AsyncExitStack()
        self.emulator: LarkEmulator | None = None
        self.demo: DemoService | None = None  # the sandbox's demo service, runbook and people
        self.history: ChatHistory | None = None  # the sandbox's chats, kept in LARKOPS_HOME
        self._server: _HttpServer | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        began = time.monotonic()
        if tracing.setup(os.environ):  # OTEL_EXPORTER_OTLP_ENDPOINT and friends
            log.info("tracing.on", service=os.environ.get("OTEL_SERVICE_NAME") or "larkops")
        metrics.BUILD.info({"version": package_version()})
        metrics.READY.set(0)
        await self._start_http()
        self.database, self.embedded = await open_database(self.settings)
        self.readiness.checks["database"] = self.database.ping
        migrated = await upgrade(self.database)
        log.info("database.ready", migrated=migrated, embedded=self.embedded is not None)
        # Lark connects now, while the rest is built: what it delivers meanwhile waits in the
        # inbox (the main process holds the long connection; intake processes do not)
        self.gateway = Gateway(
            self.settings, self.database, self._lark_target(), listen=self.intake_of is None
        )
        self.readiness.lark = self.gateway.state
        self.gateway.open()
        self.webhooks.db = self.database
        self.webhooks.wake = self.gateway.wake
        await self.gateway.connected(CONNECT_PATIENCE)
        try:
            self.coordination = await open_coordination(
                self._redis_url(), self.settings.coordination.key_prefix
            )
        except CoordinationError as exc:
            raise StartupError(f"REDIS_URL: {exc}") from None
        self.readiness.checks["coordination"] = self.coordination.ping
        await self._start_desks(self.database, self.coordination, self.gateway)
        if self.workers > 1:
            self.intake = Intake(self.workers, database_url=self.database.url, port=self.port)
            await self.intake.start()
        if self.intake_of is not None:
            log.info("intake.ready", pid=os.getpid())
        self.readiness.started = True
        # what start-up built lives as long as the process: the collector stops scanning it
        # (each full collection walked every import's objects; GET /api/v1/incidents spent
        # about a tenth of its CPU there). The allocator is left as it is: the RSS is live
        # objects, not freed heap; with three threads, glibc's arenas capped at two
        # (`MALLOC_ARENA_MAX=2`, as `mallopt(M_ARENA_MAX)` would) changed it by < 0.1 MB and a
        # `malloc_trim(0)` after start by 1.3 of 152 MB (issue 22, measured)
        gc.freeze()
        metrics.READY.set(1)
        metrics.STARTUP_SECONDS.set(time.time() - psutil.Process(os.getpid()).create_time())
        if self.settings.lark_configured and not self.settings.fetch_allow:
            log.warning(
                "fetch.no_allow_list",
                hint="LARKOPS_FETCH_ALLOW is not set: plugins will not connect to any host an "
                "alert names (http_check, tcp_check) until it lists the hosts, host:port, URL "
                "prefixes or networks they may reach",
            )
        log.info(
            "app.started",
            http=f"http://{self.settings.http_host}:{self.port}",
            coordination=self.coordination.backend,
            startup_ms=round((time.monotonic() - began) * 1000),
        )

    async def _start_desks(
        self, database: Database, coordination: Coordination, gateway: Gateway
    ) -> None:
        """Everything behind the gateway: imported here, after it opened (see the module's
        docstring), and started; the REST API and the console join the HTTP routes."""
        # on a thread: a second of CPU during which the loop goes on answering (/readyz,
        # webhooks, the events the gateway commits, the sandbox's emulator)
        await asyncio.to_thread(_import_desks)
        from bot.api import api_routes
        from bot.api.access import Backend
        from bot.assembly import assemble
        from bot.console import console_routes
        from bot.janitor import Janitor
        from storage.changes import ChangeFeed
        from workflows.checkpoint import CheckpointerError, open_checkpointer

        self.api = Backend(lambda: self.lark.services if self.lark is not None else None)
        self.api.feed = ChangeFeed.shared(database.url)  # the loops listen on it too
        self.api.target = gateway.target
        self.later.join([*api_routes(self.api), *console_routes(self.api)])
        try:
            saver = await self._resources.enter_async_context(open_checkpointer(database.url))
        except CheckpointerError as exc:
            raise StartupError(f"workflow checkpointer: {exc}") from None  # never run on memory
        if self.demo is not None:
            self.settings = self.demo.settings(self.settings)
        if self.settings.retention.enabled:  # stopped before the checkpointer closes
            janitor = Janitor(self.settings.retention, database, saver, coordination)
            janitor.start()
            self._resources.push_async_callback(janitor.stop)
        self.lark = assemble(
            self.settings,
            database,
            coordination,
            gateway.target,
            signing_key(self.settings),
            checkpointer=saver,
            gateway=gateway,
        )
        self.lark.start()

    def _lark_target(self) -> LarkTarget:
        settings = self.settings
        if self.emulator is None:
            return LarkTarget(
                settings.lark_app_id,
                settings.lark_app_secret.get_secret_value(),
                settings.lark_domain,
            )
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host  # noqa: S104
        domain = f"http://{host}:{self.port}"
        log.warning(
            "lark.sandbox", hint="no LARK_APP_ID: chat with the bot at " + domain + "/sandbox"
        )
        print(f"larkops sandbox: {domain}/sandbox", flush=True)  # a plain line, whatever the logs
        return LarkTarget(self.emulator.app_id, self.emulator.app_secret, domain, sandbox=True)

    def _inbox(self) -> Inbox | None:
        return self.gateway.inbox if self.gateway is not None else None

    def _redis_url(self) -> str | None:
        return self.settings.redis_url.get_secret_value() if self.settings.redis_url else None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.servers:
            return self.settings.http_port
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1]) if sockets else self.settings.http_port

    async def _start_http(self) -> None:
        shared = self.workers > 1 or self.intake_of is not None
        sock = bind_socket(self.settings.http_host, self.settings.http_port, shared=shared)
        extra: list[BaseRoute] = [*self.webhooks.routes()]
        if self.settings.lark_event_delivery == "http" and self.settings.lark_configured:
            from bot.lark.delivery import http_delivery

            extra += http_delivery(self.settings, self._inbox)
        if not self.settings.lark_configured:  # the sandbox: its modules only then
            from bot.sandbox.demo import SANDBOX_USERS, DemoService
            from bot.sandbox.emulator import LarkEmulator
            from bot.sandbox.history import ChatHistory
            from bot.sandbox.webchat import webchat_routes

            self.emulator = LarkEmulator(users=SANDBOX_USERS)
            host = self.settings.http_host
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
            self.demo = DemoService(self.settings.home, int(sock.getsockname()[1]), host)
            self.history = ChatHistory(self.emulator, self.settings.home)
            kept = self.history.load()
            if kept:
                log.info("sandbox.history", messages=kept, path=str(self.history.path))
            self.history.start()
            extra += [*self.emulator.routes(), *self.demo.routes(self.emulator), *webchat_routes()]
        config = uvicorn.Config(
            build_app(self.readiness, extra, self.later),
            lifespan="off",
            ws="websockets-sansio",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=False,  # no tick refreshes it (see _HttpServer)
            proxy_headers=False,  # only LARKOPS_TRUSTED_PROXIES are believed (bot.api.proxies)
        )
        self._server = _HttpServer(config)
        self._server_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._server_task.done():
                self._server_task.result()
                raise StartupError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then shut down cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        if self.intake_of is not None:
            watch_parent(self.intake_of, self._stop)
        try:
            await self.start()
            await self._stop.wait()
            log.info("app.stopping")
        finally:
            await self.stop()

    async def stop(self) -> None:
        self.readiness.started = False
        metrics.READY.set(0)
        if self.intake is not None:  # first: they use this process's (embedded) Postgres
            await self.intake.stop()
        if self.api is not None:
            await self.api.drain()
        if self.lark is not None:
            await self.lark.stop()
        elif self.gateway is not None:  # start-up stopped before the desks were built
            await self.gateway.close()
        if self.demo is not None:
            await self.demo.aclose()
        if self.history is not None:
            await self.history.stop()
        if self.api is not None and self.api.feed is not None:
            await self.api.feed.close()
        await self._resources.aclose()
        if self._server is not None and self._server_task is not None:
            self._server.stop()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):  # not `wait_for`: it could eat a cancellation
                    await self._server_task
        if self.coordination is not None:
            await self.coordination.close()
        if self.database is not None:
            await self.database.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.release)
        await asyncio.to_thread(tracing.shutdown)  # flushes the spans still buffered
        log.info("app.stopped")
