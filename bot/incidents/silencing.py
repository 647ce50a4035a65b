"""Asking for a silence, in one place: `/silence` and the alert-hygiene report's silence
suggestion both come here, so the same rule decides when another approver must confirm
(`workflows.silences.needs_confirmation`: a silence of every alert, or one over 24 h), the
same gate waits for them, and the same card shows the request, what became of it, and its
expiry (the sweep updates the card when nobody confirmed in time).

Usage::

    silencing = Silencing(settings, db, signing_key)
    asked = await silencing.ask(chat_id="oc_1", matcher="{}", terms=[],
                                duration=timedelta(hours=2), reason="", by="ou_bob")
    if asked.gate is not None:      # waits for another approver (the card has its buttons)
        message_id = await post(silencing.card(asked.silence, say, asked.gate))
        await silencing.shown(asked.silence, message_id)
    clicked = await silencing.decided(run_id, "oc_1", verdict, "approve", by="ou_carol")
    await expire(db, api, settings)  # the sweep: expired requests' cards say so

What a click on a request's card comes to is decided here too (`Silencing.decided`): the
chat's commands and buttons get rows and codes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.lark.api import LarkApi
from bot.logs import get_logger
from bot.roles import gate_policy
from cards.gates import gate_buttons
from cards.lists import silence_request_card
from cards.texts import Texts, texts
from cards.views import PendingSilenceView, SilenceRequestView
from storage import silences
from storage.database import Database
from storage.models import Approval, Silence
from workflows import gates
from workflows.approvers import GatePolicy
from workflows.gates import Decision, Refusal, Verdict
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


# what a click on a request's card came to: confirmed or rejected now; `unknown` (no request
# of this chat), `late` (the request expired: the card says so), `refused` (the gates refused
# the click: `Clicked.refusal` says why), `taken` (decided by someone else first)
ClickOutcome = Literal["confirmed", "rejected", "unknown", "late", "refused", "taken"]


@dataclass(frozen=True)
class Clicked:
    """A request's card clicked: what it came to, the request as it stands, and the gates'
    refusal when there is one."""

    outcome: ClickOutcome
    silence: Silence | None = None
    refusal: Refusal | None = None


class Silencing:
    """The chat's silences, bound to the database and the settings: what `/silence`,
    `/silences`, `/unsilence` and the buttons of a request's card call."""

    def __init__(self, settings: Settings, db: Database, signing_key: bytes) -> None:
        self.settings = settings
        self.db = db
        self.signing_key = signing_key

    async def ask(
        self,
        *,
        chat_id: str,
        matcher: str,
        terms: Matchers,
        duration: timedelta,
        reason: str,
        by: str,
    ) -> Asked:
        """Make the silence: in force now, or (when it needs confirmation) a pending request
        with its confirmation gate. Audited (`silence.created` / `silence.requested`)."""
        why = needs_confirmation(terms, duration)
        row = await silences.create(
            self.db,
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
            self.db,
            gate_rules(self.settings),
            run_id=str(row.run_id),
            incident_id=None,
            chat_id=chat_id,
            gate=silences.GATE,
            token=str(row.id),
            required=1,
            requester=by,
        )
        return Asked(row, gate)

    def card(self, row: Silence, say: Texts, gate: Approval | None = None) -> dict[str, Any]:
        """A request's card; with `gate`, the gate's signed Confirm / Reject buttons."""
        buttons = gate_buttons(gate, self.signing_key) if gate is not None else None
        return request_card(row, self.settings, say, buttons)

    async def shown(self, row: Silence, message_id: str) -> None:
        """Remember the message that shows the request's card (the sweep updates it)."""
        if row.run_id is not None and message_id:
            await silences.remember_card(self.db, row.run_id, message_id)

    async def of_chat(self, chat_id: str) -> tuple[Sequence[Silence], list[PendingSilenceView]]:
        """The chat's silences in force, and its requests still waiting (for `/silences`)."""
        rows = await silences.active(self.db, chat_id)
        waiting = await silences.pending(self.db, chat_id)
        return rows, pending_views(waiting, self.settings)

    async def end(self, silence_id: int, chat_id: str, *, by: str) -> Silence | None:
        """End a silence of the chat early; None when it is not in force there."""
        return await silences.end(self.db, silence_id, chat_id, by=by)

    async def decided(
        self, run_id: str, chat_id: str, verdict: Verdict, decision: Decision, *, by: str
    ) -> Clicked:
        """What a Confirm / Reject click on a request's card comes to, once the gates gave
        their verdict: a late click expires the request at once (its card says 已过期)."""
        row = await silences.by_run(self.db, run_id)
        if row is None or row.chat_id != chat_id:
            return Clicked("unknown")
        late = verdict.refusal == "expired" or (
            verdict.refusal == "stale"
            and verdict.gate is not None
            and verdict.gate.status == "expired"
        )
        if late or row.status == "expired":
            await silences.expire_requests(self.db, timedelta(0), only=row.id)
            return Clicked("late", await silences.get(self.db, row.id) or row)
        if verdict.refusal is not None:
            return Clicked("refused", row, verdict.refusal)
        approve = decision == "approve"
        decided = await silences.decide_request(self.db, row.id, approve=approve, by=by)
        if decided is None:
            return Clicked("taken", row)
        return Clicked("confirmed" if approve else "rejected", decided)
