"""War rooms: a Lark group for one incident, with the people it needs and its card.

`WarRooms.open` makes a private group (`POST /open-apis/im/v1/chats`) named after the incident,
with whoever is on call now, the incident chat's approvers and the person who asked, posts the
incident card there and pins it. The presenter keeps that card in sync with the alert chat's
(`LarkPresenter._war_room`), so its buttons (approvals, Ack) work in either chat, and says the
outcome back in the alert chat once the incident is resolved. A second request for the same
incident gets the existing room. Incidents at or above `escalation.war_room_at` get one when
they open; others by `/warroom <id>` or the card's 建群 button. With
`escalation.war_room_days` a room is dissolved that many days after its incident was resolved.

    rooms = WarRooms(settings, db, api, presenter, roster)
    room = await rooms.open(incident, by="ou_alice")      # WarRoomOutcome(...)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.config import Settings
from bot.incidents.presenter import LarkPresenter
from bot.lark.api import LarkApi, LarkApiError, idempotency_key
from bot.logs import get_logger
from bot.oncall.roster import Roster
from bot.roles import gate_policy
from storage import incidents, war_rooms
from storage.database import Database
from storage.models import Incident

log = get_logger(__name__)
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class WarRoomOutcome:
    """`chat_id` of the room (None when it could not be made: `error` says why), its name,
    the people invited, and whether this request made it."""

    chat_id: str | None
    name: str
    people: tuple[str, ...]
    created: bool
    error: str = ""


class WarRooms:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        api: LarkApi,
        presenter: LarkPresenter,
        roster: Roster,
    ) -> None:
        self.settings = settings
        self.db = db
        self.api = api
        self.presenter = presenter
        self.roster = roster

    @property
    def dissolving(self) -> bool:
        return self.settings.escalation.war_room_days is not None

    def wanted(self, incident: Incident) -> bool:
        """Whether the incident gets a war room when it opens (`escalation.war_room_at`)."""
        floor = self.settings.escalation.war_room_at
        rank = SEVERITY_RANK.get(incident.severity)
        return floor is not None and rank is not None and rank >= SEVERITY_RANK[floor]

    async def open(self, incident: Incident, *, by: str) -> WarRoomOutcome:
        say, db = self.presenter.say, self.db
        name = say("warroom.title", id=incident.id, title=incident.title)[:60]
        existing = await war_rooms.of_incident(db, incident.id)
        if existing is not None or not await war_rooms.claim(db, incident.id, by=by):
            room = existing or await war_rooms.of_incident(db, incident.id)
            return WarRoomOutcome(room.chat_id if room else None, name, (), created=False)
        usual = gate_policy(self.settings).usual(incident.chat_id)
        invited = [*await self.roster.on_call_anywhere(), *usual, by]
        people = tuple(dict.fromkeys(p for p in invited if p.startswith("ou_")))
        try:
            chat_id = await self.api.create_chat(
                name, list(people), uuid=idempotency_key("war-room", str(incident.id))
            )
            card = await self.presenter.render(incident)
            message_id = await self.api.send_card(
                chat_id, card, uuid=idempotency_key("war-room-card", str(incident.id))
            )
        except LarkApiError as exc:
            await war_rooms.release(db, incident.id)
            return WarRoomOutcome(None, name, people, created=False, error=exc.msg[:200])
        await war_rooms.opened(db, incident.id, chat_id=chat_id, card_message_id=message_id)
        try:  # the card on top of the group: its status at a glance
            await self.api.pin(message_id)
        except LarkApiError as exc:
            log.warning("warroom.pin_refused", code=exc.code, msg=exc.msg[:200])
        await incidents.record_event(
            db,
            incident.id,
            "warroom.opened",
            actor=by,
            data={"chat_id": chat_id, "people": list(people), "message_id": message_id},
        )
        await self.presenter.show(incident.id)  # the alert chat's card loses its 建群 button
        return WarRoomOutcome(chat_id, name, people, created=True)

    async def dissolve_old(self) -> int:
        """Dissolve the rooms of incidents resolved `escalation.war_room_days` ago; how many."""
        days = self.settings.escalation.war_room_days
        if days is None:
            return 0
        done = 0
        for room in await war_rooms.to_dissolve(self.db, timedelta(days=days)):
            if not room.chat_id or not await war_rooms.claim_dissolve(self.db, room.id):
                continue
            try:
                await self.api.dissolve_chat(room.chat_id)
                done += 1
            except LarkApiError as exc:  # someone else owns it now, or it is gone: leave it
                log.warning("warroom.dissolve_refused", chat=room.chat_id, msg=exc.msg[:200])
        return done
