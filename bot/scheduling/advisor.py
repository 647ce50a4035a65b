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
The rule is a standard cron of fixed times (`calendar_of_cron`), in `LARKOPS_TIMEZONE`.

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
from workflows.schedule.spec import (
    WEEKDAYS,
    Calendar,
    Daily,
    SpecError,
    TimeOfDay,
    Weekly,
    to_json,
)

SYSTEM = "system"
KIND = "hygiene_report"
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def calendar_of_cron(expression: str, timezone: str) -> Calendar:
    """`M H * * DOW` (comma lists of minutes and hours; DOW `*`, numbers with Sunday 0 or 7,
    names, ranges) as a calendar spec; SpecError for anything else."""
    fields = expression.split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        raise SpecError("the advisor's cron must look like 'MIN HOUR * * WEEKDAYS' (0 10 * * 1)")
    minutes, hours = (_numbers(field, 59) for field in fields[:2])
    times = tuple(sorted({TimeOfDay(h, m) for h in hours for m in minutes}))
    days = Daily() if fields[4] == "*" else Weekly(_weekdays(fields[4]))
    return Calendar(times, days, timezone)


def _numbers(field: str, most: int) -> list[int]:
    values = [part for part in field.split(",") if part]
    if not values or not all(part.isdigit() and int(part) <= most for part in values):
        raise SpecError(f"not a list of fixed numbers: {field!r}")
    return [int(part) for part in values]


def _weekday(token: str) -> int:
    lowered = token.strip().lower()[:3]
    if lowered in _CRON_DAYS:
        return _CRON_DAYS.index(lowered)
    if lowered.isdigit() and int(lowered) <= 7:
        return int(lowered) % 7
    raise SpecError(f"not a day of the week: {token!r}")


def _weekdays(field: str) -> tuple[str, ...]:
    found: set[str] = set()
    for part in field.split(","):
        first, _, last = part.partition("-")
        low = _weekday(first)
        high = _weekday(last) if last else low
        high = 7 if high == 0 and low > 0 else high
        if high < low:
            raise SpecError(f"not a range of days: {part!r}")
        found.update(_CRON_DAYS[day % 7] for day in range(low, high + 1))
    return tuple(day for day in WEEKDAYS if day in found)


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
