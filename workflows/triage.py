"""Triage: parsed alerts become incidents, folded, silenced or grouped into a storm.

For each batch of alerts (one webhook delivery, one chat message):
- alerts matching an active silence are recorded and start nothing;
- alerts are grouped by fingerprint; one transaction per delivery locks every fingerprint it
  touches in the destination chat (advisory locks, taken in one order), so replicas and
  concurrent deliveries never open two incidents for one problem;
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
from typing import cast

from prometheus_client import Counter
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import silences
from storage.database import Database
from storage.incidents import UNRESOLVED
from storage.models import (
    Alert,
    DedupeOverride,
    Incident,
    IncidentEvent,
    TriagedDelivery,
)
from storage.statuses import may_move
from workflows.intake.alert import ParsedAlert
from workflows.silences import matches

log = logging.getLogger(__name__)
ALERTS_TABLE = cast(Table, Alert.__table__)
# every fold of one delivery in one statement; the card shows the latest alert's summary (its
# current value), not the first one's
_FOLD = text(
    "UPDATE incidents AS i SET alert_count = i.alert_count + f.n, last_seen_at = now(), "
    "summary = COALESCE(NULLIF(f.s, ''), i.summary), "
    "updated_at = now() FROM (SELECT unnest(CAST(:ids AS bigint[])) AS id, "
    "unnest(CAST(:counts AS int[])) AS n, unnest(CAST(:summaries AS text[])) AS s) AS f "
    "WHERE i.id = f.id"
)
ALERTS = Counter("larkops_alerts_total", "Alerts received", ["source", "outcome"])

Notify = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class TriageSettings:
    dedupe_window: timedelta = timedelta(hours=4)
    storm_threshold: int = 5  # new incidents in one chat ...
    storm_window: timedelta = timedelta(minutes=2)  # ... within this long


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


@dataclass
class Hooks:
    on_new: Notify  # start the incident's workflow
    on_changed: Notify  # refresh the incident's card
    on_resolved: Notify  # the alert resolved: end a paused workflow
    on_storm: Callable[[str], Awaitable[None]]  # refresh the chat's storm card
    # a critical alert held back by a silence: (chat, silence id, alert title) → a notice
    on_caught: Callable[[str, int, str], Awaitable[None]] | None = None


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
        outcome = TriageOutcome()
        in_force = await silences.active(self.db, chat_id)
        groups: dict[tuple[str, str], list[ParsedAlert]] = defaultdict(list)
        silenced: list[ParsedAlert] = []
        caught: dict[int, int] = defaultdict(int)  # silence id -> alerts it held back
        for alert in alerts:
            holding = next(
                (s for s in in_force if matches(s.matchers.get("terms", []), _labels(alert))),
                None,
            )
            if holding is None:
                groups[(alert.fingerprint, alert.status)].append(alert)
                continue
            silenced.append(alert)
            caught[holding.id] += 1
            held = (holding.id, alert.title)
            if (
                alert.severity == "critical"
                and alert.status == "firing"
                and held not in outcome.caught
            ):
                outcome.caught.append(held)
        rows: list[dict[str, object]] = [_alert_row(a, None) for a in silenced]
        outcome.silenced = len(silenced)
        folds: dict[int, int] = defaultdict(int)  # incident id -> alerts folded into it
        latest: dict[int, str] = {}  # incident id -> the summary of its latest folded alert
        async with self.db.session() as session:
            if delivery is not None and not await _first_time(session, delivery):
                outcome.replayed = True
                return outcome
            current = await self._lock_and_load(session, chat_id, sorted({fp for fp, _ in groups}))
            windows = await self._own_windows(session, list(current))
            for (fingerprint, status), group in groups.items():
                incident = current.get(fingerprint)
                if status == "resolved":
                    incident_id = await self._resolve(session, incident, group, outcome)
                elif incident is not None and incident.last_seen_at > self._window_start(
                    windows.get(fingerprint)
                ):
                    incident_id = incident.id
                    folds[incident_id] += len(group)
                    latest[incident_id] = group[-1].summary or ""
                    outcome.folded.append(incident_id)
                else:
                    incident_id = await self._open(session, group, chat_id, outcome)
                    opened = await session.get(Incident, incident_id)
                    if opened is not None:
                        current[fingerprint] = opened  # a resolved group later in the batch
                rows.extend(_alert_row(a, incident_id) for a in group)
            if folds:
                summaries = [latest.get(incident_id, "") for incident_id in folds]
                await session.execute(
                    _FOLD,
                    {"ids": list(folds), "counts": list(folds.values()), "summaries": summaries},
                )
            if rows:
                await session.execute(insert(ALERTS_TABLE), rows)  # Core: no ORM bookkeeping
            await silences.count_caught(session, caught)
        for group in groups.values():
            ALERTS.labels(group[0].source, group[0].status).inc(len(group))
        if silenced:
            ALERTS.labels(silenced[0].source, "silenced").inc(len(silenced))
        await self._notify(outcome, chat_id)
        return outcome

    async def _lock_and_load(
        self, session: AsyncSession, chat_id: str, fingerprints: list[str]
    ) -> dict[str, Incident]:
        """Lock every fingerprint of the delivery in its chat (in one order, so deliveries
        never deadlock), then load their active incidents in that chat."""
        if not fingerprints:
            return {}
        await session.execute(
            text(
                "SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtext(:chat || '/' || f) AS k "
                "FROM unnest(CAST(:fps AS text[])) AS f ORDER BY k) AS keys"
            ),
            {"fps": fingerprints, "chat": chat_id},
        )
        found = await session.scalars(
            select(Incident)
            .where(
                Incident.fingerprint.in_(fingerprints),
                Incident.chat_id == chat_id,
                Incident.status.in_(UNRESOLVED),
            )
            .order_by(Incident.id)
            .with_for_update()
        )
        return {incident.fingerprint: incident for incident in found}

    async def _own_windows(
        self, session: AsyncSession, fingerprints: list[str]
    ) -> dict[str, timedelta]:
        """The fingerprints' own dedupe windows (set from the hygiene report), where set."""
        if not fingerprints:
            return {}
        rows = await session.execute(
            select(DedupeOverride.fingerprint, DedupeOverride.minutes).where(
                DedupeOverride.fingerprint.in_(fingerprints)
            )
        )
        return {fp: timedelta(minutes=minutes) for fp, minutes in rows.all()}

    def _window_start(self, window: timedelta | None = None) -> datetime:
        return datetime.now(UTC) - (window or self.settings.dedupe_window)

    async def _open(
        self, session: AsyncSession, group: list[ParsedAlert], chat_id: str, outcome: TriageOutcome
    ) -> int:
        last = group[-1]
        storm = await self._storming(session, chat_id)
        created = Incident(
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
        session.add(created)
        await session.flush()
        (outcome.stormed if storm else outcome.new).append(created.id)
        session.add(
            IncidentEvent(
                incident_id=created.id,
                kind="incident.opened",
                message=last.title,
                data={"source": last.source, "storm": storm, "alerts": len(group)},
            )
        )
        return created.id

    async def _storming(self, session: AsyncSession, chat_id: str) -> bool:
        # one opening at a time per chat, so concurrent deliveries agree on the count (taken
        # after the fingerprint locks: whoever holds it holds all of its own already)
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"storm:{chat_id}"}
        )
        since = datetime.now(UTC) - self.settings.storm_window
        recent = await session.scalar(
            select(func.count())
            .select_from(Incident)
            .where(Incident.chat_id == chat_id, Incident.created_at > since)
        )
        return int(recent or 0) >= self.settings.storm_threshold

    async def _resolve(
        self,
        session: AsyncSession,
        current: Incident | None,
        group: list[ParsedAlert],
        outcome: TriageOutcome,
    ) -> int | None:
        if current is None:
            return None
        # a running fix finishes and verifies itself (the life cycle, `storage.statuses.MOVES`)
        if may_move(current.status, "resolved", "alert"):
            current.status = "resolved"
            current.resolved_at = func.now()
            current.resolved_by = "alert"
            session.add(
                IncidentEvent(
                    incident_id=current.id,
                    kind="incident.resolved_by_alert",
                    message=group[0].title,
                    data={"source": group[0].source},
                )
            )
            outcome.resolved.append(current.id)
        return current.id

    async def _notify(self, outcome: TriageOutcome, chat_id: str) -> None:
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
        if outcome.stormed:
            calls.append((f"on_storm {chat_id}", partial(hooks.on_storm, chat_id)))
        if hooks.on_caught is not None:
            calls += [
                (f"on_caught {i}", partial(hooks.on_caught, chat_id, silence_id, title))
                for i, (silence_id, title) in enumerate(outcome.caught)
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


async def _first_time(session: AsyncSession, delivery: str) -> bool:
    """Record `delivery` in the triage transaction; False when it was recorded before (a
    concurrent replay waits for the first transaction and then sees it)."""
    recorded = await session.execute(
        upsert(TriagedDelivery)
        .values(delivery=delivery)
        .on_conflict_do_nothing(index_elements=["delivery"])
        .returning(TriagedDelivery.delivery)
    )
    return recorded.scalar_one_or_none() is not None
