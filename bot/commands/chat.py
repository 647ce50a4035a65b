"""Talking to the bot: thread follow-ups of a conversation, and the cards its agent posts.

An @bot question that is no command and no schedule reaches the chat agent through the
schedules router's catch-all (see `bot.commands.schedules.sentence`); here are the replies in a
conversation's thread that do not mention the bot, and the Confirm / Cancel buttons of the
changes the agent suggested (decided with the clicker's own rights).
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

from bot.chat.changes import Suggestion, SuggestionCancel, SuggestionConfirm
from bot.chat.desk import ChatDesk
from bot.context import ActionResult, HandlerContext, Toast
from bot.incidents.desk import IncidentDesk
from bot.lark.events import MessageEvent
from bot.roles import admits, refusal
from bot.router import Router
from bot.scheduling.desk import ScheduleDesk, ScheduleRefused
from cards.chat import SuggestionView, suggestion_card
from cards.markup import mention
from storage import incidents

router = Router("chat")


def _follow_up(event: MessageEvent) -> bool:
    """A person's reply in a thread, not mentioning the bot (those go the @bot way)."""
    return bool(event.root_id) and not event.addressed_to_bot and event.sender_type == "user"


@router.message(_follow_up)
async def follow_up(ctx: HandlerContext, event: MessageEvent, chat: ChatDesk) -> None:
    """A reply in a conversation's thread continues it; other thread replies are not ours."""
    if not chat.has_model or not admits(ctx.roles, ("viewer",)):
        return
    talk = await chat.conversation_of(event)
    if talk is not None:
        await chat.ask(ctx, event, talk)


async def _label(ctx: HandlerContext, payload: Suggestion) -> str:
    if payload.kind == "job":
        try:
            return (await ctx.services.schedules.get(payload.target, payload.chat_id)).task
        except ScheduleRefused:
            return ""
    incident = await incidents.get_incident(ctx.services.db, payload.target)
    return incident.title if incident is not None else ""


async def _decided(ctx: HandlerContext, payload: Suggestion, outcome: str) -> ActionResult:
    view = SuggestionView(
        payload.kind,
        payload.target,
        await _label(ctx, payload),
        payload.asked_by,
        change=payload.change,
        outcome=outcome,
    )
    kind: Literal["error", "success"] = "error" if outcome.startswith(("❌", "⌛")) else "success"
    zone = ZoneInfo(ctx.services.settings.timezone)
    return ActionResult(
        toast=Toast(kind, outcome[:200]), card=suggestion_card(view, ctx.texts, zone=zone)
    )


async def _expired(ctx: HandlerContext, payload: Suggestion) -> ActionResult:
    """A click after the card's time: nothing is done, and the card says why (no buttons)."""
    hours = round(ctx.services.settings.pending_ttl_hours)
    result = await _decided(ctx, payload, ctx.texts("chat.confirm.expired", hours=hours))
    return ActionResult(toast=Toast("error", ctx.texts("pending.expired")), card=result.card)


DECIDED_FOR = 30 * 24 * 3600.0  # seconds a decided card stays decided


async def _claim(ctx: HandlerContext, payload: Suggestion) -> bool:
    """The first decision of a card wins; a replayed click finds it taken."""
    return await ctx.services.coordination.first_seen(f"suggestion:{payload.nonce}", DECIDED_FOR)


@router.card_action(SuggestionConfirm, roles=("operator",))
async def confirm(
    ctx: HandlerContext, payload: SuggestionConfirm, desk: IncidentDesk, schedules: ScheduleDesk
) -> ActionResult:
    say = ctx.texts
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", say("action.forged")))
    if payload.kind == "diagnose" and not admits(ctx.roles, ("approver",)):
        return ActionResult(toast=Toast("error", refusal(say, "approver")))
    if payload.expired():
        return await _expired(ctx, payload)
    if not await _claim(ctx, payload):
        return ActionResult(toast=Toast("error", say("chat.confirm.already")))
    try:
        return await _confirm(ctx, payload, desk, schedules)
    except BaseException:
        await ctx.services.coordination.forget(f"suggestion:{payload.nonce}")
        raise


async def _confirm(
    ctx: HandlerContext, payload: SuggestionConfirm, desk: IncidentDesk, schedules: ScheduleDesk
) -> ActionResult:
    say = ctx.texts
    if payload.kind == "diagnose":
        if not await desk.diagnose(payload.target, requester=ctx.user):
            return await _decided(
                ctx, payload, say("chat.confirm.failed", reason=f"#{payload.target}")
            )
        return await _decided(ctx, payload, say("chat.confirm.done", who=mention(ctx.user)))
    try:
        admin = admits(ctx.roles, ("admin",))
        await schedules.change(payload.target, ctx.user, payload.change, ctx.chat_id, admin=admin)
    except ScheduleRefused as exc:
        await ctx.services.coordination.forget(f"suggestion:{payload.nonce}")
        return ActionResult(toast=Toast("error", str(exc)))
    return await _decided(ctx, payload, say("chat.confirm.done", who=mention(ctx.user)))


@router.card_action(SuggestionCancel, roles=("operator",))
async def cancel(ctx: HandlerContext, payload: SuggestionCancel) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    if payload.expired():
        return await _expired(ctx, payload)
    if not await _claim(ctx, payload):
        return ActionResult(toast=Toast("error", ctx.texts("chat.confirm.already")))
    return await _decided(ctx, payload, ctx.texts("chat.confirm.cancelled", who=mention(ctx.user)))
