"""Shows incidents in Lark: one card per incident, rebuilt from the stored state every time.

The card is a projection of the database (incident, latest diagnosis, proposal, gate,
execution, verification, escalation), so any replica can redraw it and a replayed step draws
the same card. The first `show` sends it (idempotency key per incident), later ones patch it
in place through the `CardPatcher` (≤ 1 patch per card per second, fewer for each card when
many refresh at once). Storm incidents share one summary card per chat.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.lark.api import LarkApi, LarkApiError, idempotency_key
from bot.lark.patcher import CardPatcher
from bot.logs import get_logger
from bot.oncall.roster import Roster
from cards.council import council_view
from cards.gates import gate_buttons
from cards.incident import escalation_cause, incident_card
from cards.lists import storm_card
from cards.markup import calls, said, spoken
from cards.paging import ack_value, war_room_value
from cards.texts import texts
from cards.views import (
    DiagnosisView,
    EscalationView,
    Evidence,
    ExecutionView,
    GateStatus,
    GateView,
    Hypothesis,
    IncidentView,
    PageLine,
    PagingView,
    ProposalView,
    SeenBefore,
    StormView,
    VerificationView,
)
from storage import incidents, war_rooms
from storage.approvals import approvers_of
from storage.database import Database
from storage.incident_cards import CardRows, card_rows
from storage.models import Incident, Page

STORM_SPAN = timedelta(hours=1)

log = get_logger(__name__)


class LarkPresenter:
    """Draws incident cards in Lark (the workflow talks to it through `WorkflowPresenter`)."""

    def __init__(
        self,
        db: Database,
        api: LarkApi,
        patcher: CardPatcher,
        settings: Settings,
        signing_key: bytes,
        roster: Roster | None = None,
    ) -> None:
        self.db = db
        self.roster = roster  # who an escalation calls on (None: the chat's approvers)
        self.api = api
        self.patcher = patcher
        self.settings = settings
        self.key = signing_key
        self.say = texts(settings.language)
        self.zone = ZoneInfo(settings.timezone)
        self._storm_cards: dict[tuple[str, int], str] = {}
        self._cards: dict[int, str] = {}  # incident id -> its card's message id (never changes)
        # after an escalation's message: page again if the paging had stopped (`Pager.escalated`)
        self.paging: Callable[[int], Awaitable[object]] | None = None

    async def show(self, incident_id: int, *, wait: bool = False) -> None:
        """Send the card, or queue an update of it; `wait`: until the update reached Lark
        (the workflow's steps wait, see `WorkflowPresenter`)."""
        known = self._cards.get(incident_id)
        if known is not None:  # the common case (alerts folding in): no query until it is drawn
            await self._patch(known, incident_id, wait)
            return
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None or not incident.chat_id:
            return
        if incident.storm and incident.card_message_id is None:
            await self.storm(incident.chat_id)
            return
        if incident.card_message_id:
            self._cards[incident_id] = incident.card_message_id
            await self._patch(incident.card_message_id, incident_id, wait)
            return
        await self._send(incident)

    async def _send(self, incident: Incident, replacing: str = "") -> None:
        """Send the incident's card (`replacing`: the card Lark will no longer update)."""
        assert incident.chat_id
        card = await self.render(incident)
        key = idempotency_key(
            "incident-card", str(incident.id), *([replacing] if replacing else [])
        )
        message_id = await self.api.send_card(incident.chat_id, card, uuid=key)
        await incidents.update_incident(self.db, incident.id, card_message_id=message_id)
        self._cards[incident.id] = message_id
        data = {"message_id": message_id, **({"replaces": replacing} if replacing else {})}
        await incidents.record_event(self.db, incident.id, "card.sent", data=data)

    async def _replace(self, gone: str, incident_id: int) -> None:
        """Lark will never update the incident's card `gone` again (someone recalled it, or it
        was sent more than 14 days ago): a new card takes its place, so the incident is not
        left without one (a war room's card: `_replace_room_card`)."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None or not incident.chat_id:
            return
        if incident.card_message_id != gone:  # another replica replaced it: show that one
            if incident.card_message_id:
                self._cards[incident_id] = incident.card_message_id
                await self._patch(incident.card_message_id, incident_id, False)
            return
        await self._send(incident, replacing=gone)

    async def _war_room(self, rows: CardRows, card: dict[str, Any]) -> None:
        """The same card in the incident's war room, when it has one (`bot.oncall.war_room`),
        and, once the incident is resolved, its outcome said back in the alert chat.

        Done as the alert chat's card is drawn, from the rows it was drawn from: a storm's
        refreshes (the same incidents shown again and again) cost no query of their own, and
        the war room's card follows at the pace of the alert chat's. It is queued before the
        alert chat's card goes out, so a step waiting for that card ends with both shown."""
        room = rows.war_room
        if room is None or not room.card_message_id:
            return

        async def drawn() -> dict[str, Any]:
            return card

        gone, chat_id = room.card_message_id, room.chat_id

        async def lost() -> None:  # recalled, or sent 14 days ago: a new card in the room
            if chat_id:
                await self._replace_room_card(rows.incident.id, chat_id, gone, card)

        self.patcher.update(gone, drawn, lost)
        incident = rows.incident
        if incident.status != "resolved" or room.summary_message_id is not None:
            return
        if await war_rooms.claim_summary(self.db, incident.id):  # once, whichever replica
            await self._summary(incident)

    async def _replace_room_card(
        self, incident_id: int, chat_id: str, gone: str, card: dict[str, Any]
    ) -> None:
        """Lark will never update the war room's card `gone` again: the card as it is now goes
        to the room as a new message (the same one from every replica: its `uuid` names the
        card it replaces), pinned in its place, and the room's later updates go to it."""
        key = idempotency_key("war-room-card", str(incident_id), gone)
        message_id = await self.api.send_card(chat_id, card, uuid=key)
        if not await war_rooms.card_replaced(self.db, incident_id, gone, message_id):
            return
        data = {"message_id": message_id, "replaces": gone, "chat_id": chat_id}
        await incidents.record_event(self.db, incident_id, "warroom.card_sent", data=data)
        try:
            await self.api.pin(message_id)
        except LarkApiError as exc:
            log.warning("warroom.pin_refused", code=exc.code, msg=exc.msg[:200])

    async def _summary(self, incident: Incident) -> None:
        """The war room's outcome, said back in the alert chat."""
        ended = incident.resolved_at or incident.updated_at
        minutes = max(round((ended - incident.created_at).total_seconds() / 60), 1)
        acked = incident.acknowledged_by
        text = self.say(
            "warroom.summary",
            id=incident.id,
            title=said(incident.title, 100),
            minutes=minutes,
            acked=calls([acked]) if acked else self.say("oncall.nobody"),
        )
        key = idempotency_key("war-room-summary", str(incident.id))
        content = {"text": text}
        if incident.card_message_id and incident.chat_id:
            sent = await self.api.reply(
                incident.card_message_id, "text", content, uuid=key, chat_id=incident.chat_id
            )
        elif incident.chat_id:
            sent = await self.api.send(incident.chat_id, "text", content, uuid=key)
        else:
            return
        await war_rooms.summarised(self.db, incident.id, sent)

    async def _patch(self, message_id: str, incident_id: int, wait: bool) -> None:
        def render() -> Awaitable[dict[str, Any] | None]:
            return self._current(incident_id)

        def lost() -> Awaitable[None]:
            return self._replace(message_id, incident_id)

        if wait:
            await self.patcher.update_now(message_id, render, lost=lost)
        else:
            self.patcher.update(message_id, render, lost)

    async def _current(self, incident_id: int) -> dict[str, Any] | None:
        """The card as the stored state is now (read when the patch is sent)."""
        rows = await self._rows(incident_id)
        if rows is None:
            return None
        card = incident_card(self._view(rows.incident, rows), self.say, self.zone)
        await self._war_room(rows, card)
        return card

    async def render(self, incident: Incident) -> dict[str, Any]:
        return incident_card(await self.view(incident), self.say, self.zone)

    async def view(self, incident: Incident) -> IncidentView:
        return self._view(incident, await self._rows(incident.id))

    async def _rows(self, incident_id: int) -> CardRows | None:
        """What the card shows, in one statement (`storage.incident_cards`)."""
        return await card_rows(self.db, incident_id, paging=bool(self.settings.escalation.policies))

    def _view(self, incident: Incident, rows: CardRows | None) -> IncidentView:
        diagnosis = rows.diagnosis if rows else None
        proposal = rows.proposal if rows else None
        gate = rows.gate if rows else None
        execution = rows.execution if rows else None
        verified = rows.verified if rows else None
        decided = rows.decided if rows else None
        proposed = rows.proposed if rows else None
        named = proposed.data.get(f"title_{self.say.language}") if proposed else None
        call = tuple(str(part) for part in (decided.data.get("call") or [])) if decided else ()
        return IncidentView(
            id=incident.id,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            service=incident.service,
            source=incident.source,
            labels=dict(incident.labels),
            summary=incident.summary,
            alert_count=incident.alert_count,
            first_seen=incident.first_seen_at,
            last_seen=incident.last_seen_at,
            diagnosis=_diagnosis(diagnosis) if diagnosis is not None else None,
            proposal=_proposal(proposal, call, str(named or "")) if proposal is not None else None,
            gate=self._gate(gate, incident) if gate is not None else None,
            execution=_execution(execution) if execution is not None else None,
            verification=VerificationView(
                ok=bool(verified.data.get("ok")),
                summary=verified.message,
                finding=dict(verified.data.get("finding") or {}),
            )
            if verified is not None
            else None,
            escalation=_escalation(incident, incident.escalation_reason or "", self.oncall())
            if incident.status == "escalated"
            else None,
            resolved_note=incident.resolved_note,
            resolved_by=incident.resolved_by,
            paging=self._paging(incident, rows) if self.settings.escalation.policies else None,
            postmortem_url=self._postmortem(incident, rows),
        )

    def _postmortem(self, incident: Incident, rows: CardRows | None) -> str | None:
        """The link to the incident's postmortem draft, once it has one."""
        if incident.status != "resolved" or rows is None:
            return None
        found = rows.postmortem
        if found is None or not found.document_id:
            return None
        return self.settings.postmortems.url.format(document_id=found.document_id)

    def _paging(self, incident: Incident, rows: CardRows | None) -> PagingView | None:
        """The incident's paging steps, and its Ack button while it is not acknowledged."""
        if rows is None or not rows.pages:
            return None
        over = incident.status in incidents.FINAL
        open_ = incidents.awaits_ack(incident)
        roomless = not over and rows.war_room is None
        return PagingView(
            lines=tuple(_page_line(row, settled=not open_) for row in rows.pages),
            acknowledged_by=incident.acknowledged_by,
            acknowledged_at=incident.acknowledged_at,
            ack_value=ack_value(incident.id, self.key) if open_ else None,
            before_escalation=open_ and incident.acknowledged_at is not None,
            room_value=war_room_value(incident.id, self.key) if roomless else None,
        )

    def oncall(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.settings.approvers, *self.settings.admins]))

    def _gate(self, row: Any, incident: Incident) -> GateView:
        shown: dict[str, GateStatus] = {
            "pending": "pending",
            "approved": "approved",
            "rejected": "rejected",
            "expired": "expired",
            # the incident ended (its alert recovered, someone resolved or escalated it)
            # while the gate waited: closed without a decision, and without an expiry time
            "cancelled": "cancelled",
        }
        status: GateStatus = shown.get(row.status, "cancelled")
        approve = reject = None
        if row.status == "pending":
            buttons = gate_buttons(row, self.key)
            approve, reject = buttons["approve_value"], buttons["reject_value"]
        approvers = approvers_of(row)
        if row.status == "rejected" and row.decided_by:
            approvers = (row.decided_by,)
        return GateView(
            gate=row.gate,
            status=status,
            expires_at=row.expires_at,
            required=row.required_approvals,
            approvers=approvers,
            decided_at=row.decided_at,
            approve_value=approve,
            reject_value=reject,
        )

    def _cause(self, incident: Incident, reason: str) -> str:
        """The escalation's cause in the chat's words (plain text: no mention markup)."""
        return spoken(escalation_cause(_escalation(incident, reason, ()), self.say))

    async def escalate(self, incident_id: int, reason: str) -> None:
        """Call on people for an escalated incident: whoever the rotation has on call now
        (`Roster.called_on`), else (nobody on call, said so, or no on-call configured) the
        chat's approvers. Who was called stays with the escalation: the card names them."""
        incident = await incidents.get_incident(self.db, incident_id)
        if incident is None or not incident.chat_id:
            return
        called = None
        if self.roster is not None:
            called = await self.roster.called_on(incident.chat_id, incident.severity)
        people = called or self.oncall()
        nobody = called == ()
        stored = {**(incident.escalation or {}), "called": list(people), "nobody": nobody}
        await incidents.update_incident(self.db, incident_id, escalation=stored)
        await self.show(incident_id)
        mentions = calls(people)
        cause = self._cause(incident, reason)
        key = "incident.escalated_nobody" if nobody else "incident.escalated"
        text = self.say(key, id=incident_id, reason=cause[:500])
        content = {"text": f"{mentions} {text}".strip()}
        key = idempotency_key("incident-escalation", str(incident_id))
        if incident.card_message_id:
            await self.api.reply(
                incident.card_message_id, "text", content, uuid=key, chat_id=incident.chat_id
            )
        else:
            await self.api.send(incident.chat_id, "text", content, uuid=key)
        await incidents.record_event(
            self.db,
            incident_id,
            "message.escalation",
            data={"mentions": list(people), "nobody_on_call": nobody},
        )
        if self.paging is not None:  # its paging starts again if it had stopped
            await self.paging(incident_id)

    async def caught(self, chat_id: str, silence_id: int, title: str) -> None:
        """One line in the chat: a critical alert was held back by silence `silence_id`; once
        an hour per silence and alert (a repeat within the hour is the same message to Lark)."""
        text = self.say("silence.caught", id=silence_id, title=said(title, 120))
        hour = str(int(time.time() // 3600))
        key = idempotency_key("silence-caught", chat_id, str(silence_id), title, hour)
        await self.api.send(chat_id, "text", {"text": text}, uuid=key)

    async def storm(self, chat_id: str) -> None:
        """Send or update the chat's storm card (one per chat per hour)."""
        bucket = int(time.time() // STORM_SPAN.total_seconds())
        message_id = self._storm_cards.get((chat_id, bucket))
        if message_id is not None:
            self.patcher.update(message_id, lambda: self._storm_card(chat_id))
            return
        card = await self._storm_card(chat_id)
        if card is None:
            return
        key = idempotency_key("storm-card", chat_id, str(bucket))
        self._storm_cards[(chat_id, bucket)] = await self.api.send_card(chat_id, card, uuid=key)

    async def _storm_card(self, chat_id: str) -> dict[str, Any] | None:
        since = datetime.now(UTC) - STORM_SPAN
        rows = await incidents.storm_since(self.db, chat_id, since)
        if not rows:
            return None
        view = StormView(
            window_seconds=int(STORM_SPAN.total_seconds()),
            total=sum(r.alert_count for r in rows),
            groups=tuple((r.fingerprint, r.title, r.alert_count) for r in rows),
            incident_ids={r.fingerprint: r.id for r in rows},
        )
        return storm_card(view, self.say, self.zone)


def _escalation(incident: Incident, reason: str, mentions: tuple[str, ...]) -> EscalationView:
    """The incident's escalation: its stored cause code and values, the sentence, and whom it
    called on (`mentions` until the escalation's message stored them)."""
    stored = incident.escalation or {}
    called = stored.get("called")
    return EscalationView(
        reason=reason,
        mentions=tuple(str(p) for p in called) if isinstance(called, list) else mentions,
        nobody_on_call=bool(stored.get("nobody")),
        finding=dict(stored.get("finding") or {}),
        cause=str(stored.get("code", "")),
        values={str(k): str(v) for k, v in (stored.get("values") or {}).items()},
    )


def _page_line(row: Page, *, settled: bool) -> PageLine:
    """One paging step as the card shows it (a step still waiting for an incident that was
    acknowledged or resolved will not fire: shown as cancelled)."""
    outcome = dict(row.outcome or {})
    refused = tuple(
        (str(r.get("channel", "")), str(r.get("reason", "")))
        for r in outcome.get("refused") or []
        if isinstance(r, dict)
    )
    channel = outcome.get("channel")
    return PageLine(
        step=row.step,
        level=row.level,
        status="cancelled" if settled and row.status == "pending" else row.status,
        due_at=row.due_at,
        fired_at=row.fired_at,
        channel=str(channel) if channel else None,
        people=tuple(str(p) for p in outcome.get("people") or []),
        refused=refused,
    )


def _diagnosis(row: Any) -> DiagnosisView:
    details = dict(row.details or {})
    return DiagnosisView(
        summary=row.summary,
        hypotheses=tuple(Hypothesis(str(h[0]), float(h[1])) for h in row.hypotheses if len(h) == 2),
        evidence=tuple(Evidence(str(e[0]), str(e[1])) for e in row.evidence if len(e) == 2),
        next_checks=tuple(str(c) for c in row.next_checks),
        provider=row.provider,
        partial=row.partial,
        note=str(details.get("partial_reason") or details.get("fallback") or ""),
        codes=dict(details.get("codes") or {}),
        council=council_view(details.get("council")),
        seen_before=tuple(
            SeenBefore(
                incident_id=int(item.get("incident_id", 0)),
                title=str(item.get("title", "")),
                similarity=float(item.get("similarity", 0.0)),
                fix=item.get("fix"),
                outcome=item.get("outcome"),
            )
            for item in details.get("similar") or []
            if isinstance(item, dict)
        ),
    )


def _proposal(row: Any, call: tuple[str, ...] = (), title: str = "") -> ProposalView:
    return ProposalView(
        call=call,
        plugin=row.plugin,
        title=title or row.rationale or row.plugin,
        params=dict(row.params),
        steps=(),
        risk=row.risk,
        decision=row.decision,
        reason=row.decision_reason or "",
    )


def _execution(row: Any) -> ExecutionView:
    return ExecutionView(
        plugin=row.plugin,
        ok=row.status == "succeeded",
        summary=row.summary or ("…" if row.status == "running" else ""),
        output=row.output or "",
        dry_run=row.dry_run,
        finished_at=row.finished_at,
        finding=dict((row.data or {}).get("finding") or {}),
    )


class WorkflowPresenter:
    """The `Presenter` the incident workflow talks to: a step's card update has reached Lark
    before the step ends (and is checkpointed), so a crash in between repeats the step and
    the update rather than leaving the card behind the workflow (a gate without buttons, a
    resolved incident shown as still working). Except the "fix running" view: it is drawn
    between claiming the fix and running it, and waiting there would widen the window in
    which a crash leaves a claimed fix that never ran (escalated as "outcome unknown")."""

    def __init__(self, presenter: LarkPresenter) -> None:
        self.presenter = presenter

    async def show(self, incident_id: int) -> None:
        incident = await incidents.get_incident(self.presenter.db, incident_id)
        wait = incident is not None and incident.status != "remediating"
        await self.presenter.show(incident_id, wait=wait)

    async def escalate(self, incident_id: int, reason: str) -> None:
        await self.presenter.escalate(incident_id, reason)
