"""War rooms: a Lark group for one incident, with the people it needs and its card.

`open` makes a private group (`POST /open-apis/im/v1/chats`) named after the incident, with
whoever is on call now, the incident chat's approvers and the person who asked, then posts the
incident card there. The presenter keeps that card in sync with the alert chat's
(`LarkPresenter._war_room`), so its buttons (approvals, Ack) work in either chat. A second
request for the same incident gets the existing room.

    room = await open_war_room(desk, incident, by="ou_alice")   # WarRoomOutcome(...)
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.incidents.desk import IncidentDesk
from bot.lark.api import LarkApiError, idempotency_key
from bot.roles import gate_policy
from storage import incidents, war_rooms
from storage.models import Incident


@dataclass(frozen=True)
class WarRoomOutcome:
    """`chat_id` of the room (None when it could not be made: `error` says why), its name,
    the people invited, and whether this request made it."""

    chat_id: str | None
    name: str
    people: tuple[str, ...]
    created: bool
    error: str = ""


async def open_war_room(desk: IncidentDesk, incident: Incident, *, by: str) -> WarRoomOutcome:
    say, db = desk.presenter.say, desk.db
    name = say("warroom.title", id=incident.id, title=incident.title)[:60]
    existing = await war_rooms.of_incident(db, incident.id)
    if existing is not None or not await war_rooms.claim(db, incident.id, by=by):
        room = existing or await war_rooms.of_incident(db, incident.id)
        return WarRoomOutcome(room.chat_id if room else None, name, (), created=False)
    usual = gate_policy(desk.settings).usual(incident.chat_id)
    invited = [*await desk.roster.on_call_anywhere(), *usual, by]
    people = tuple(dict.fromkeys(p for p in invited if p.startswith("ou_")))
    try:
        chat_id = await desk.presenter.api.create_chat(
            name, list(people), uuid=idempotency_key("war-room", str(incident.id))
        )
        card = await desk.presenter.render(incident)
        message_id = await desk.presenter.api.send_card(
            chat_id, card, uuid=idempotency_key("war-room-card", str(incident.id))
        )
    except LarkApiError as exc:
        await war_rooms.release(db, incident.id)
        return WarRoomOutcome(None, name, people, created=False, error=exc.msg[:200])
    await war_rooms.opened(db, incident.id, chat_id=chat_id, card_message_id=message_id)
    await incidents.record_event(
        db,
        incident.id,
        "warroom.opened",
        actor=by,
        data={"chat_id": chat_id, "people": list(people), "message_id": message_id},
    )
    return WarRoomOutcome(chat_id, name, people, created=True)
