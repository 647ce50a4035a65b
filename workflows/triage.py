"""Triage: parsed alerts become incidents, folded, silenced or grouped into a storm.

For each batch of alerts (one webhook delivery, one chat message):
- alerts matching an active silence are recorded and start nothing;
- alerts are grouped by fingerprint; each group is handled in one transaction that holds an
  advisory lock on the fingerprint, so replicas and concurrent deliveries never open two
  incidents for one problem;
- a firing alert whose fingerprint has an active incident seen within the dedupe window is
  folded into it (count and last seen); otherwise it opens an incident;
- a resolved alert closes the loop: the active incident is marked resolved (unless a fix is
  already running), its open gates are cancelled and its card updated;
- when many distinct incidents open in one chat within the storm window, the newer ones are
  marked `storm`: they are grouped on one summary card and their workflows are not started
  automatically (`/diagnose <id>` starts one).

The callbacks (`on_new`, `on_changed`, `on_resolved`, `on_storm`) let the bot start runs and
update cards without this module knowing Lark.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.incidents import ACTIVE
from storage.models import Alert, Incident, IncidentEvent, Silence
from workflows.intake.alert import ParsedAlert
from workflows.silences import matches

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
    stormed: list[int] = field(default_factory=list)
    silenced: int = 0


@dataclass
class Hooks:
    on_new: Notify  # start the incident's workflow
    on_changed: Notify  # refresh the incident's card
    on_resolved: Notify  # the alert resolved: end a paused workflow
    on_storm: Callable[[str], Awaitable[None]]  # refresh the chat's storm card


class Triage:
    def __init__(self, db: Database, settings: TriageSettings, hooks: Hooks) -> None:
        self.db = db
        self.settings = settings
        self.hooks = hooks

    async def receive(self, alerts: Sequence[ParsedAlert], chat_id: str) -> TriageOutcome:
        outcome = TriageOutcome()
        silences = await self._active_silences(chat_id)
        groups: dict[tuple[str, str], list[ParsedAlert]] = defaultdict(list)
        silenced: list[ParsedAlert] = []
        for alert in alerts:
            if any(matches(s.matchers.get("terms", []), _labels(alert)) for s in silences):
                silenced.append(alert)
            else:
                groups[(alert.fingerprint, alert.status)].append(alert)
        if silenced:
            outcome.silenced = len(silenced)
            await self._record(silenced, incident=None)
            ALERTS.labels(silenced[0].source, "silenced").inc(len(silenced))
        for (_, status), group in groups.items():
            if status == "resolved":
                await self._resolve(group, chat_id, outcome)
            else:
                await self._fire(group, chat_id, outcome)
        await self._notify(outcome, chat_id)
        return outcome

    async def _active_silences(self, chat_id: str) -> Sequence[Silence]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Silence).where(
                    Silence.ends_at > func.now(),
                    Silence.cancelled_at.is_(None),
                    (Silence.chat_id.is_(None)) | (Silence.chat_id == chat_id),
                )
            )
            return rows.all()

    async def _record(self, alerts: Sequence[ParsedAlert], incident: int | None) -> None:
        if not alerts:
            return
        async with self.db.session() as session:
            await session.execute(insert(Alert), [_alert_row(a, incident) for a in alerts])

    async def _fire(self, group: list[ParsedAlert], chat_id: str, outcome: TriageOutcome) -> None:
        first, last = group[0], group[-1]
        window_start = datetime.now(UTC) - self.settings.dedupe_window
        async with self.db.session() as session:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:fp))"), {"fp": first.fingerprint}
            )
            current = await session.scalar(
                select(Incident)
                .where(
                    Incident.fingerprint == first.fingerprint,
                    Incident.status.in_(ACTIVE),
                    Incident.last_seen_at > window_start,
                )
                .order_by(Incident.id.desc())
                .limit(1)
                .with_for_update()
            )
            if current is not None:
                current.alert_count += len(group)
                current.last_seen_at = func.now()
                incident_id = current.id
                outcome.folded.append(incident_id)
                ALERTS.labels(first.source, "folded").inc(len(group))
            else:
                storm = await self._storming(session, chat_id)
                created = Incident(
                    fingerprint=first.fingerprint,
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
                incident_id = created.id
                (outcome.stormed if storm else outcome.new).append(incident_id)
                session.add(
                    IncidentEvent(
                        incident_id=incident_id,
                        kind="incident.opened",
                        message=last.title,
                        data={"source": last.source, "storm": storm, "alerts": len(group)},
                    )
                )
                ALERTS.labels(first.source, "storm" if storm else "new").inc(len(group))
            await session.execute(insert(Alert), [_alert_row(a, incident_id) for a in group])

    async def _storming(self, session: AsyncSession, chat_id: str) -> bool:
        # one opening at a time per chat, so concurrent deliveries agree on the count
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
        self, group: list[ParsedAlert], chat_id: str, outcome: TriageOutcome
    ) -> None:
        first = group[0]
        async with self.db.session() as session:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:fp))"), {"fp": first.fingerprint}
            )
            current = await session.scalar(
                select(Incident)
                .where(Incident.fingerprint == first.fingerprint, Incident.status.in_(ACTIVE))
                .order_by(Incident.id.desc())
                .limit(1)
                .with_for_update()
            )
            incident_id = current.id if current is not None else None
            if current is not None and current.status != "remediating":
                await session.execute(
                    update(Incident)
                    .where(Incident.id == current.id)
                    .values(status="resolved", resolved_at=func.now(), resolved_by="alert")
                )
                session.add(
                    IncidentEvent(
                        incident_id=current.id,
                        kind="incident.resolved_by_alert",
                        message=first.title,
                        data={"source": first.source},
                    )
                )
                outcome.resolved.append(current.id)
            await session.execute(insert(Alert), [_alert_row(a, incident_id) for a in group])
        ALERTS.labels(first.source, "resolved").inc(len(group))

    async def _notify(self, outcome: TriageOutcome, chat_id: str) -> None:
        for incident_id in outcome.new:
            await self.hooks.on_new(incident_id)
        for incident_id in dict.fromkeys(outcome.folded):
            await self.hooks.on_changed(incident_id)
        for incident_id in outcome.resolved:
            await self.hooks.on_resolved(incident_id)
        if outcome.stormed:
            await self.hooks.on_storm(chat_id)


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
