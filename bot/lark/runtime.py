"""Everything Lark-facing in one running piece: API client, dispatcher, inbox, long connection.

`bot.assembly.assemble` builds the services (`Desks`); the runtime only starts, runs and stops
them. Events come in through the gateway (`bot.lark.gateway`: the inbox and the long connection,
or with `LARK_EVENT_DELIVERY=http` the request URLs of `bot.lark.delivery`), which the app opens
before it builds the desks; a runtime given none opens its own first thing. It starts in the
background: learn the bot's own open_id (retrying while Lark is unreachable), start the desks,
then serve the inbox, whose workers handle what was committed meanwhile. `state()` says where
it is, for `/readyz` and `/ping`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import psutil

from bot.backlog import Backlog, read_backlog, watch_backlog
from bot.chat.desk import ChatDesk
from bot.config import Settings
from bot.context import Services
from bot.dispatcher import Dispatcher
from bot.incidents import silencing
from bot.incidents.desk import IncidentDesk
from bot.lark.api import LarkApi, LarkApiError, LarkRetryable
from bot.lark.connection import LongConnection
from bot.lark.gateway import Gateway, LarkTarget
from bot.lark.inbox import Inbox
from bot.latency import Latency
from bot.logs import get_logger
from bot.middleware import default_middlewares
from bot.operations import OperationsDesk, Toolkit
from bot.reports import ReportDesk
from bot.roles import AccessControl
from bot.router import Router
from bot.scheduling.wiring import Scheduling
from bot.timers import PRODUCTION, Timers
from bot.version import package_version
from cards.status import StatusView
from storage.coordination import Coordination
from storage.database import Database
from storage.notices import Notices
from storage.tasks import cancel
from workflows.intake import WEBHOOK_PARSERS, AlertParseError, ParsedAlert
from workflows.llm.advisor import ModelAdvisor
from workflows.llm.council import Council
from workflows.memory.recall import IncidentMemory
from workflows.ports import Advisor
from workflows.triage import Delivery

log = get_logger(__name__)
REPLICA = f"{socket.gethostname()}:{os.getpid()}"  # as the inbox workers and the scheduler say
PROBE_TIMEOUT = 2.0  # seconds per dependency check of /status


__all__ = ["Desks", "LarkRuntime", "LarkTarget"]


@dataclass(frozen=True)
class Desks:
    """The services the runtime starts and stops, built by `bot.assembly.assemble`."""

    api: LarkApi
    toolkit: Toolkit
    advisor: Advisor
    memory: IncidentMemory
    council: Council | None  # `llm.council`, when configured
    desk: IncidentDesk
    operations: OperationsDesk
    scheduling: Scheduling
    chat: ChatDesk
    reports: ReportDesk


class LarkRuntime:
    """Starts, runs and stops what `bot.assembly.assemble` built; it builds nothing itself."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        coordination: Coordination,
        target: LarkTarget,
        router: Router,
        signing_key: bytes,
        desks: Desks,
        timers: Timers = PRODUCTION,
        gateway: Gateway | None = None,
    ) -> None:
        self.settings = settings
        self.timers = timers
        self.db = db
        self.coordination = coordination
        self.target = target
        self.router = router
        self.signing_key = signing_key
        self.api = desks.api
        self.toolkit = desks.toolkit
        self.advisor = desks.advisor
        self.memory = desks.memory
        self.council = desks.council
        self.desk = desks.desk
        self.operations = desks.operations
        self.scheduling = desks.scheduling
        self.chat = desks.chat
        self.reports = desks.reports
        self._sweeper: asyncio.Task[None] | None = None
        self._expirer: asyncio.Task[None] | None = None
        self._council_sweeper: asyncio.Task[None] | None = None
        self.services: Services | None = None  # once started (the REST API uses them)
        self.dispatcher: Dispatcher | None = None
        self.gateway = gateway  # opened by the app already, or by `_start`
        self.listen = True  # a gateway of its own holds the long connection
        self._task: asyncio.Task[None] | None = None
        self._backlog: asyncio.Task[None] | None = None
        self._error: str | None = None
        # changes in Postgres wake the loops (only with loops on their own: `Timers.sweep_every`)
        self.notices: Notices | None = None

    @property
    def inbox(self) -> Inbox | None:
        return self.gateway.inbox if self.gateway is not None else None

    @property
    def connection(self) -> LongConnection | None:
        return self.gateway.connection if self.gateway is not None else None

    def state(self) -> str:
        if self._error:
            return f"error: {self._error}"
        return self.gateway.state() if self.gateway is not None else "starting"

    def start(self) -> None:
        self._task = asyncio.create_task(self._start())

    async def _start(self) -> None:
        if self.gateway is None:  # events are taken from now on, handled once served
            self.gateway = Gateway(self.settings, self.db, self.target, listen=self.listen)
            self.gateway.open()
        if self.timers.sweep_every is not None:
            self.notices = Notices(self.db.url)
            await self.notices.start()
        if self.timers.backlog_every is not None:
            self._backlog = asyncio.create_task(
                watch_backlog(
                    self.db, self.timers.backlog_every, self._changed("incidents", "approvals")
                )
            )
        delay = 0.5
        while True:
            try:
                bot = await self.api.bot_info()
                break
            except LarkRetryable as exc:
                log.warning("lark.unreachable", error=str(exc), retry_in=delay)
            except LarkApiError as exc:
                # wrong credentials and the like: retrying will not help
                self._error = str(exc)
                log.error("lark.refused", error=str(exc))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        log.info("lark.bot", open_id=bot.open_id, name=bot.name, sandbox=self.target.sandbox)
        await self.desk.start(self._changed("incidents", "approvals"))
        if self.timers.sweep_every is not None:
            self._sweeper = asyncio.create_task(
                self.operations.sweep_forever(
                    self.timers.sweep_every, self._changed("actions", "approvals")
                )
            )
            if self.council is not None:
                self._council_sweeper = asyncio.create_task(
                    self.council.sweep_forever(
                        self.timers.sweep_every, self._changed("council_batches")
                    )
                )
        if self.notices is not None:
            self.scheduling.service.follow(self.notices)
        await self.scheduling.start()
        if self.timers.expire_every is not None:
            self._expirer = asyncio.create_task(self._expire_forever(self.timers.expire_every))
        await self.chat.recover()
        services = Services(
            settings=self.settings,
            db=self.db,
            coordination=self.coordination,
            api=self.api,
            bot=bot,
            signing_key=self.signing_key,
            router=self.router,
            desk=self.desk,
            operations=self.operations,
            memory=self.memory,
            schedules=self.scheduling.desk,
            chat=self.chat,
            reports=self.reports,
            access=AccessControl(self.settings, self.api),
            latency=Latency(self.db, self.coordination, self.api),
            status=self.status,
            council=self.council,
        )
        self.services = services
        self.dispatcher = Dispatcher(self.router, services, default_middlewares())
        assert self.gateway is not None
        self.gateway.inbox.serve(self.dispatcher, alerts=self._alerts)
        self.gateway.inbox.start()
        if self.settings.lark_event_delivery == "http":
            log.info("lark.http_delivery", paths=["/lark/events", "/lark/card"])

    async def health(self) -> dict[str, Any]:
        """What the chat agent's `system_health` tool reports: the `/status` figures as JSON."""
        return (await self.status()).as_json()

    async def status(self) -> StatusView:
        """What `/status` shows: connection, queue, dependencies, scheduler, model, incidents."""
        database = await _probe(self.db.ping)
        coordination = await _probe(self.coordination.ping)
        backlog = Backlog()
        escalated: tuple[tuple[int, str], ...] = ()
        if database == "ok":
            try:
                backlog = await read_backlog(self.db)
                escalated = tuple((row.id, row.title) for row in await self.desk.escalated())
            except Exception as exc:
                database = f"{type(exc).__name__}: {exc}"
        service = self.scheduling.service
        provider, today, budget = "rules", None, None
        if isinstance(self.advisor, ModelAdvisor):
            guard = self.advisor.guard
            provider, budget = self.advisor.provider, guard.config.daily_tokens
            with contextlib.suppress(Exception):  # the database answer above says why
                _, today = await guard.usage(None)
        return StatusView(
            lark=self.state(),
            inbox_pending=backlog.inbox_pending,
            inbox_oldest_seconds=round(backlog.oldest_seconds, 1),
            database=database,
            coordination_backend=self.coordination.backend,
            coordination=coordination,
            scheduler="here" if service.is_leader else "elsewhere",
            # the lease holds a random token, not the holder's name: only "here" is known
            scheduler_holder=service.replica if service.is_leader else "",
            jobs_loaded=service.jobs(),
            model_provider=provider,
            tokens_today=today,
            daily_budget=budget,
            incidents_active=backlog.incidents,
            incidents_escalated=backlog.escalated,
            escalated=escalated,
            gates_waiting=backlog.gates_waiting,
            replica=REPLICA,
            version=package_version(),
            uptime_seconds=round(time.time() - psutil.Process(os.getpid()).create_time()),
            send_backlog=self.api.outbox.backlog,
        )

    async def _alerts(
        self, claimed: list[tuple[str, dict[str, Any], str]]
    ) -> list[Literal["done", "ignored"]]:
        """Webhook deliveries from the inbox, claimed together: their alerts as the webhook
        parsed them (a row kept by an earlier version has the body instead: parsed now),
        triaged in one transaction (which counts a delivery once, replayed or not); what
        follows (cards, runs) does not hold up the next claim."""
        outcomes: list[Literal["done", "ignored"]] = []
        deliveries = []
        for source, payload, event_id in claimed:
            try:
                alerts = _delivered_alerts(source, payload)
            except (AlertParseError, ValueError, TypeError, KeyError) as exc:
                log.warning("alerts.unreadable_delivery", event_id=event_id, error=str(exc)[:200])
                outcomes.append("ignored")
                continue
            deliveries.append(Delivery(alerts, str(payload.get("chat_id", "")), event_id))
            outcomes.append("done")
        if deliveries:
            await self.desk.receive_batch(deliveries, wait=False)
        return outcomes

    async def sweep(self) -> None:
        """One sweep round now (what the timers do every `sweep_every`, `expire_every` and
        `page_every`): expired action gates, expired incident gates, stranded runs, expired
        drafts, due paging steps."""
        await self.operations.sweep()
        await self.operations.drain()
        await self.desk.runs.sweep()
        await self.desk.on_call()  # paging steps, shift changes (`Timers.page_every` else)
        if self.council is not None:
            await self.council.sweep()
        await self.expire_pending()

    async def expire_pending(self) -> None:
        """Nothing waits for a click forever: drafts and silence requests nobody confirmed in
        time expire."""
        expired = await self.scheduling.desk.expire_drafts()
        if expired:
            log.info("pending.expired", drafts=expired)
        requests = await silencing.expire(self.db, self.api, self.settings)
        if requests:
            log.info("pending.expired", silences=requests)

    async def _expire_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.expire_pending()
            except Exception as exc:  # the next round tries again
                log.warning("pending.expire_failed", error=str(exc)[:200])

    def _changed(self, *tables: str) -> asyncio.Event | None:
        """An event set when one of `tables` changes; None without notices (fixed periods)."""
        return self.notices.event(*tables) if self.notices is not None else None

    def wake(self) -> None:
        if self.gateway is not None:
            self.gateway.wake()

    async def stop(self) -> None:
        await cancel(self._task, self._backlog)
        if self.gateway is not None:
            await self.gateway.close()
        if self.dispatcher is not None:
            await self.dispatcher.drain()
        await self.chat.drain()
        await self.desk.stop()
        await cancel(self._council_sweeper, self._sweeper, self._expirer)
        await self.scheduling.stop()
        await self.operations.drain()
        if self.notices is not None:
            await self.notices.stop()
        await self.api.close()


async def _probe(check: Callable[[], Awaitable[None]]) -> str:
    """`ok`, or why the dependency did not answer within `PROBE_TIMEOUT`."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await check()
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT:g}s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return "ok"


def _delivered_alerts(source: str, payload: dict[str, Any]) -> list[ParsedAlert]:
    kept = payload.get("alerts")
    if isinstance(kept, list):
        return [ParsedAlert.from_json(item) for item in kept]
    parser = WEBHOOK_PARSERS.get(source)
    if parser is None:
        raise AlertParseError(f"no parser for {source!r}")
    return parser(payload.get("body") or {})
