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

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from storage import silences, triage
from storage.database import Database
from storage.models import Incident
from storage.statuses import may_move
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
            if delivery is not None and not await triage.first_time(session, delivery):
                outcome.replayed = True
                return outcome
            current = await triage.lock_and_load(session, chat_id, sorted({fp for fp, _ in groups}))
            windows = await triage.dedupe_windows(session, list(current))
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
                    opened = await self._open(session, group, chat_id, outcome)
                    incident_id = opened.id
                    current[fingerprint] = opened  # a resolved group later in the batch
                rows.extend(_alert_row(a, incident_id) for a in group)
            await triage.fold(session, folds, latest)
            await triage.record_alerts(session, rows)
            await silences.count_caught(session, caught)
        for group in groups.values():
            ALERTS.labels(group[0].source, group[0].status).inc(len(group))
        if silenced:
            ALERTS.labels(silenced[0].source, "silenced").inc(len(silenced))
        await self._notify(outcome, chat_id)
        return outcome

    def _window_start(self, window: timedelta | None = None) -> datetime:
        return datetime.now(UTC) - (window or self.settings.dedupe_window)

    async def _open(
        self, session: AsyncSession, group: list[ParsedAlert], chat_id: str, outcome: TriageOutcome
    ) -> Incident:
        last = group[-1]
        openings = await triage.openings_within(session, chat_id, self.settings.storm_window)
        storm = openings >= self.settings.storm_threshold
        created = await triage.open_incident(
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
        return created

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
            triage.resolve_by_alert(session, current, group[0].title, group[0].source)
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
