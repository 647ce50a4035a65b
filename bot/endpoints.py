"""HTTP endpoints: liveness, readiness and metrics (alert webhooks join them later).

`/healthz` answers while the process lives; `/readyz` only when start-up has finished and the
database (and Redis, when configured) answer; `/metrics` is the Prometheus text format. Routes
that need the whole bot (the REST API, the console) join once start-up has built it (`Later`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics
from bot.logs import get_logger, redactor, trace_context
from storage import tracing

log = get_logger(__name__)

Check = Callable[[], Awaitable[None]]


@dataclass
class Readiness:
    """What `/readyz` consults: a started flag and named dependency checks."""

    started: bool = False
    checks: dict[str, Check] = field(default_factory=dict)
    timeout: float = 2.0
    lark: Callable[[], str] = lambda: "not started"

    async def report(self) -> tuple[bool, dict[str, str]]:
        results: dict[str, str] = {"startup": "ok" if self.started else "starting"}
        # a copy: start-up adds checks while a probe may be waiting on one
        for name, check in list(self.checks.items()):
            try:
                async with asyncio.timeout(self.timeout):  # not `wait_for` (gh-86296)
                    await check()
                results[name] = "ok"
                metrics.COMPONENT_UP.labels(name).set(1)
            except Exception as exc:  # any failure means "not ready"
                detail = redactor().text(f"{type(exc).__name__}: {exc}")
                results[name] = f"error: {detail}"[:300]
                metrics.COMPONENT_UP.labels(name).set(0)
        ready = all(value == "ok" for value in results.values())
        metrics.READY.set(1 if ready else 0)
        return ready, results


class TraceMiddleware:
    """A trace id per request (taken from `X-Request-Id` when sent), bound to every log line
    and returned in `X-Trace-Id`; request counts and latency go to metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        trace = incoming[:64] if incoming.isascii() and incoming.isprintable() else ""
        started = time.perf_counter()
        status = 500

        with (
            trace_context(trace or None) as trace_id,
            tracing.root_span(
                "http.request", trace_id, {"http.method": scope.get("method", "")}
            ) as current,
        ):

            async def send_traced(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    headers = list(message.get("headers", []))
                    headers.append((b"x-trace-id", trace_id.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                current.set_attribute("http.route", path)
                current.set_attribute("http.status_code", status)
                elapsed = time.perf_counter() - started
                metrics.HTTP_REQUESTS.labels(path, scope.get("method", ""), str(status)).inc()
                metrics.HTTP_SECONDS.labels(path).observe(elapsed)
                log.debug("http.request", path=scope.get("path"), status=status, ms=elapsed * 1e3)


class Later:
    """Routes that join the app once start-up has built what they need: the REST API and the
    console import most of the bot, which `larkops run` loads after the Lark connection opens
    (issue 22). Until then a request that no route answers waits for them (`patience`) and is
    then routed again; for a path nobody serves, 404 as usual."""

    def __init__(self, patience: float = 30.0) -> None:
        self.patience = patience
        self._joined = asyncio.Event()
        self._app: Starlette | None = None

    def bind(self, app: Starlette) -> None:
        """Be the app's last route: it gets what no route before it matched."""
        self._app = app
        app.router.routes.append(Mount("", app=self._unmatched))

    def join(self, routes: list[BaseRoute]) -> None:
        assert self._app is not None, "Later.bind first"
        table = self._app.router.routes
        table[len(table) - 1 : len(table) - 1] = routes  # before the catch-all
        self._joined.set()

    async def _unmatched(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._app is not None
        if self._joined.is_set():
            await self._app.router.not_found(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.patience):
                await self._joined.wait()
        except TimeoutError:
            if scope["type"] == "http":
                starting = JSONResponse({"status": "starting"}, 503, {"Retry-After": "2"})
                await starting(scope, receive, send)
            return  # a websocket not accepted is closed by the server
        await self._app.router(scope, receive, send)


def build_app(
    readiness: Readiness, extra_routes: list[BaseRoute] | None = None, later: Later | None = None
) -> Starlette:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        ready, results = await readiness.report()
        # the Lark connection is reported, not required: webhooks and the database keep working
        # while it (re)connects, and Lark keeps undelivered events
        body = {
            "status": "ok" if ready else "unavailable",
            "checks": results,
            "lark": readiness.lark(),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_text(_: Request) -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]
    app = Starlette(routes=[*routes, *(extra_routes or [])])
    if later is not None:
        later.bind(app)
    app.add_middleware(TraceMiddleware)
    return app
