"""Shift changes said in the chat: who takes over, until when, and the open incidents handed over.

Each sweep looks, per schedule, for a change of hands in the last `RECENT` (the rotation's, an
override starting or ending); the first replica to record it (`storage.rotas.claim_handoff`,
unique per schedule and instant) posts it to the schedule's `chat` (else
`LARKOPS_ALERT_CHAT_ID`). A bot that was down longer than `RECENT` does not announce a shift that
began long ago.

    handoffs = Handoffs(settings, db, api, roster)
    await handoffs.sweep()
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.lark.api import LarkApi, idempotency_key
from bot.oncall.roster import Roster
from cards.markup import calls
from cards.paging import handed_over
from cards.texts import texts
from cards.views import IncidentRow
from storage import incidents, rotas
from storage.database import Database

RECENT = timedelta(minutes=10)
HANDED = 200  # unresolved incidents looked through for a hand-over (escalated ones first)


class Handoffs:
    def __init__(self, settings: Settings, db: Database, api: LarkApi, roster: Roster) -> None:
        self.settings = settings
        self.db = db
        self.api = api
        self.roster = roster
        self.say = texts(settings.language)
        self.zone = ZoneInfo(settings.timezone)

    async def sweep(self, now: datetime | None = None) -> int:
        """Announce the shift changes of the last `RECENT` not yet announced; how many."""
        if not self.settings.oncall.handoff_messages:
            return 0
        moment = now or datetime.now(UTC)
        said = 0
        for name, rota in self.roster.schedules.items():
            chat = rota.chat or self.settings.alert_chat_id
            if not chat:
                continue
            change = await self.roster.next(name, moment - RECENT)
            if change is None or change[0] > moment:
                continue
            at, watch = change
            before = await self.roster.now(name, at - timedelta(seconds=1))
            handoff = await rotas.claim_handoff(self.db, name, at, chat, watch.people)
            if handoff is None:
                continue
            text = self._text(name, watch.people, watch.until, before.people)
            text += "\n" + await self._open(chat, name)
            uuid = idempotency_key("handoff", name, at.isoformat())
            message_id = await self.api.send(chat, "text", {"text": text}, uuid=uuid)
            await rotas.announced(self.db, handoff, message_id)
            said += 1
        return said

    def _text(
        self,
        name: str,
        people: tuple[str, ...],
        until: datetime | None,
        before: tuple[str, ...],
    ) -> str:
        shown = calls(people) or self.say("oncall.nobody")
        end = until.astimezone(self.zone).strftime("%m-%d %H:%M") if until else "—"
        text = self.say("oncall.handoff", schedule=name, people=shown, until=end)
        if before:
            previous = calls(before)
            text += " " + self.say("oncall.handoff_from", people=previous)
        return text

    async def _open(self, chat: str, name: str) -> str:
        """The unresolved incidents the shift inherits (escalated first, each with its status):
        those of the chat it is announced in, and those anywhere its schedule is paged for."""
        rows = await incidents.list_incidents(self.db, active_only=True, limit=HANDED)
        mine = [
            IncidentRow(r.id, r.title, r.severity, r.status, r.alert_count, r.last_seen_at)
            for r in rows
            if r.chat_id == chat or self.roster.answers_for(name, r.chat_id or "", r.severity)
        ]
        return handed_over(mine, self.say)
