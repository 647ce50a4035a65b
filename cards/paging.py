"""On-call on cards: the incident card's paging section with its Ack button, and `/oncall`.

The Ack button's callback value carries `"action": "ack"` and the incident id, signed like every
button (`cards.actions.pack`).

    value = ack_value(incident_id, key)             # the signed Ack button value
    elements = paging_section(view.paging, say, zone)
    card = oncall_card([OncallView("primary", ("ou_bob",), until)], say, zone)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from cards.actions import ActionPayload, pack
from cards.basics import button, card, markdown, more
from cards.markup import clock, fit, inline, mention, said
from cards.texts import Texts
from cards.views import IncidentRow, OncallView, PageLine, PagingView, SwapView

_TIME = "%m-%d %H:%M"
MAX_WAITING = 10  # escalated incidents listed on /oncall and in a hand-over
MAX_SCHEDULES = 30  # schedules on one /oncall card; the rest are counted
_CHANNELS = ("chat", "direct", "urgent_app", "urgent_sms", "urgent_phone")
_REASONS = ("quota", "permission", "forbidden", "not_in_chat", "no_card", "nobody", "failed")


class Ack(ActionPayload, action="ack"):
    """Acknowledge an incident: someone is on it, its paging stops."""

    incident_id: int


class SwapAnswer(ActionPayload):
    """The answer to a shift swap (the times are epoch seconds; `exp`: when asking ends)."""

    schedule: str
    asker: str
    other: str
    mine_from: int
    mine_to: int
    theirs_from: int
    theirs_to: int


class SwapAccept(SwapAnswer, action="oncall.swap.accept"):
    """The other person agrees: two overrides make the swap."""


class SwapDecline(SwapAnswer, action="oncall.swap.decline"):
    """The other person declines: nothing changes."""


def swap_values(view: SwapView, key: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The signed Accept / Decline values of a swap card."""
    fields: dict[str, Any] = {
        "schedule": view.schedule,
        "asker": view.asker,
        "other": view.other,
        "mine_from": int(view.mine[0].timestamp()),
        "mine_to": int(view.mine[1].timestamp()),
        "theirs_from": int(view.theirs[0].timestamp()),
        "theirs_to": int(view.theirs[1].timestamp()),
    }
    return pack(SwapAccept(**fields), key), pack(SwapDecline(**fields), key)


def swap_card(
    view: SwapView, say: Texts, zone: ZoneInfo, values: tuple[dict[str, Any], dict[str, Any]] | None
) -> dict[str, Any]:
    """The swap request, with Accept / Decline while it is asked (for `other` to press)."""
    ask = say(
        "oncall.swap.ask",
        asker=mention(view.asker),
        other=mention(view.other),
        mine_from=clock(view.mine[0], zone, _TIME),
        mine_to=clock(view.mine[1], zone, _TIME),
        theirs_from=clock(view.theirs[0], zone, _TIME),
        theirs_to=clock(view.theirs[1], zone, _TIME),
    )
    elements: list[dict[str, Any]] = [markdown(ask)]
    if view.status == "asked" and values is not None:
        accept, decline = values
        elements.append(
            {
                "tag": "column_set",
                "flex_mode": "none",
                "columns": [
                    {"tag": "column", "width": "auto", "elements": [b]}
                    for b in (
                        button(say("oncall.swap.accept"), accept, kind="primary"),
                        button(say("oncall.swap.decline"), decline),
                    )
                ],
            }
        )
    elif view.status in ("accepted", "declined"):
        elements.append(markdown(say(f"oncall.swap.{view.status}", other=mention(view.other))))
    title = say("oncall.swap.title", schedule=inline(view.schedule, 60))
    return card(title, elements, template="green" if view.status == "accepted" else "blue")


class WarRoomOpen(ActionPayload, action="warroom.open"):
    """Make the incident's war room (the card's 建群 button; the same as /warroom)."""

    incident_id: int


def war_room_value(incident_id: int, key: bytes) -> dict[str, Any]:
    """The signed value of an incident's 建群 button."""
    return pack(WarRoomOpen(incident_id=incident_id), key)


def ack_value(incident_id: int, key: bytes) -> dict[str, Any]:
    """The signed value of an incident's Ack button: the one place it is made."""
    return pack(Ack(incident_id=incident_id), key)


def people(open_ids: Sequence[str], say: Texts) -> str:
    return " ".join(mention(p) for p in open_ids[:10]) or say("oncall.nobody")


def channel_name(channel: str, say: Texts) -> str:
    return say(f"card.paging.channel.{channel}") if channel in _CHANNELS else inline(channel, 20)


def reason_name(reason: str, say: Texts) -> str:
    return say(f"card.paging.reason.{reason}") if reason in _REASONS else inline(reason, 40)


def _line(line: PageLine, say: Texts, zone: ZoneInfo) -> list[str]:
    if line.status in ("pending", "firing"):
        return [say("card.paging.pending", level=line.level, time=clock(line.due_at, zone, _TIME))]
    if line.status == "cancelled":
        return [say("card.paging.cancelled", level=line.level)]
    when = clock(line.fired_at or line.due_at, zone, _TIME)
    lines = [
        say(
            "card.paging.refused",
            channel=channel_name(channel, say),
            reason=reason_name(reason, say),
        )
        for channel, reason in line.refused
    ]
    if line.channel is None:
        return [say("card.paging.unreached", level=line.level, time=when), *lines]
    sent = say(
        "card.paging.sent",
        level=line.level,
        time=when,
        channel=channel_name(line.channel, say),
        people=people(line.people, say),
    )
    return [sent, *lines]


