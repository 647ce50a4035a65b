"""The facts of an alert-hygiene report: one chat, one window `[since, until)`, three queries.

What each number means (every count is for the chat's incidents; an alert belongs to the chat of
the incident it was attached to, so alerts dropped by a silence are not counted):

- `alerts` / `firing`: alert notifications received in the window (firing and resolved / firing);
  `incidents`: incidents opened (created) in the window.
- per fingerprint (`FingerprintFacts`): its alerts and opened incidents as above, and of those
  incidents: `handled` (a person acknowledged it, resolved it by hand, or decided one of its
  gates), `auto_resolved` (closed by a resolved alert) and the median time from opening to that
  resolving alert, the median time open over all its resolved incidents, and how it repeated:
  each incident opened in the window is compared with the fingerprint's previous incident in the
  chat (which may have opened before the window):
  * a **flap** is an incident opened after the previous one had already resolved — the alert
    resolved and fired again;
  * a **stale repeat** is an incident opened while the previous one was still open: the dedupe
    window had passed since the previous one's last alert (its longest such gap is kept).
  A fingerprint is *flapping* when its flaps reach the rules' `flap_min` (workflows.hygiene).
- `mtta` / `mttr`: median and 90th percentile of opening → acknowledgement / opening → resolution
  over the incidents opened in the window that have one (None when none has).
- `approvals_expired`: gates (of incidents or `/run` actions of the chat) that timed out in the
  window; `auto_fixes*`: remediations run without a person (`executions.auto`) created in the
  window, and how many of them succeeded / failed.
- `failing_jobs`: the chat's schedules with failed runs fired in the window: how many, the last
  error and when.

Usage::

    facts = await hygiene_facts(db, "oc_ops", since, until)
    facts.mtta.median, facts.noisy[0].alertname, facts.auto_fix_rate
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

from storage.database import Database
from storage.models import Action, Alert, Approval, Execution, Incident, Schedule, ScheduleRun
from storage.noise import (
    FingerprintFacts,
    fingerprint_facts,
    fingerprints_query,
    number,
    percentile,
    seconds,
)

__all__ = ["FailingJob", "FingerprintFacts", "HygieneFacts", "Percentiles", "hygiene_facts"]
TOP = 5
MAX_JOBS = 10


@dataclass(frozen=True)
class Percentiles:
    """Seconds: the median and the 90th percentile over `count` incidents (None without any)."""

    median: float | None = None
    p90: float | None = None
    count: int = 0


@dataclass(frozen=True)
class FailingJob:
    schedule_id: int
    task: str
    failures: int
    last_error: str
    last_failed_at: datetime


@dataclass(frozen=True)
class HygieneFacts:
    """Everything the report says, as numbers."""

    chat_id: str
    since: datetime
    until: datetime
    alerts: int = 0
    firing: int = 0
    incidents: int = 0
    mtta: Percentiles = Percentiles()
    mttr: Percentiles = Percentiles()
    approvals_expired: int = 0
    auto_fixes: int = 0
    auto_fixes_ok: int = 0
    auto_fixes_failed: int = 0
    fingerprints: tuple[FingerprintFacts, ...] = ()  # noisiest first
    failing_jobs: tuple[FailingJob, ...] = ()

    @property
    def noisy(self) -> tuple[FingerprintFacts, ...]:
        """The top fingerprints by alerts, then incidents."""
        return self.fingerprints[:TOP]

    @property
    def auto_fix_rate(self) -> float | None:
        """Succeeded / finished automatic fixes (None when none finished)."""
        finished = self.auto_fixes_ok + self.auto_fixes_failed
        return self.auto_fixes_ok / finished if finished else None


async def hygiene_facts(
    db: Database, chat_id: str, since: datetime, until: datetime
) -> HygieneFacts:
    async with db.session() as session:
        summary = (await session.execute(_summary(chat_id, since, until))).one()
        rows = (await session.execute(fingerprints_query(chat_id, since, until))).all()
        jobs = (await session.execute(_jobs(chat_id, since, until))).all()
    return HygieneFacts(
        chat_id=chat_id,
        since=since,
        until=until,
        alerts=int(summary.alerts or 0),
        firing=int(summary.firing or 0),
        incidents=int(summary.incidents or 0),
        mtta=Percentiles(number(summary.ack_p50), number(summary.ack_p90), int(summary.acked)),
        mttr=Percentiles(number(summary.res_p50), number(summary.res_p90), int(summary.resolved)),
        approvals_expired=int(summary.expired or 0),
        auto_fixes=int(summary.auto or 0),
        auto_fixes_ok=int(summary.auto_ok or 0),
        auto_fixes_failed=int(summary.auto_failed or 0),
        fingerprints=tuple(fingerprint_facts(row) for row in rows),
        failing_jobs=tuple(
            FailingJob(int(r.id), str(r.task), int(r.failures), str(r.last_error or ""), r.last_at)
            for r in jobs
        ),
    )


def _summary(chat_id: str, since: datetime, until: datetime) -> Any:
    """One row: totals, MTTA/MTTR percentiles, expired gates and automatic fixes."""
    ack = seconds(Incident.acknowledged_at, Incident.created_at)
    res = seconds(Incident.resolved_at, Incident.created_at)
    alerts = (
        select(func.count().label("n"), func.count().filter(Alert.status == "firing").label("f"))
        .join(Incident, Incident.id == Alert.incident_id)
        .where(Incident.chat_id == chat_id, Alert.received_at >= since, Alert.received_at < until)
        .subquery()
    )
    closed = func.coalesce(Approval.decided_at, Approval.expires_at)
    expired = (
        select(func.count())
        .select_from(Approval)
        .outerjoin(Incident, Incident.id == Approval.incident_id)
        .outerjoin(Action, Action.run_id == Approval.run_id)
        .where(
            Approval.status == "expired",
            closed >= since,
            closed < until,
            func.coalesce(Incident.chat_id, Action.chat_id) == chat_id,
        )
        .scalar_subquery()
    )
    fixes = (
        select(
            func.count().label("n"),
            func.count().filter(Execution.status == "succeeded").label("ok"),
            func.count().filter(Execution.status == "failed").label("failed"),
        )
        .select_from(Execution)
        .outerjoin(Incident, Incident.id == Execution.incident_id)
        .outerjoin(Action, Action.run_id == Execution.run_id)
        .where(
            Execution.auto.is_(True),
            Execution.created_at >= since,
            Execution.created_at < until,
            func.coalesce(Incident.chat_id, Action.chat_id) == chat_id,
        )
        .subquery()
    )
    return (
        select(
            func.count(Incident.id).label("incidents"),
            percentile(0.5, ack).label("ack_p50"),
            percentile(0.9, ack).label("ack_p90"),
            func.count(Incident.acknowledged_at).label("acked"),
            percentile(0.5, res).label("res_p50"),
            percentile(0.9, res).label("res_p90"),
            func.count(Incident.resolved_at).label("resolved"),
            func.min(alerts.c.n).label("alerts"),
            func.min(alerts.c.f).label("firing"),
            expired.label("expired"),
            func.min(fixes.c.n).label("auto"),
            func.min(fixes.c.ok).label("auto_ok"),
            func.min(fixes.c.failed).label("auto_failed"),
        )
        .select_from(alerts.join(fixes, true()))
        .outerjoin(
            Incident,
            and_(
                Incident.chat_id == chat_id,
                Incident.created_at >= since,
                Incident.created_at < until,
            ),
        )
    )


def _jobs(chat_id: str, since: datetime, until: datetime) -> Any:
    """The chat's schedules with failed runs in the window, most failures first."""
    failures = func.count().label("failures")
    last_error = func.array_agg(
        aggregate_order_by(ScheduleRun.error, ScheduleRun.fire_time.desc()), type_=ARRAY(Text)
    )[1]
    return (
        select(
            Schedule.id,
            Schedule.task,
            failures,
            last_error.label("last_error"),
            func.max(ScheduleRun.fire_time).label("last_at"),
        )
        .join(ScheduleRun, ScheduleRun.schedule_id == Schedule.id)
        .where(
            Schedule.chat_id == chat_id,
            ScheduleRun.status == "failed",
            ScheduleRun.fire_time >= since,
            ScheduleRun.fire_time < until,
        )
        .group_by(Schedule.id, Schedule.task)
        .order_by(failures.desc(), Schedule.id)
        .limit(MAX_JOBS)
    )


@dataclass(frozen=True)
class ChatDigest:
    """A scheduled report job's figures: the chat's incidents first seen since a moment, by
    status, and its noisiest titles (title, alerts) — up to five, the noisiest first."""

    by_status: list[tuple[str, int]]
    noisiest: list[tuple[str, int]]


async def chat_digest(db: Database, chat_id: str, since: datetime) -> ChatDigest:
    recent = (Incident.chat_id == chat_id, Incident.first_seen_at >= since)
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Incident.status, func.count()).where(*recent).group_by(Incident.status)
            )
        ).all()
        top = (
            await session.execute(
                select(Incident.title, func.sum(Incident.alert_count))
                .where(*recent)
                .group_by(Incident.title)
                .order_by(func.sum(Incident.alert_count).desc())
                .limit(5)
            )
        ).all()
    return ChatDigest(
        [(str(status), int(count)) for status, count in rows],
        [(str(title), int(count or 0)) for title, count in top],
    )
