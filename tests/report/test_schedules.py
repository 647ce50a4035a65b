"""The weekly report's system jobs: one per configured chat, kept in line with `advisor:` at
start-up (idempotent, also when replicas start together), on the real Postgres; and the cron of
the configuration read as the scheduler's calendar (weekday names, never APScheduler numbers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.config import ConfigError, load_settings
from bot.scheduling.advisor import ensure_reports
from storage.database import Database
from workflows.schedule.compiler import next_runs
from workflows.schedule.cron import calendar_of_cron
from workflows.schedule.spec import Daily, SpecError, TimeOfDay, Weekly


async def jobs(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT chat_id, status, cron, action->>'days', timezone FROM schedules "
                "WHERE created_by = 'system' ORDER BY id"
            )
        )
        return [tuple(row) for row in rows]


async def test_one_job_per_chat_whatever_the_number_of_starts(
    migrated_db: Database, tmp_path: Path
) -> None:
    settings = load_settings(home=str(tmp_path), alert_chat_id="oc_alerts")
    assert await ensure_reports(settings, migrated_db) is True
    assert await jobs(migrated_db) == [("oc_alerts", "active", "0 10 * * 1", "7", "Asia/Shanghai")]
    assert await ensure_reports(settings, migrated_db) is False
    # replicas starting together agree on one job per chat
    both = load_settings(home=str(tmp_path), advisor={"chats": ["oc_a", "oc_b"]})
    await asyncio.gather(*(ensure_reports(both, migrated_db) for _ in range(4)))
    assert [(chat, status) for chat, status, *_ in await jobs(migrated_db)] == [
        ("oc_alerts", "deleted"),
        ("oc_a", "active"),
        ("oc_b", "active"),
    ]


async def test_the_configuration_wins_but_a_pause_stays(
    migrated_db: Database, tmp_path: Path
) -> None:
    first = load_settings(home=str(tmp_path), advisor={"chats": ["oc_a"]})
    await ensure_reports(first, migrated_db)
    async with migrated_db.engine.begin() as conn:
        await conn.execute(text("UPDATE schedules SET status = 'paused'"))
    changed = load_settings(
        home=str(tmp_path),
        timezone="UTC",
        advisor={"chats": ["oc_a"], "cron": "30 9 * * 5", "days": 14},
    )
    assert await ensure_reports(changed, migrated_db) is True
    assert await jobs(migrated_db) == [("oc_a", "paused", "30 9 * * 5", "14", "UTC")]
    off = load_settings(home=str(tmp_path), advisor={"chats": ["oc_a"], "enabled": False})
    await ensure_reports(off, migrated_db)
    assert [status for _, status, *_ in await jobs(migrated_db)] == ["deleted"]
    assert await ensure_reports(load_settings(home=str(tmp_path)), migrated_db) is False  # no chat


def test_the_cron_reads_as_weekday_names() -> None:
    monday = calendar_of_cron("0 10 * * 1", "Asia/Shanghai")
    assert (monday.times, monday.days) == ((TimeOfDay(10, 0),), Weekly(("mon",)))
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday
    fire = next_runs(monday, sunday, 1)[0]
    assert fire.isoformat() == "2026-11-23T10:00:00+08:00"  # Monday 10:00 in the bot's zone
    workdays = calendar_of_cron("30 9,18 * * mon-fri", "UTC")
    assert workdays.days == Weekly(("mon", "tue", "wed", "thu", "fri"))
    assert workdays.times == (TimeOfDay(9, 30), TimeOfDay(18, 30))
    assert calendar_of_cron("0 8 * * 5-7", "UTC").days == Weekly(("fri", "sat", "sun"))
    assert calendar_of_cron("0 8 * * *", "UTC").days == Daily()


@pytest.mark.parametrize(
    "cron", ["0 10 1 * *", "*/5 * * * *", "0 25 * * 1", "0 10 * * funday", "x"]
)
def test_other_crons_are_refused_at_start_up(cron: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError):
        calendar_of_cron(cron, "UTC")
    with pytest.raises(ConfigError, match="advisor"):
        load_settings(home=str(tmp_path), advisor={"cron": cron})


def test_rule_thresholds_are_configurable(tmp_path: Path) -> None:
    settings = load_settings(home=str(tmp_path), advisor={"rules": {"noisy_alerts": 5}})
    assert settings.advisor.rules.noisy_alerts == 5
    with pytest.raises(ConfigError, match="advisor"):
        load_settings(home=str(tmp_path), advisor={"rules": {"noisy": 5}})
