"""On-call in the chat: /oncall (who, until when, who next), /oncall override, /oncall swap
(confirmed by the other person on a card), /warroom, and the incident card's Ack button (the
same acknowledgement as /ack)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.commands.incidents import incident_id_of, refused
from bot.context import ActionResult, HandlerContext, Toast
from bot.errors import UserFacingError
from bot.incidents.desk import IncidentDesk, IncidentRefused
from bot.lark.events import MessageEvent
from bot.oncall.roster import Roster
from bot.roles import admits, refusal
from bot.router import Router
from cards.markup import inline, text_mention
from cards.paging import (
    Ack,
    SwapAccept,
    SwapAnswer,
    SwapDecline,
    WarRoomOpen,
    oncall_card,
    swap_card,
    swap_values,
)
from cards.views import IncidentRow, OncallView, SwapView
from storage.incidents import awaits_ack
from workflows.oncall.cover import until

router = Router("oncall")
MAX_OVERRIDE = timedelta(days=31)
# a sentence asking someone to cover a shift (besides `override …`)
_COVER = re.compile(r"替班|代班|顶班|替我|代我|帮我值|顶我|我来值|我值|临时值班|值班到|值到|覆盖")
_VERB = re.compile(rf"^\s*override\b|{_COVER.pattern}|让|请|帮忙|一下|吧", re.IGNORECASE)
_MYSELF = re.compile(r"我来|我替|我顶|我代|我值|我接")
_OPEN_ID = re.compile(r"\bou_[A-Za-z0-9_-]{1,64}")


def _roster(ctx: HandlerContext, desk: IncidentDesk) -> Roster:
    roster = desk.roster
    if not roster.schedules:
        raise UserFacingError(ctx.texts("oncall.none"))
    return roster


def _schedule(ctx: HandlerContext, roster: Roster, name: str | None) -> str:
    """The schedule named, or the only one / the first one configured."""
    names = list(roster.schedules)
    if name is None:
        return names[0]
    if name not in roster.schedules:
        raise UserFacingError(ctx.texts("oncall.unknown", name=name, names=", ".join(names)))
    return name


def _person(ctx: HandlerContext, token: str) -> str | None:
    """An open_id typed as such, or an @mention of someone (not the bot)."""
    if token.startswith("ou_"):
        return token
    event = ctx.event
    if isinstance(event, MessageEvent):
        for found in event.mentions:
            if found.key == token or f"@{found.name}" == token:
                return found.open_id
    return None


async def _view(roster: Roster, name: str) -> OncallView:
    now = await roster.now(name)
    ahead = await roster.next(name)
    return OncallView(
        schedule=name,
        people=now.people,
        until=now.until,
        next_people=ahead[1].people if ahead else (),
        next_at=ahead[0] if ahead else None,
        override=bool(now.people) and now.layer is None,
    )


@router.command(
    "/oncall", usage="[schedule] | override <who> <length|HH:MM> | swap <who>", roles=("viewer",)
)
async def oncall(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """查看当前值班人和下一次交接；override 临时替班；swap 与他人换班。
    Who is on call now and the next hand-off; override to cover; swap to trade shifts."""
    words = args.split()
    covering = bool(words) and (words[0].lower() == "override" or bool(_COVER.search(args)))
    changing = covering or (bool(words) and words[0].lower() == "swap")
    if changing and not admits(ctx.roles, ("operator",)):  # looking is a viewer's
        raise UserFacingError(refusal(ctx.texts, "operator"))
    if covering:
        await _override(ctx, _roster(ctx, desk), args)
        return
    if words and words[0].lower() == "swap":
        await _swap(ctx, _roster(ctx, desk), words[1:])
        return
    roster = _roster(ctx, desk)
    if len(words) > 1:
        raise UserFacingError(ctx.texts("oncall.usage"))
    names = [_schedule(ctx, roster, words[0])] if words else list(roster.schedules)
    views = [await _view(roster, name) for name in names]
    escalated = [  # an acknowledgement from before the escalation no longer owns it
        IncidentRow(
            r.id,
            r.title,
            r.severity,
            r.status,
            r.alert_count,
            r.last_seen_at,
            None if awaits_ack(r) else r.acknowledged_by,
        )
        for r in await desk.escalated()
    ]
    await ctx.reply_card(oncall_card(views, ctx.texts, ctx.zone, escalated))


def _until(ctx: HandlerContext, text: str, zone: ZoneInfo) -> datetime:
    """The end of an override as the sentence says it (`workflows.oncall.cover`): a length
    from now, or a time of day."""
    now = datetime.now(UTC)
    try:
        end = until(text, now.astimezone(zone))
    except ValueError:
        end = None
    if end is None or end - now > MAX_OVERRIDE:
        raise UserFacingError(ctx.texts("oncall.bad_length", text=inline(text, 40) or "—"))
    return end.astimezone(UTC)


def _cover_of(ctx: HandlerContext, roster: Roster, args: str) -> tuple[str | None, str, str]:
    """Who covers (an @mention, an open_id, or the sender saying 我来…), which schedule (a
    configured name in the sentence, else the first), and the words left for when it ends."""
    rest = _VERB.sub(" ", args)
    person: str | None = None
    event = ctx.event
    for found in event.mentions if isinstance(event, MessageEvent) else ():
        if found.open_id and f"@{found.name}" in rest:  # (the bot's own mention is gone)
            person = person or found.open_id
            rest = rest.replace(f"@{found.name}", " ")
    if (typed := _OPEN_ID.search(rest)) is not None:
        person = person or typed.group(0)
        rest = rest.replace(typed.group(0), " ")
    if person is None and _MYSELF.search(rest):
        person = ctx.user
    name = None
    for known in roster.schedules:
        pattern = re.compile(rf"(?<![\w.-]){re.escape(known)}(?![\w.-])")
        if pattern.search(rest):
            name, rest = known, pattern.sub(" ", rest)
            break
    return person, _schedule(ctx, roster, name), rest.strip()


async def _override(ctx: HandlerContext, roster: Roster, args: str) -> None:
    """/oncall override <who> <length|HH:MM> [schedule], or a sentence saying the same
    (`/oncall @李四 替我值班到明天早上9点`)."""
    person, name, rest = _cover_of(ctx, roster, args)
    if person is None:
        raise UserFacingError(ctx.texts("oncall.usage"))
    until = _until(ctx, rest, ctx.zone)
    await roster.override(name, person, until, by=ctx.user)
    shown = until.astimezone(ctx.zone).strftime("%m-%d %H:%M")
    await ctx.reply_text(
        ctx.texts("oncall.override_done", person=text_mention(person), schedule=name, until=shown)
    )


async def _swap(ctx: HandlerContext, roster: Roster, words: list[str]) -> None:
    """/oncall swap <who> [schedule]: offer the rest of your shift for their next one."""
    if len(words) not in (1, 2):
        raise UserFacingError(ctx.texts("oncall.usage"))
    other = _person(ctx, words[0])
    if other is None or other == ctx.user:
        raise UserFacingError(ctx.texts("oncall.usage"))
    name = _schedule(ctx, roster, words[1] if len(words) == 2 else None)
    now = await roster.now(name)
    if ctx.user not in now.people or now.until is None:
        raise UserFacingError(ctx.texts("oncall.swap.not_on_call", schedule=name))
    theirs = await roster.next_shift(name, other)
    if theirs is None:
        raise UserFacingError(
            ctx.texts("oncall.swap.no_shift", other=text_mention(other), schedule=name)
        )
    mine = (datetime.now(UTC).replace(microsecond=0), now.until)
    view = SwapView(name, ctx.user, other, mine, theirs)
    await ctx.reply_card(
        swap_card(view, ctx.texts, ctx.zone, swap_values(view, ctx.services.signing_key))
    )


def _swap_view(payload: SwapAnswer, status: str) -> SwapView:
    def at(epoch: int) -> datetime:
        return datetime.fromtimestamp(epoch, UTC)

    return SwapView(
        payload.schedule,
        payload.asker,
        payload.other,
        (at(payload.mine_from), at(payload.mine_to)),
        (at(payload.theirs_from), at(payload.theirs_to)),
        status,
    )


_SWAP_REFUSED = {
    "only_other": "oncall.swap.only_other",
    "expired": "oncall.swap.expired",
    "no_schedules": "oncall.none",
}


async def _answer(
    ctx: HandlerContext, payload: SwapAnswer, accept: bool, desk: IncidentDesk
) -> ActionResult:
    """The roster decides whether the answer counts (`Roster.answer_swap`); the card says it."""
    say = ctx.texts
    view = _swap_view(payload, "accepted" if accept else "declined")
    refusal = await desk.roster.answer_swap(view, ctx.user, accept=accept)
    if refusal is not None:
        return ActionResult(toast=Toast("error", say(_SWAP_REFUSED[refusal])))
    return ActionResult(
        toast=Toast("success" if accept else "info", say(f"oncall.swap.toast_{view.status}")),
        card=swap_card(view, say, ctx.zone, None),
    )


@router.card_action(SwapAccept, roles=("viewer",))  # the person asked decides (see _answer)
async def swap_accept(ctx: HandlerContext, payload: SwapAccept, desk: IncidentDesk) -> ActionResult:
    return await _answer(ctx, payload, True, desk)


@router.card_action(SwapDecline, roles=("viewer",))
async def swap_decline(
    ctx: HandlerContext, payload: SwapDecline, desk: IncidentDesk
) -> ActionResult:
    return await _answer(ctx, payload, False, desk)


@router.command("/warroom", usage="<id>", roles=("operator",))
async def warroom(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """为事件创建作战群（值班人、审批人和你），并把事件卡片发到群里。
    Create a war-room group for an incident (on-call, approvers and you) with its card."""
    try:
        incident = await desk.incident(incident_id_of(ctx, args, "/warroom"))
    except IncidentRefused as exc:
        raise UserFacingError(refused(ctx.texts, exc)) from None
    room = await desk.war_rooms.open(incident, by=ctx.user)
    if room.error:
        raise UserFacingError(ctx.texts("warroom.failed", reason=room.error))
    if not room.created:
        await ctx.reply_text(ctx.texts("warroom.exists", id=incident.id))
        return
    people = " ".join(text_mention(p) for p in room.people)
    await ctx.reply_text(
        ctx.texts("warroom.created", id=incident.id, name=room.name, people=people)
    )


@router.card_action(Ack, roles=("operator",))
async def ack_button(ctx: HandlerContext, payload: Ack, desk: IncidentDesk) -> ActionResult:
    """The card's Ack button: the same acknowledgement as /ack."""
    number = payload.incident_id
    try:
        first = await desk.acknowledge(number, ctx.user, trace_id=ctx.trace_id)
    except IncidentRefused as exc:
        return ActionResult(toast=Toast("error", refused(ctx.texts, exc)))
    card = await desk.card(number)
    if first != ctx.user:
        toast = Toast("info", ctx.texts("ack.already", id=number))
    else:
        toast = Toast("success", ctx.texts("ack.done", id=number))
    return ActionResult(toast=toast, card=card)


@router.card_action(WarRoomOpen, roles=("operator",))
async def war_room_button(
    ctx: HandlerContext, payload: WarRoomOpen, desk: IncidentDesk
) -> ActionResult:
    """The card's 建群 button: the same as /warroom."""
    try:
        incident = await desk.incident(payload.incident_id)
    except IncidentRefused as exc:
        return ActionResult(toast=Toast("error", refused(ctx.texts, exc)))
    room = await desk.war_rooms.open(incident, by=ctx.user)
    if room.error:
        return ActionResult(toast=Toast("error", ctx.texts("warroom.failed", reason=room.error)))
    key = "warroom.toast_created" if room.created else "warroom.exists"
    card = await desk.card(incident.id)
    return ActionResult(toast=Toast("success", ctx.texts(key, id=incident.id)), card=card)
