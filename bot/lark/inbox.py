"""Inbound events: committed before they are acknowledged, then handled by workers.

`accept` runs on the app loop for every event the long connection (or the sandbox) delivers:
- a message event is committed to `inbound_events` (duplicates of event id or message id are
  dropped) and a worker is woken; the frame is acknowledged only after the commit;
- a card action is answered on the spot (Lark allows 3 s): verified, dispatched from fast
  checks, recorded once handled;
- a malformed envelope or an unknown event type is recorded as `ignored` with the reason and
  acknowledged, so Lark does not redeliver it forever.

The inbox accepts from the first moment of start-up, before the desks exist (`bot.lark.gateway`):
message events are committed and wait for the workers, which start once `serve` hands the inbox
its dispatcher; a card action waits for that within its deadline.

Workers claim pending rows with `FOR UPDATE SKIP LOCKED`; a crash mid-handling leaves the row
pending for the next worker (after a restart, or on another replica). A transient failure (Lark
answering 5xx/429 longer than a call retries, Redis unreachable) also leaves it
pending: the worker pauses and the event is tried again, for up to `TRANSIENT_PATIENCE`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prometheus_client import Counter, Histogram

from bot.context import ActionResult, Toast
from bot.dispatcher import TRANSIENT, Dispatcher
from bot.lark.events import (
    CardAction,
    Envelope,
    MalformedEvent,
    MessageEvent,
    normalise,
    parse_envelope,
)
from bot.logs import event_trace_id, get_logger, trace_context
from storage import inbound, tracing
from storage.database import Database
from storage.models import InboundEvent
from storage.statuses import InboundStatus
from storage.tasks import cancel

log = get_logger(__name__)

# webhook deliveries claimed together: [(source, payload, the delivery's event id)] -> the
# outcome of each, in order (their alerts are triaged in one transaction)
AlertSink = Callable[
    [list[tuple[str, dict[str, Any], str]]], Awaitable[list[Literal["done", "ignored"]]]
]

HANDLED_TYPES = frozenset({"im.message.receive_v1"})
CARD_DEADLINE = 2.5  # seconds of Lark's 3 we allow ourselves
# a commit in this process wakes the workers at once; the poll only picks up events another
# process committed and left (it died, or handed them over), so an idle bot does not query
IDLE_POLL = 15.0
STOP_GRACE = 5.0  # seconds a stopping worker may take to finish the event it holds
RETRY_PAUSE = 1.0  # seconds before claiming again after a transient failure
# webhook deliveries one worker claims and triages together in a storm (one transaction; at
# Alertmanager's usual 50 alerts a delivery, about 1,000 alerts)
ALERT_BATCH = 20
Handled = Literal["handled", "idle", "deferred"]
MAX_ATTEMPTS = 5
TRANSIENT_PATIENCE = timedelta(hours=1)  # how long an event is retried through a transient fault

EVENTS = Counter("larkops_inbound_events_total", "Inbound events", ["type", "outcome"])
ACCEPT_SECONDS = Histogram(
    "larkops_inbound_accept_seconds",
    "From frame received to answer (commit, or card response)",
    ["kind"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class Inbox:
    """The durable inbox and its workers."""

    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher | None = None,
        *,
        workers: int = 4,
        poll: float = IDLE_POLL,
        retry_pause: float = RETRY_PAUSE,
        alerts: AlertSink | None = None,
    ) -> None:
        self.db = db
        self._dispatcher = dispatcher
        self.alerts = alerts
        self._served = asyncio.Event()  # set once there is a dispatcher
        if dispatcher is not None:
            self._served.set()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        # one release per event committed here: each wakes one worker for one claim (waking
        # every worker for every event made the idle ones claim nothing, four claims an event)
        self._signals = asyncio.Semaphore(0)
        self._poll = poll
        self._retry_pause = retry_pause
        self._count = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def dispatcher(self) -> Dispatcher:
        assert self._dispatcher is not None, "the inbox is not served yet"
        return self._dispatcher

    @property
    def bot_open_id(self) -> str:
        return self.dispatcher.services.bot.open_id

    def serve(self, dispatcher: Dispatcher, alerts: AlertSink | None = None) -> None:
        """The desks are ready: card actions waiting are dispatched; `start` starts the
        workers, which first handle what was committed while the bot was starting."""
        self._dispatcher = dispatcher
        if alerts is not None:
            self.alerts = alerts
        self._served.set()

    # accepting --------------------------------------------------------------------------

    async def accept(
        self, raw: bytes | dict[str, Any], source: str = "lark"
    ) -> dict[str, Any] | None:
        """Persist (or, for card actions, answer) one delivered event. Raises when the event
        could not be committed: the transport then does not acknowledge it."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            envelope = parse_envelope(raw)
        except MalformedEvent as exc:
            await self._record_malformed(raw, str(exc), source)
            return None
        trace_id = event_trace_id(envelope.event_id)
        with tracing.root_span("lark.receive", trace_id, {"lark.event_type": envelope.event_type}):
            if envelope.event_type == "card.action.trigger":
                # a click during start-up waits for the dispatcher, within the same deadline;
                # past it, TimeoutError: not acknowledged, Lark tells the user it failed
                async with asyncio.timeout_at(started + CARD_DEADLINE):
                    await self._served.wait()
                response = await self._card_action(envelope, source, started + CARD_DEADLINE)
                ACCEPT_SECONDS.labels("card_action").observe(loop.time() - started)
                return response
            handled = envelope.event_type in HANDLED_TYPES
            with tracing.span("inbox.commit"):
                row = await inbound.record(
                    self.db,
                    event_id=envelope.event_id,
                    message_id=envelope.message_id,
                    event_type=envelope.event_type,
                    payload=envelope.body,
                    source=source,
                    status="pending" if handled else "ignored",
                    error=None if handled else "unsupported event type",
                )
        outcome = "duplicate" if row is None else ("queued" if handled else "unsupported")
        EVENTS.labels(envelope.event_type, outcome).inc()
        if row is None:
            log.info("event.duplicate", event_id=envelope.event_id, message_id=envelope.message_id)
        elif not handled:
            log.warning("event.unsupported", event_type=envelope.event_type)
        if handled:  # a duplicate too: `record` may have stored it in a try it saw no answer of
            self._signals.release()
        ACCEPT_SECONDS.labels("message").observe(loop.time() - started)
        return None

    async def _record_malformed(
        self, raw: bytes | dict[str, Any], reason: str, source: str
    ) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else repr(raw)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        log.warning("event.malformed", reason=reason, size=len(text))
        EVENTS.labels("malformed", "ignored").inc()
        await inbound.record(
            self.db,
            event_id=f"malformed:{digest}",
            event_type="malformed",
            payload={"raw": text[:20_000]},
            source=source,
            status="ignored",
            error=reason,
        )

    async def _card_action(
        self, envelope: Envelope, source: str, deadline: float
    ) -> dict[str, Any]:
        texts = self.dispatcher.texts
        error: str | None
        status: InboundStatus
        if await inbound.exists(self.db, envelope.event_id):
            EVENTS.labels(envelope.event_type, "duplicate").inc()
            return ActionResult(toast=Toast("info", texts("action.duplicate"))).response()
        try:
            action = normalise(envelope, self.bot_open_id)
        except MalformedEvent as exc:
            log.warning("card_action.malformed", reason=str(exc))
            result = ActionResult(toast=Toast("error", texts("action.forged")))
            status, error = "ignored", str(exc)
        else:
            assert isinstance(action, CardAction)
            try:
                async with asyncio.timeout_at(deadline):  # `CARD_DEADLINE` after it arrived
                    result = await self.dispatcher.dispatch_action(action)
                status, error = "done", None
            except TimeoutError:
                log.error("card_action.too_slow", deadline=CARD_DEADLINE)
                result = ActionResult(toast=Toast("error", texts("action.too_slow")))
                status, error = "failed", "handler exceeded the card deadline"
        response = result.response()
        await inbound.record(
            self.db,
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            payload={**envelope.body, "response": response},
            source=source,
            status=status,
            error=error,
        )
        EVENTS.labels(envelope.event_type, status).inc()
        return response

    # working ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Something was committed: let a worker look now rather than at the next poll."""
        self._signals.release()

    def start(self) -> None:
        # each worker first drains what a previous run left pending
        self._tasks = [asyncio.create_task(self._work(n)) for n in range(self._count)]

    async def stop(self) -> None:
        """Let each worker finish the event it holds (a claim is a transaction: cancelling it
        half-way leaves asyncpg closing a connection under a cancel, which it logs as an error),
        and cancel only a worker still busy after `STOP_GRACE`."""
        self._stopping = True
        for _ in self._tasks:
            self._signals.release()
        if not self._tasks:
            return
        _, busy = await asyncio.wait(self._tasks, timeout=STOP_GRACE)
        await cancel(*busy)

    async def _work(self, number: int) -> None:
        """Wait for a signal (an event committed in this process), claim once, and so on; after
        a poll (only worker 0 polls, so an idle bot makes one claim per `poll`, not one per
        worker) claim until there is nothing left: those events were left by another process."""
        poll = self._poll if number == 0 else None
        draining = True  # at start: whatever a previous run left
        while not self._stopping:
            woken = False
            if not draining:
                try:
                    async with asyncio.timeout(poll):
                        woken = await self._signals.acquire()
                except TimeoutError:
                    draining = True
                if self._stopping:
                    return
            try:
                outcome, claimed = await self._claim_and_handle()
            except Exception:
                log.exception("inbox.worker_error", worker=number)
                outcome, claimed = "deferred", 0
            if outcome == "deferred":  # Lark or Redis away for a while: a short pause
                await asyncio.sleep(self._retry_pause)
                draining = True  # and the event is claimed again
                continue
            owed = claimed - (1 if woken else 0)
            if owed > 0:
                # it took events whose wake-ups are still to come (a storm's deliveries claimed
                # together): each would make a claim that finds nothing, a transaction a
                # delivery; this worker takes them back and claims until nothing is left
                await self._absorb(owed)
                draining = True
            draining = draining and outcome == "handled"

    async def _absorb(self, wakes: int) -> None:
        """Take back up to `wakes` wake-ups that are waiting (never one of `stop`'s)."""
        for _ in range(wakes):
            if self._stopping or self._signals.locked():
                return
            await self._signals.acquire()  # one is there: returns at once

    async def handle_one(self) -> Handled:
        """Claim and handle the oldest pending event (with the alert deliveries pending after
        it, when it is one: triaged together): `handled`, `idle` when there was none, or
        `deferred` when it met a transient failure (the worker pauses before the next
        claim)."""
        outcome, _ = await self._claim_and_handle()
        return outcome

    async def _claim_and_handle(self) -> tuple[Handled, int]:
        """`handle_one`, and how many events it claimed."""
        batch = ALERT_BATCH if self.alerts is not None else 1
        async with inbound.claim_batch(self.db, worker=self.worker_id, alerts=batch) as rows:
            if not rows:
                return "idle", 0
            row = rows[0]
            trace_id = str(row.payload.get("trace_id") or "") or event_trace_id(row.event_id)
            with (
                trace_context(trace_id),
                tracing.root_span("inbox.dispatch", trace_id, {"lark.event_type": row.event_type}),
            ):
                if self.alerts is not None and row.event_type.startswith(inbound.ALERT_PREFIX):
                    return await self._handle_alerts(rows), len(rows)
                return await self._handle(row), 1

    async def _handle_alerts(self, rows: list[InboundEvent]) -> Handled:
        """Alert deliveries claimed together: triaged in one go; when that fails for another
        reason than a transient one, each is tried alone, so one bad delivery fails alone."""
        assert self.alerts is not None
        try:
            outcomes = await self.alerts(
                [
                    (row.event_type.removeprefix(inbound.ALERT_PREFIX), row.payload, row.event_id)
                    for row in rows
                ]
            )
        except TRANSIENT as exc:
            for row in rows:
                self._defer(row, exc)
            return "deferred"
        except Exception as exc:
            if len(rows) > 1:
                log.warning("alerts.batch_failed", deliveries=len(rows), error=str(exc)[:200])
                outcome: Handled = "handled"
                for row in rows:
                    if await self._handle_alerts([row]) == "deferred":
                        outcome = "deferred"
                return outcome
            log.exception("event.failed", event_id=rows[0].event_id)
            rows[0].status, rows[0].error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
            EVENTS.labels(rows[0].event_type, "failed").inc()
            return "handled"
        for row, status in zip(rows, outcomes, strict=True):
            row.status = status
            EVENTS.labels(row.event_type, status).inc()
        return "handled"

    def _defer(self, row: InboundEvent, exc: Exception) -> bool:
        """Lark answering 5xx/429 for a while, Redis away: keep the event to try it again after
        a pause (the handler runs again from the start, as after a crash). False when it has
        been tried long enough: it failed."""
        waited = datetime.now(UTC) - row.created_at
        retry = row.attempts < MAX_ATTEMPTS or waited < TRANSIENT_PATIENCE
        row.status = "pending" if retry else "failed"
        row.error = f"retry later: {type(exc).__name__}: {exc}"[:2000]
        EVENTS.labels(row.event_type, "deferred" if retry else "failed").inc()
        log.warning("event.deferred", event_id=row.event_id, error=row.error[:300])
        return retry

    async def _handle(self, row: InboundEvent) -> Handled:
        """Handle one claimed event (see `handle_one`)."""
        try:
            event = normalise(parse_envelope(row.payload), self.bot_open_id)
            if isinstance(event, MessageEvent):
                row.status = await self.dispatcher.dispatch_message(event)
            else:
                row.status, row.error = "ignored", "not handled by workers"
        except MalformedEvent as exc:
            log.warning("event.malformed", event_id=row.event_id, reason=str(exc))
            row.status, row.error = "failed", str(exc)
        except TRANSIENT as exc:
            self._defer(row, exc)
            return "deferred"  # the worker pauses before it claims again
        except Exception as exc:
            log.exception("event.failed", event_id=row.event_id)
            row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        EVENTS.labels(row.event_type, row.status).inc()
        return "handled"
