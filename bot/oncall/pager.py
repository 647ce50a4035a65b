"""Paging: an incident's escalation policy as durable timers, fired until someone acknowledges.

When an incident opens, `plan` writes one `pages` row per step of its policy
(`EscalationConfig.policy_for`), due `after` the incident opened. Every replica's `sweep`
claims the due rows (`storage.pages.claim_due`, `SKIP LOCKED`: each fires once) and fires them:
the level's people (`Roster.people`) are tried through its channels in order
(`workflows.oncall.paging.chain`); a channel Lark refuses gives way to the next, and the card
and the timeline say which and why. `stop` (an acknowledgement) cancels what is still pending;
a step claimed after an acknowledgement or a resolution is closed without paging anyone. An
escalation (`escalated`) starts paging again when it had stopped: an acknowledgement made
before the escalation no longer counts (`storage.incidents.awaits_ack`), and the new steps are
due from the stored escalation time, so a restart or a second replica reads the same deadlines.

In production `run` sweeps every `Timers.page_every` seconds and at once after `plan`; tests
call `LarkRuntime.sweep()` instead.

    pager = Pager(settings, db, api, presenter, roster, replica="host:1")
    await pager.plan(incident_id)
    await pager.sweep()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

from bot.config import Settings
from bot.incidents.presenter import LarkPresenter
from bot.lark.api import LarkApi, LarkApiError, idempotency_key
from bot.logs import get_logger
from bot.oncall.roster import Roster
from cards.markup import calls, said
from cards.texts import texts
from storage import incidents, pages
from storage.database import Database
from storage.models import Incident, Page
from workflows.oncall.escalation_policy import URGENT, Channel
from workflows.oncall.paging import Refusal, chain, reason_of

log = get_logger(__name__)
PARALLEL = 16  # incidents paged at once by one replica (Lark's app limit paces the calls)
MAX_IN_FLIGHT = 5000  # steps taken and not yet fired, beyond which a replica takes no more
ALSO_EVERY = 20.0  # seconds between two looks for shift changes (they are minutes apart)

PAGES = Counter("larkops_pages_total", "Paging steps fired", ["channel", "outcome"])
LATENESS = Histogram(
    "larkops_page_lateness_seconds",
    "From a paging step's due time to its claim",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)


class Pager:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        api: LarkApi,
        presenter: LarkPresenter,
        roster: Roster,
        *,
        replica: str,
    ) -> None:
        self.settings = settings
        self.db = db
        self.api = api
        self.presenter = presenter
        self.roster = roster
        self.replica = replica
        self.say = texts(settings.language)
        self._wake = asyncio.Event()
        self._room = asyncio.Semaphore(PARALLEL)
        self._firing: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.escalation.policies)

    async def plan(self, incident_id: int) -> int:
        """Write the incident's steps (none when no policy pages it); how many were new."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None or not self.enabled:
            return 0
        config = self.settings.escalation
        name = config.policy_for(incident.chat_id or "", incident.severity)
        if name is None:
            return 0
        steps = [(s.number, s.level, s.delay.total_seconds()) for s in config.steps(name)]
        return await pages.plan(self.db, incident_id, name, steps)

    async def escalated(self, incident_id: int) -> int:
        """The incident was just escalated. Its paging still waiting on its timers (nobody
        acknowledged it) goes on as planned; stopped (someone acknowledged it, or every level
        has fired), it starts again (`restart_level`): that level now, the later ones on
        their timers counted from the escalation. How many steps were planned."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None or not self.enabled or incident.status in incidents.FINAL:
            return 0
        config = self.settings.escalation
        name = config.policy_for(incident.chat_id or "", incident.severity)
        if name is None:
            return 0
        earlier = await pages.of_incident(self.db, incident_id)
        if any(p.status in ("pending", "firing") for p in earlier):
            return 0
        start = await self.restart_level(incident, name, earlier)
        steps = [s for s in config.steps(name) if s.number >= start]
        first = steps[0].delay if steps else None
        planned = [(s.level, (s.delay - first).total_seconds()) for s in steps if first is not None]
        added = await pages.plan_escalation(self.db, incident_id, name, planned)
        if added:
            await incidents.record_event(
                self.db, incident_id, "page.escalated", data={"level": start, "steps": added}
            )
            await self.presenter.show(incident_id)  # its Ack button is back
            self.wake()
        return added

    async def restart_level(self, incident: Incident, name: str, earlier: Sequence[Page]) -> int:
        """The level an escalation pages first: acknowledged by someone who is not on call
        now, the first level (whoever is on call); else the first level after the highest
        one paged that reaches someone besides whoever acknowledged it (the last level when
        none does)."""
        levels = self.settings.escalation.policies[name]
        acker = incident.acknowledged_by if incident.acknowledged_at is not None else None
        if acker is not None and acker not in await self.roster.people(levels[0].notify):
            return 1
        top = max((p.level for p in earlier if p.status == "done"), default=0)
        for number in range(top + 1, len(levels) + 1):
            if set(await self.roster.people(levels[number - 1].notify)) - {acker}:
                return number
        return len(levels)

    def wake(self) -> None:
        """Look for due steps now (an incident just got its plan and its card)."""
        self._wake.set()

    async def stop(self, incident_id: int, who: str) -> int:
        """Cancel the incident's pending steps (it was acknowledged); how many."""
        stopped = await pages.cancel(self.db, incident_id)
        if stopped:
            await incidents.record_event(
                self.db, incident_id, "page.stopped", actor=who, data={"pending": stopped}
            )
        return stopped

    async def sweep(self, *, wait: bool = True) -> int:
        """Take every due step and fire it (the steps of one incident in order, `PARALLEL`
        incidents at a time); how many were taken. `wait` False: return once they are
        taken, firing goes on in the background (the loop: Lark's rate limit paces a burst
        of pages, and the next due steps must not wait behind it)."""
        if not self.enabled or len(self._firing) >= MAX_IN_FLIGHT:
            return 0
        claimed = await pages.claim_due(self.db, self.replica)
        by_incident: dict[int, list[Page]] = defaultdict(list)
        for page in claimed:
            if page.claimed_at is not None and page.attempts == 1:
                LATENESS.observe(max((page.claimed_at - page.due_at).total_seconds(), 0.0))
            by_incident[page.incident_id].append(page)
        tasks = [asyncio.create_task(self._fire_all(steps)) for steps in by_incident.values()]
        for task in tasks:
            self._firing.add(task)
            task.add_done_callback(self._firing.discard)
        if wait:
            await asyncio.gather(*tasks)
        return len(claimed)

    async def _fire_all(self, steps: list[Page]) -> None:
        async with self._room:
            for page in steps:
                try:
                    await self._fire(page)
                except Exception:  # the row stays `firing`; a later sweep takes it again
                    log.exception("page.failed", incident=page.incident_id, step=page.step)

    async def drain(self) -> None:
        """Wait for the steps being fired (shutdown, tests)."""
        await asyncio.gather(*list(self._firing), return_exceptions=True)

    async def run(self, every: float, also: Callable[[], Awaitable[object]] | None = None) -> None:
        """Sweep when the earliest pending step is due (read from the data, so an idle bot does
        not poll), at once after `wake` (a step planned here), and at least every `ALSO_EVERY`
        seconds (steps another replica planned and left; `also`: shift changes). `every` is the
        shortest pause between two sweeps."""
        last = 0.0
        while True:
            self._wake.clear()
            pause = ALSO_EVERY
            try:
                await self.sweep(wait=False)
                if also is not None and time.monotonic() - last >= ALSO_EVERY:
                    last = time.monotonic()
                    await also()
                due = await pages.next_due(self.db)
                if due is not None:
                    pause = (due - datetime.now(UTC)).total_seconds()
            except Exception:
                log.exception("page.sweep_failed")
            cap = ALSO_EVERY - (time.monotonic() - last) if also is not None else ALSO_EVERY
            pause = max(every, min(pause, cap))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def _fire(self, page: Page) -> None:
        incident = await incidents.get_incident(self.db, page.incident_id)
        settled = _settled(incident)
        level = self.settings.escalation.level(page.policy, page.level)
        if incident is None or settled is not None or level is None:
            await pages.finish(self.db, page.id, {"skipped": settled or "policy_gone"}, fired=False)
            return
        people = await self.roster.people(level.notify)
        refused: list[dict[str, str]] = []
        used: Channel | None = None
        for channel in chain(level.via):
            reason = await self._reach(channel, incident, people, page)
            if reason is None:
                used = channel
                PAGES.labels(channel, "sent").inc()
                break
            PAGES.labels(channel, reason).inc()
            refused.append({"channel": channel, "reason": reason})
        outcome = {
            "step": page.step,
            "level": page.level,
            "people": list(people),
            "channel": used,
            "refused": refused,
        }
        await pages.finish(self.db, page.id, outcome)
        await incidents.record_event(self.db, incident.id, "page.sent", data=outcome)
        await self.presenter.show(incident.id)

    async def _reach(
        self, channel: Channel, incident: Incident, people: tuple[str, ...], page: Page
    ) -> Refusal | None:
        """Page `people` through `channel`: None when it went out, else why not."""
        if not people and channel != "chat":
            return "nobody"
        if channel == "chat" and not incident.chat_id:  # a webhook alert with no chat
            return "failed"
        try:
            if channel == "chat":
                await self._mention(incident, people, page)
            elif channel == "direct":
                await self._direct(incident, people, page)
            elif channel in URGENT:
                if not incident.card_message_id:
                    return "no_card"
                missed = await self.api.urgent(channel, incident.card_message_id, list(people))
                if set(missed) >= set(people):
                    return "not_in_chat"
        except LarkApiError as exc:
            log.warning("page.refused", channel=channel, code=exc.code, msg=exc.msg[:200])
            return reason_of(exc.code)
        return None

    async def _mention(self, incident: Incident, people: tuple[str, ...], page: Page) -> None:
        key = "page.chat" if people else "page.chat_nobody"
        if people and page.after_escalation:
            key = "page.chat_escalated"
        text = self.say(key, id=incident.id, level=page.level, title=said(incident.title, 100))
        content = {"text": f"{calls(people)} {text}".strip()}
        uuid = idempotency_key("page", str(incident.id), str(page.step))
        if incident.card_message_id and incident.chat_id:
            await self.api.reply(
                incident.card_message_id, "text", content, uuid=uuid, chat_id=incident.chat_id
            )
        elif incident.chat_id:
            await self.api.send(incident.chat_id, "text", content, uuid=uuid)

    async def _direct(self, incident: Incident, people: tuple[str, ...], page: Page) -> None:
        title = said(incident.title, 100)
        text = self.say("page.direct", id=incident.id, level=page.level, title=title)
        failed: LarkApiError | None = None
        sent = 0
        for person in people:
            uuid = idempotency_key("page-direct", str(incident.id), str(page.step), person)
            try:
                await self.api.send_direct(person, "text", {"text": text}, uuid=uuid)
                sent += 1
            except LarkApiError as exc:
                failed = exc
        if not sent and failed is not None:
            raise failed


def _settled(incident: Incident | None) -> str | None:
    """Why an incident needs no more paging (None: it still does)."""
    if incident is None:
        return "gone"
    if incident.status in incidents.FINAL:
        return "resolved"
    if not incidents.awaits_ack(incident):
        return "acknowledged"
    return None
