"""Asking for a silence, in one place: `/silence` and the alert-hygiene report's silence
suggestion both come here, so the same rule decides when another approver must confirm
(`workflows.silences.needs_confirmation`: a silence of every alert, or one over 24 h), the
same gate waits for them, and the same card shows the request, what became of it, and its
expiry (the sweep updates the card when nobody confirmed in time).

Usage::

    asked = await ask(db, settings, chat_id="oc_1", matcher="{}", terms=[],
                      duration=timedelta(hours=2), reason="", by="ou_bob")
    if asked.gate is not None:      # waits for another approver
        message_id = await post(request_card(asked.silence, settings, say, buttons))
        await shown(db, asked.silence, message_id)
    await expire(db, api, settings)  # the sweep: expired requests' cards say so
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.lark.api import LarkApi
from bot.logs import get_logger
from bot.roles import gate_policy
from cards.lists import silence_request_card
from cards.texts import Texts, texts
from cards.views import PendingSilenceView, SilenceRequestView
from storage import silences
from storage.database import Database
from storage.models import Approval, Silence
from workflows import gates
from workflows.approvers import GatePolicy
from workflows.silences import Matchers, needs_confirmation

log = get_logger(__name__)


@dataclass(frozen=True)
class Asked:
    """A silence asked for: in force at once (`gate` None), or a request whose `gate` waits
    for an approver other than the requester."""

    silence: Silence
    gate: Approval | None = None


def gate_rules(settings: Settings) -> GatePolicy:
    """The gate rules of a silence request: decided by an approver other than the requester,
    waiting as long as any pending request (LARKOPS_PENDING_TTL_HOURS)."""
    return replace(
        gate_policy(settings),
        ttl=timedelta(hours=settings.pending_ttl_hours),
        requester_may_approve=False,
    )


async def ask(
    db: Database,
    settings: Settings,
    *,
    chat_id: str,
    matcher: str,
    terms: Matchers,
    duration: timedelta,
    reason: str,
    by: str,
) -> Asked:
    """Make the silence: in force now, or (when it needs confirmation) a pending request with
    its confirmation gate. Audited (`silence.created` / `silence.requested`)."""
    why = needs_confirmation(terms, duration)
    row = await silences.create(
        db,
        chat_id=chat_id,
        matcher=matcher,
        terms=terms,
        reason=reason,
        by=by,
        duration=duration,
        confirm=bool(why),
    )
    if not why:
        return Asked(row)
    assert row.run_id is not None
    gate = await gates.open_gate(
        db,
        gate_rules(settings),
        run_id=str(row.run_id),
        incident_id=None,
        chat_id=chat_id,
        gate=silences.GATE,
        token=str(row.id),
        required=1,
        requester=by,
    )
    return Asked(row, gate)


def request_card(
    row: Silence,
    settings: Settings,
    say: Texts,
    buttons: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The request's card: waiting (with the gate's signed buttons), confirmed, rejected or
    expired."""
    terms = row.matchers.get("terms", [])
    length = row.ends_at - row.starts_at
    view = SilenceRequestView(
        id=row.id,
        matcher=row.matcher,
        duration=length_of(length),
        reason=row.reason,
        requested_by=row.created_by,
        why=tuple(needs_confirmation(terms, length)),
        status=row.status,
        until=row.ends_at,
        ttl_hours=max(1, round(settings.pending_ttl_hours)),
        decided_by=row.decided_by,
    )
    return silence_request_card(view, say, ZoneInfo(settings.timezone), buttons)


def pending_views(rows: Sequence[Silence], settings: Settings) -> list[PendingSilenceView]:
    """Requests still waiting, for `/silences`: who asked, and when each expires."""
    ttl = timedelta(hours=settings.pending_ttl_hours)
    return [
        PendingSilenceView(
            id=row.id,
            matcher=row.matcher,
            duration=length_of(row.ends_at - row.starts_at),
            requested_by=row.created_by,
            expires_at=row.created_at + ttl,
        )
        for row in rows
    ]


async def shown(db: Database, row: Silence, message_id: str) -> None:
    """Remember the message that shows the request's card (the sweep updates it)."""
    if row.run_id is not None and message_id:
        await silences.remember_card(db, row.run_id, message_id)


async def expire(db: Database, api: LarkApi, settings: Settings) -> list[int]:
    """Requests nobody confirmed within the pending time expire; each card that showed one
    is updated to say so (without its buttons). Their ids."""
    ttl = timedelta(hours=settings.pending_ttl_hours)
    expired = await silences.expire_requests(db, ttl)
    say = texts(settings.language)
    for row, message_id in await silences.cards_of(db, expired):
        try:
            await api.patch_card(message_id, request_card(row, settings, say))
        except Exception as exc:  # the card stays stale; the click still says 已过期
            log.warning("silence.card_update_failed", silence=row.id, error=str(exc)[:200])
    return expired


def length_of(length: timedelta) -> str:
    """A silence's length as /silence reads it (`2d`, `1h30m`)."""
    seconds = int(length.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = zip((days, hours, minutes, seconds), "dhms", strict=True)
    return "".join(f"{n}{unit}" for n, unit in units if n) or "0m"