def page_event(data: Mapping[str, Any], say: Texts) -> str:
    """A `page.sent` timeline entry in words: the level, who was reached how, what Lark refused
    (its stored data: `bot.oncall.pager.Pager._fire`)."""
    level = data.get("level", "?")
    reached = [str(p) for p in data.get("people") or []]
    channel = data.get("channel")
    if channel:
        text = say(
            "card.paging.event",
            level=level,
            channel=channel_name(str(channel), say),
            people="、".join(reached) or say("oncall.nobody"),  # plain: the timeline escapes markup
        )
    else:
        text = say("card.paging.event_unreached", level=level)
    refused = [
        say(
            "card.paging.refused",
            channel=channel_name(str(r.get("channel", "")), say),
            reason=reason_name(str(r.get("reason", "")), say),
        )
        for r in data.get("refused") or []
        if isinstance(r, Mapping)
    ]
    return "；".join([text, *refused]) if say.language == "zh" else "; ".join([text, *refused])


def paging_section(view: PagingView, say: Texts, zone: ZoneInfo) -> list[dict[str, Any]]:
    """The incident card's paging steps, who acknowledged, and the Ack button."""
    lines = [f"**{say('card.paging.heading')}**"]
    for line in view.lines[:12]:
        worded = _line(line, say, zone)
        lines += [f"- {worded[0]}", *(f"  - {more}" for more in worded[1:])]
    if view.acknowledged_by:
        when = clock(view.acknowledged_at, zone, _TIME) if view.acknowledged_at else "—"
        key = "card.paging.acked_before" if view.before_escalation else "card.paging.acked"
        lines.append(say(key, person=mention(view.acknowledged_by), time=when))
    elements: list[dict[str, Any]] = [markdown("\n".join(lines))]
    pressed = [
        button(label, dict(value), kind=kind)
        for label, value, kind in (
            (say("card.paging.ack"), view.ack_value, "primary"),
            (say("card.paging.war_room"), view.room_value, "default"),
        )
        if value is not None
    ]
    if pressed:
        columns = [{"tag": "column", "width": "auto", "elements": [b]} for b in pressed]
        elements.append({"tag": "column_set", "flex_mode": "none", "columns": columns})
    return elements


def _status(status: str, say: Texts) -> str:
    key = f"card.status.{status}"
    return say(key) if say.has(key) else inline(status, 32)


def handed_over(rows: Sequence[IncidentRow], say: Texts) -> str:
    """The unresolved incidents a shift hands over, each with its status (escalated first, as
    `rows` come), in one line of a text message (titles as `said`: no escapes there)."""
    if not rows:
        return say("oncall.handoff_none")
    items = [
        say(
            "oncall.handoff_item",
            id=row.id,
            title=said(row.title, 60),
            status=_status(row.status, say),
        )
        for row in rows[:MAX_WAITING]
    ]
    joined = say("oncall.handoff_join").join([*items, *more(len(rows), MAX_WAITING, say)])
    return say("oncall.handoff_open", incidents=joined)


def _waiting(rows: Sequence[IncidentRow], say: Texts) -> str:
    """The escalated incidents still unresolved: who acknowledged each, or nobody yet."""
    lines = [f"**{say('oncall.escalated_heading')}**"]
    for row in rows[:MAX_WAITING]:
        owner = (
            say("oncall.escalated_claimed", person=mention(row.acknowledged_by))
            if row.acknowledged_by
            else say("oncall.escalated_unclaimed")
        )
        lines.append(
            "- "
            + say(
                "oncall.escalated_row",
                id=row.id,
                title=inline(row.title, 120),
                status=_status(row.status, say),
                owner=owner,
            )
        )
    lines += more(len(rows), MAX_WAITING, say)
    return "\n".join(lines)


def oncall_card(
    views: Sequence[OncallView],
    say: Texts,
    zone: ZoneInfo,
    escalated: Sequence[IncidentRow] = (),
) -> dict[str, Any]:
    """Who is on call in each schedule, until when, and who takes over next (the first
    `MAX_SCHEDULES`; the rest counted); the escalated incidents not yet resolved (a person
    must act on them)."""
    elements: list[dict[str, Any]] = []
    for view in views[:MAX_SCHEDULES]:
        name = f"`{inline(view.schedule, 60)}`"
        mark = say("oncall.override_mark") if view.override else ""
        now = people(view.people, say) + mark
        lines = [say("oncall.now", schedule=name, people=now)]
        if view.next_at is not None:
            lines.append(
                say(
                    "oncall.next",
                    people=people(view.next_people, say),
                    time=clock(view.next_at, zone, _TIME),
                )
            )
        else:
            lines.append(say("oncall.no_next"))
        elements.append(markdown("\n".join(lines)))
    elements += [markdown(line) for line in more(len(views), MAX_SCHEDULES, say)]
    if escalated:
        elements.append(markdown(_waiting(escalated, say)))
    elements.append(markdown(say("oncall.hint"), size="notation"))
    return fit(card(say("oncall.title"), elements, template="red" if escalated else "blue"))
