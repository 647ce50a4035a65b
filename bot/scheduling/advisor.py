"""The scheduled alert-hygiene report: one system job per configured chat, kept in line with the
`advisor:` section at start-up.

A system job is an ordinary `schedules` row (created by `system`, action
`{"type": "hygiene_report", "days": N}`), so the elected scheduler fires it once across
replicas and restarts, `/jobs` lists it and an admin may pause it (a paused job stays paused).
At start-up, under one advisory lock (replicas starting together agree):

- each configured chat without a live system report gets one, active at once;
- a live one whose rule, zone or window differs from the configuration is updated;
- live system reports of chats no longer configured (or of a disabled advisor) are deleted.

Configured chats: `advisor.chats`, or the alert chat (`LARKOPS_ALERT_CHAT_ID`) when unset.
The rule is a standard cron of fixed times (`workflows.schedule.cron`), in `LARKOPS_TIMEZONE`.

Usage::

    if await ensure_reports(settings, db):
        service.wake()
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from bot.config import Settings
from cards.texts import texts
from storage.database import Database
from storage.models import Schedule
from storage.schedules import LIVE
from workflows.schedule.compiler import cron_of, next_runs
from workflows.schedule.cron import calendar_of_cron
from workflows.schedule.spec import to_json

SYSTEM = "system"
KIND = "hygiene_report"


def configured_chats(settings: Settings) -> tuple[str, ...]:
    config = settings.advisor
    if not config.enabled:
        return ()
    if config.chats is not None:
        return tuple(dict.fromkeys(config.chats))
    return (settings.alert_chat_id,) if settings.alert_chat_id else ()


async def ensure_reports(settings: Settings, db: Database) -> bool:
    """Make the system report jobs match the configuration; True when anything changed."""
    config = settings.advisor
    chats = configured_chats(settings)
    spec = calendar_of_cron(config.cron, settings.timezone)
    wanted: dict[str, Any] = {
        "timezone": settings.timezone,
        "kind": spec.kind,
        "spec": to_json(spec),
        "cron": cron_of(spec),
        "action": {"type": KIND, "days": config.days},
        "task": texts(settings.language)("report.job_task", days=config.days),
    }
    upcoming = next_runs(spec, datetime.now(UTC), 1)
    changed = False
    async with db.session() as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('larkops:advisor'))"))
        rows = await session.scalars(
            select(Schedule)
            .where(
                Schedule.created_by == SYSTEM,
                Schedule.status.in_(LIVE),
                Schedule.action["type"].astext == KIND,
            )
            .order_by(Schedule.id)
        )
        kept: set[str] = set()
        for row in rows.all():
            if row.chat_id not in chats or row.chat_id in kept:
                row.status = "deleted"
                changed = True
                continue
            kept.add(row.chat_id)
            if any(getattr(row, name) != value for name, value in wanted.items()):
                for name, value in wanted.items():
                    setattr(row, name, value)
                row.next_run_at = upcoming[0] if upcoming else None
                changed = True
        for chat_id in chats:
            if chat_id in kept:
                continue
            session.add(
                Schedule(
                    chat_id=chat_id,
                    created_by=SYSTEM,
                    source_text=f"advisor: {config.cron}",
                    status="active",
                    next_run_at=upcoming[0] if upcoming else None,
                    confirmed_by=SYSTEM,
                    confirmed_at=datetime.now(UTC),
                    **wanted,
                )
            )
            changed = True
    return changed
