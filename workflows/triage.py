"""Triage: parsed alerts become incidents, folded, silenced or grouped into a storm.

For each delivery of alerts (one webhook request, one chat message), or a batch of them that
the inbox workers claimed together (`receive_batch`: the same outcome as one after the other):
- alerts matching an active silence are recorded and start nothing;
- alerts are grouped by fingerprint; one transaction per batch locks every fingerprint it
  touches in its destination chat (advisory locks, taken in one order), so replicas and
  concurrent batches never open two incidents for one problem;
- dedupe is per destination chat: an alert posted in chat B never folds into (nor resolves) an
  incident of chat A, so B's team sees its own incident;
- a firing alert whose fingerprint has an active incident in the chat seen within the dedupe
  window (the
  fingerprint's own from `dedupe_overrides` when one is set, else the global one) is folded
  into it (count and last seen); otherwise it opens an incident;
- a resolved alert closes the loop: the active incident is marked resolved (unless a fix is
  already running), its open gates are cancelled and its card updated;
- when many distinct incidents open in one chat within the storm window, the newer ones are
  marked `storm`: they are grouped on one summary card and their workflows are not started
  automatically (`/diagnose <id>` starts one).

The callbacks (`on_new`, `on_changed`, `on_resolved`, `on_storm`) let the bot start runs and
update cards without this module knowing Lark.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from storage import silences
from storage import triage as store
from storage.database import Database
from storage.models import Incident, Silence
from storage.statuses import UNRESOLVED, may_move
from workflows.intake.alert import ParsedAlert
from workflows.silences import matches

log = logging.getLogger(__name__)
ALERTS = Counter("larkops_alerts_total", "Alerts received", ["source", "outcome"])

Notify = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class TriageSettings:
    dedupe_window: timedelta = timedelta(hours=4)
    storm_threshold: int = 5  # new incidents in one chat ...
    storm_window: timedelta = timedelta(minutes=2)  # ... within this long
    # a firing alert with no incident of its own joins its service's active incident in the
    # chat (seen within the dedupe window) instead of opening one; that incident is resolved
    # by the alerts once none of them fires any more
    join_by_service: bool = False


@dataclass
class TriageOutcome:
    new: list[int] = field(default_factory=list)
    folded: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    replayed: bool = False  # the delivery was counted before (a replay after a crash)
    stormed: list[int] = field(default_factory=list)
    silenced: int = 0
    # critical alerts a silence held back: (silence id, alert title), each said in the chat
    caught: list[tuple[int, str]] = field(default_factory=list)
    storms: list[str] = field(default_factory=list)  # chats whose storm card must change
    notices: list[tuple[str, int, str]] = field(default_factory=list)  # (chat, silence, title)


@dataclass
class Hooks:
    on_new: Notify  # start the incident's workflow
    on_changed: Notify  # refresh the incident's card
    on_resolved: Notify  # the alert resolved: end a paused workflow
    on_storm: Callable[[str], Awaitable[None]]  # refresh the chat's storm card
    # a critical alert held back by a silence: (chat, silence id, alert title) → a notice
    on_caught: Callable[[str, int, str], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Delivery:
    """One delivery's alerts: a webhook request (its inbound event id) or an alert bot's chat
    message (`message:<id>`); `id` None: not protected against replays."""

    alerts: Sequence[ParsedAlert]
    chat_id: str
    id: str | None = None


@dataclass
class _Batch:
    """What one triage transaction knows while it goes through its deliveries in order."""

    current: dict[tuple[str, str], Incident]  # (chat, fingerprint) -> its active incident
    windows: dict[str, timedelta]
    seen: set[int] = field(default_factory=set)  # incidents opened or folded into just now
    recent: dict[str, int] = field(default_factory=dict)  # chat -> incidents opened lately
    storms: list[str] = field(default_factory=list)  # chats whose storm card must change
    folds: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    latest: dict[int, str] = field(default_factory=dict)  # incident -> latest fold's summary
    services: dict[tuple[str, str], Incident] = field(default_factory=dict)  # (chat, service)
    rows: list[dict[str, object]] = field(default_factory=list)


class Triage:
    def __init__(self, db: Database, settings: TriageSettings, hooks: Hooks) -> None:
        self.db = db
        self.settings = settings
        self.hooks = hooks

    async def receive(
        self, alerts: Sequence[ParsedAlert], chat_id: str, *, delivery: str | None = None
    ) -> TriageOutcome:
        """Count, fold, open and resolve in one transaction; `delivery` (the inbound event or
        message id) makes a replayed delivery count once: it is recorded in that transaction,
        and a delivery already recorded changes nothing (`outcome.replayed`)."""
        return await self.receive_batch([Delivery(alerts, chat_id, delivery)])

    async def receive_batch(
        self, deliveries: Sequence[Delivery], *, notify: bool = True
    ) -> TriageOutcome:
        """Triage many deliveries in one transaction, with the incidents, counts and storm
        decisions that `receive` of each in turn would give: per chat the deliveries are
        taken in their order (chats are independent), every statement covers the batch
        (one lock statement, one fold UPDATE per batch however often an incident repeats,
        one INSERT of the alerts), and each hook is called once per incident. `notify`
        False: the hooks are left to the caller (`notify` with the outcome)."""
        outcome = TriageOutcome()
        chats = sorted({d.chat_id for d in deliveries})
        in_force = {chat: await silences.active(self.db, chat) for chat in chats}
        caught: dict[int, int] = defaultdict(int)  # silence id -> alerts it held back
        async with self.db.session() as session:
            fresh = await store.first_times(session, [d.id for d in deliveries if d.id])
            todo = [d for d in deliveries if d.id is None or d.id in fresh]
            outcome.replayed = len(todo) < len(deliveries)
            grouped: list[tuple[str, dict[tuple[str, str], list[ParsedAlert]]]] = []
            silenced: list[ParsedAlert] = []
            notices = outcome.notices  # (chat, silence id, title) to say
            for delivery in todo:
                groups = self._sort(delivery, in_force[delivery.chat_id], silenced, caught)
                grouped.append((delivery.chat_id, groups))
                for silence_id, title in self._critical(delivery, in_force[delivery.chat_id]):
                    if (silence_id, title) not in outcome.caught:
                        outcome.caught.append((silence_id, title))
                        notices.append((delivery.chat_id, silence_id, title))
            keys = sorted({(chat, fp) for chat, groups in grouped for fp, _ in groups})
            batch = _Batch(*await self._lock_and_load(session, keys))
            if self.settings.join_by_service:
                services = {(c, a.service) for c, gs in grouped for g in gs.values() for a in g}
                batch.services = await store.lock_services(
                    session, sorted((c, s) for c, s in services if s)
                )
            batch.rows.extend(_alert_row(a, None) for a in silenced)
            outcome.silenced = len(silenced)
            # chats in one order: the storm locks are taken in it (no deadlock between batches)
            for chat in chats:
                for _, groups in (g for g in grouped if g[0] == chat):
                    for kind, group in groups.items():
                        await self._triage(session, batch, chat, kind, group, outcome)
            await store.fold(
                session, {i: (n, batch.latest.get(i, "")) for i, n in batch.folds.items()}
            )
            await store.record_alerts(session, batch.rows)
            await silences.count_caught(session, caught)
        for _, groups in grouped:
            for group in groups.values():
                ALERTS.labels(group[0].source, group[0].status).inc(len(group))
        if silenced:
            ALERTS.labels(silenced[0].source, "silenced").inc(len(silenced))
        outcome.storms = batch.storms
        if notify:
            await self.notify(outcome)
        return outcome

    def _sort(
        self,
        delivery: Delivery,
        in_force: Sequence[Silence],
        silenced: list[ParsedAlert],
        caught: dict[int, int],
    ) -> dict[tuple[str, str], list[ParsedAlert]]:
        """The delivery's alerts by (fingerprint, status); the silenced ones set aside."""
        groups: dict[tuple[str, str], list[ParsedAlert]] = defaultdict(list)
        for alert in delivery.alerts:
            holding = next(
                (s for s in in_force if matches(s.matchers.get("terms", []), _labels(alert))),
                None,
            )
            if holding is None:
                groups[(alert.fingerprint, alert.status)].append(alert)
                continue
            silenced.append(alert)
            caught[holding.id] += 1
        return groups

    @staticmethod
    def _critical(delivery: Delivery, in_force: Sequence[Silence]) -> list[tuple[int, str]]:
        """(silence id, title) of each critical firing alert a silence holds back."""
        held = []
        for alert in delivery.alerts:
            if alert.severity != "critical" or alert.status != "firing":
                continue
            holding = next(
                (s for s in in_force if matches(s.matchers.get("terms", []), _labels(alert))),
                None,
            )
            if holding is not None:
                held.append((holding.id, alert.title))
        return held

    async def _triage(
        self,
        session: AsyncSession,
        batch: _Batch,
        chat_id: str,
        kind: tuple[str, str],
        group: list[ParsedAlert],
        outcome: TriageOutcome,
    ) -> None:
        """One delivery's alerts of one (fingerprint, status): resolve, fold or open."""
        fingerprint, status = kind
        key = (chat_id, fingerprint)
        incident = batch.current.get(key)
        if incident is None and self.settings.join_by_service:
            incident = await self._joined(session, batch, chat_id, group[-1])
            if incident is not None:
                batch.current[key] = incident
        incident_id: int | None
        if status == "resolved":
            incident_id = await self._resolve(session, incident, group, outcome)
            if incident is not None and incident.status == "resolved":
                del batch.current[key]  # a firing later in the batch opens a new one
        elif incident is not None and (
            incident.id in batch.seen
            or incident.last_seen_at > self._window_start(batch.windows.get(fingerprint))
        ):
            incident_id = incident.id
            batch.folds[incident_id] += len(group)
            if group[-1].summary:
                batch.latest[incident_id] = group[-1].summary
            batch.seen.add(incident_id)
            outcome.folded.append(incident_id)
        else:
            opened = await self._open(session, batch, group, chat_id, outcome)
            batch.current[key] = opened
            batch.seen.add(opened.id)
            incident_id = opened.id
        batch.rows.extend(_alert_row(a, incident_id) for a in group)

    async def _joined(
        self, session: AsyncSession, batch: _Batch, chat_id: str, alert: ParsedAlert
    ) -> Incident | None:
        """The incident an alert with none of its own belongs to: the one its fingerprint
        joined before, else (firing) the active incident of its service, which it joins."""
        found = await store.joined(session, chat_id, alert.fingerprint)
        if found is not None or alert.status != "firing" or not alert.service:
            return found
        found = batch.services.get((chat_id, alert.service))
        if found is not None and found.status in UNRESOLVED:
            store.note_join(session, found, alert.title, alert.source)
            return found
        return None

    async def _lock_and_load(
        self, session: AsyncSession, keys: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], Incident], dict[str, timedelta]]:
        """Lock every (chat, fingerprint) of the batch and load their active incidents, and the
        fingerprints' own dedupe windows."""
        current = await store.lock_and_load(session, keys)
        return current, await store.dedupe_windows(session, sorted({fp for _, fp in keys}))

    def _window_start(self, window: timedelta | None = None) -> datetime:
        return datetime.now(UTC) - (window or self.settings.dedupe_window)

    async def _open(
        self,
        session: AsyncSession,
        batch: _Batch,
        group: list[ParsedAlert],
        chat_id: str,
        outcome: TriageOutcome,
    ) -> Incident:
        last = group[-1]
        storm = await self._storming(session, batch, chat_id)
        created = await store.open_incident(
            session,
            {"source": last.source, "storm": storm, "alerts": len(group)},
            fingerprint=last.fingerprint,
            title=last.title,
            severity=last.severity,
            service=last.service,
            chat_id=chat_id,
            labels=dict(last.labels),
            source=last.source,
            summary=last.summary,
            alert_count=len(group),
            storm=storm,
        )
        (outcome.stormed if storm else outcome.new).append(created.id)
        if self.settings.join_by_service and last.service and not storm:
            batch.services[(chat_id, last.service)] = created
        if storm and chat_id not in batch.storms:
            batch.storms.append(chat_id)
        return created

    async def _storming(self, session: AsyncSession, batch: _Batch, chat_id: str) -> bool:
        """Whether this opening is part of a storm; counted once per chat and batch (under the
        chat's storm lock), then kept up to date as the batch opens more."""
        recent = batch.recent.get(chat_id)
        if recent is None:
            recent = await store.openings_within(session, chat_id, self.settings.storm_window)
        batch.recent[chat_id] = recent + 1
        return recent >= self.settings.storm_threshold

    async def _resolve(
        self,
        session: AsyncSession,
        current: Incident | None,
        group: list[ParsedAlert],
        outcome: TriageOutcome,
    ) -> int | None:
        if current is None:
            return None
        if self.settings.join_by_service and await store.others_firing(
            session, current.id, group[0].fingerprint
        ):
            return current.id  # another alert of the incident still fires
        # a running fix finishes and verifies itself (the life cycle, `storage.statuses.MOVES`)
        if may_move(current.status, "resolved", "alert"):
            store.resolve_by_alert(session, current, group[0].title, group[0].source)
            outcome.resolved.append(current.id)
        return current.id

    async def notify(self, outcome: TriageOutcome) -> None:
        """Tell the bot. The delivery is committed by now, so a failing hook (Lark or Redis
        away) must not fail it: handled again, its alerts would be counted twice. What a hook
        missed is made up later: the workflow sweep starts or resumes runs nobody drives
        (their first card with them), and the next change redraws the card."""
        hooks = self.hooks
        calls: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            *((f"on_new {i}", partial(hooks.on_new, i)) for i in outcome.new),
            *((f"on_changed {i}", partial(hooks.on_changed, i)) for i in outcome.folded),
            *((f"on_resolved {i}", partial(hooks.on_resolved, i)) for i in outcome.resolved),
        ]
        calls += [(f"on_storm {chat}", partial(hooks.on_storm, chat)) for chat in outcome.storms]
        if hooks.on_caught is not None:
            calls += [
                (f"on_caught {i}", partial(hooks.on_caught, chat, silence_id, title))
                for i, (chat, silence_id, title) in enumerate(outcome.notices)
            ]
        for what, call in dict(calls).items():  # each folded incident once
            try:
                await call()
            except Exception:
                log.exception("triage: %s failed; the delivery stays handled", what)


def _labels(alert: ParsedAlert) -> dict[str, str]:
    return {"alertname": alert.title, **alert.labels}


def _alert_row(alert: ParsedAlert, incident_id: int | None) -> dict[str, object]:
    return {
        "incident_id": incident_id,
        "source": alert.source,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "title": alert.title,
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "raw": alert.raw,
    }
