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

from bot.config import Settings
from cards.texts import texts
from storage import schedules
from storage.database import Database
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
    return await schedules.reconcile_system(
        db,
        kind=KIND,
        chats=chats,
        wanted=wanted,
        next_run_at=upcoming[0] if upcoming else None,
        source_text=f"advisor: {config.cron}",
        by=SYSTEM,
    )
