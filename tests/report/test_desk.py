"""The report desk: who may apply a suggestion, which windows `/report` accepts, and secrets in
what the report shows (job errors, alert names) masked — on the real Postgres."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.commands.report import hours_of
from bot.config import Settings, load_settings
from bot.reports import (
    Clicker,
    ReportConfirm,
    ReportDesk,
    ReportRefused,
    ReportSuggest,
    confirm_payload,
)
from bot.roles import AccessControl, decider, gate_policy
from storage.coordination import MemoryCoordination
from storage.database import Database
from storage.models import IncidentEvent, Schedule, ScheduleRun
from tests.report.seed import CHAT, seed_week
from tests.unit.test_cards import shown


@pytest.mark.parametrize(
    ("args", "hours"),
    [("", 168), ("7d", 168), ("24h", 24), ("30d", 720), ("720h", 720), (" 2D ", 48)],
)
def test_windows_it_reads(args: str, hours: int) -> None:
    assert hours_of(args) == hours


@pytest.mark.parametrize("args", ["31d", "0h", "721h", "7 d", "week", "-1d", "1w"])
def test_windows_it_refuses(args: str) -> None:
    assert hours_of(args) is None


async def test_who_may_apply(tmp_path: Path) -> None:
    """The report's suggestions are applied by the chat's approvers, as gates are decided."""

    async def may_apply(settings: Settings, chat: str, who: str) -> bool:
        access = await AccessControl(settings, None).resolve(who, chat, lookups=False)
        return gate_policy(settings).approves(decider(access.roles, who), chat)

    open_door = load_settings(home=str(tmp_path))
    assert await may_apply(open_door, "oc_ops", "ou_anyone")  # nobody configured: like gates
    settings = load_settings(
        home=str(tmp_path),
        approvers=["ou_bob"],
        admins=["ou_root"],
        incidents={"approvers_by_chat": {"oc_ops": ["ou_carol"]}},
    )
    assert [
        await may_apply(settings, "oc_ops", who) for who in ("ou_bob", "ou_carol", "ou_root")
    ] == [
        True,
        True,
        True,
    ]
    assert not await may_apply(settings, "oc_ops", "ou_alice")
    assert not await may_apply(settings, "oc_other", "ou_carol")  # an approver of another chat only


async def test_secrets_in_what_it_shows_are_masked(migrated_db: Database, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    await seed_week(migrated_db, now - timedelta(days=7) + timedelta(hours=1))
    async with migrated_db.session() as session:
        job = Schedule(
            chat_id=CHAT,
            created_by="ou_alice",
            source_text="x",
            task="check https://ops:hunter2hunter2@db.internal/health",
            timezone="UTC",
            kind="cron",
            spec={},
            status="active",
        )
        session.add(job)
        await session.flush()
        session.add(
            ScheduleRun(
                schedule_id=job.id,
                fire_time=now - timedelta(hours=2),
                status="failed",
                error="401 with api_key=sk-live-0123456789abcdef0123",
            )
        )
    desk = ReportDesk(
        load_settings(home=str(tmp_path)), migrated_db, b"k" * 32, MemoryCoordination()
    )
    text = shown(await desk.report(CHAT, 168))
    assert "db.internal" in text
    assert "hunter2hunter2" not in text
    assert "sk-live-0123456789abcdef0123" not in text


def _confirmation(chat_id: str = CHAT, **params: str | int) -> ReportConfirm:
    suggestion = ReportSuggest(
        chat_id=chat_id,
        hours=168,
        kind="dedupe",
        fingerprint="fp-noisy",
        alertname="NoisyProbe",
        reason="noisy",
        weight=3,
        params=dict(params) or {"minutes": 60},
    )
    return confirm_payload(suggestion)


async def test_a_confirmation_counts_once_in_its_chat_in_time(
    migrated_db: Database, tmp_path: Path
) -> None:
    """The report desk decides whether a Confirm counts: its own chat, an approver there (anyone
    when none is configured), before it expires, once; each refusal has its code and is audited
    with its reason. One whose parameters do not read may be confirmed again."""
    desk = ReportDesk(
        load_settings(home=str(tmp_path)), migrated_db, b"k" * 32, MemoryCoordination()
    )
    here = Clicker(CHAT, "ou_bob", frozenset({"viewer"}))

    async def refusal(payload: ReportConfirm, who: Clicker = here) -> str:
        with pytest.raises(ReportRefused) as refused:
            await desk.confirm(payload, who, "trace-1")
        return refused.value.code

    payload = _confirmation()
    assert await refusal(payload, Clicker("oc_elsewhere", "ou_bob", frozenset())) == "forged"
    late = payload.model_copy(update={"exp": int(time.time()) - 1})
    assert await refusal(late) == "expired"
    assert (await desk.confirm(payload, here, "trace-1")).silence_id is None
    assert await refusal(payload) == "done_already"

    unreadable = _confirmation(minutes=0)
    with pytest.raises(ValueError, match="out of range"):
        await desk.confirm(unreadable, here, "trace-1")
    with pytest.raises(ValueError, match="out of range"):  # not "done already": it did nothing
        await desk.confirm(unreadable, here, "trace-1")

    async with migrated_db.session() as session:
        rows = await session.execute(
            select(IncidentEvent.message, IncidentEvent.data["reason"].astext)
            .where(IncidentEvent.kind == "click.refused")
            .order_by(IncidentEvent.id)
        )
        audited = [tuple(row) for row in rows]
    reasons = ["forged chat", "expired", "already applied"]
    assert audited == [(reason, reason) for reason in reasons]


async def test_only_the_chats_approvers_may_confirm(migrated_db: Database, tmp_path: Path) -> None:
    settings = load_settings(home=str(tmp_path), approvers=["ou_alice"])
    desk = ReportDesk(settings, migrated_db, b"k" * 32, MemoryCoordination())
    with pytest.raises(ReportRefused) as refused:
        await desk.admit(_confirmation(), Clicker(CHAT, "ou_bob", frozenset({"operator"})), None)
    assert refused.value.code == "not_approver"
    await desk.admit(_confirmation(), Clicker(CHAT, "ou_alice", frozenset({"approver"})), None)
