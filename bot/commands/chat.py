"""Talking to the bot: thread follow-ups of a conversation, and the cards its agent posts.

An @bot question that is no command and no schedule reaches the chat agent through the
router's one fallback (`bot.commands.free_text.sentence`); here are the replies in a
conversation's thread that do not mention the bot, and the Confirm / Cancel buttons of the
changes the agent suggested (decided with the clicker's own rights).
"""

from __future__ import annotations

from typing import Literal

from bot.chat.changes import Suggestion, SuggestionCancel, SuggestionConfirm
from bot.chat.desk import ChatDesk
from bot.context import ActionResult, HandlerContext, Toast
from bot.incidents.desk import IncidentDesk, IncidentRefused
from bot.lark.events import MessageEvent
from bot.roles import admits, refusal
from bot.router import Router
from bot.scheduling.desk import ScheduleDesk, ScheduleRefused
from cards.chat import SuggestionView, suggestion_card
from cards.markup import mention

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


async def _label(payload: Suggestion, desk: IncidentDesk, schedules: ScheduleDesk) -> str:
    """What the suggestion is about: the job's task, or the incident's title."""
    try:
        if payload.kind == "job":
            return (await schedules.get(payload.target, payload.chat_id)).task
        return (await desk.incident(payload.target)).title
    except (ScheduleRefused, IncidentRefused):
        return ""


async def _decided(
    ctx: HandlerContext,
    payload: Suggestion,
    outcome: str,
    desk: IncidentDesk,
    schedules: ScheduleDesk,
) -> ActionResult:
    view = SuggestionView(
        payload.kind,
        payload.target,
        await _label(payload, desk, schedules),
        payload.asked_by,
        change=payload.change,
        outcome=outcome,
    )
    kind: Literal["error", "success"] = "error" if outcome.startswith(("❌", "⌛")) else "success"
    return ActionResult(
        toast=Toast(kind, outcome[:200]), card=suggestion_card(view, ctx.texts, zone=ctx.zone)
    )


async def _expired(
    ctx: HandlerContext, payload: Suggestion, desk: IncidentDesk, schedules: ScheduleDesk
) -> ActionResult:
    """A click after the card's time: nothing is done, and the card says why (no buttons)."""
    expired = ctx.texts("chat.confirm.expired", hours=schedules.pending_hours)
    result = await _decided(ctx, payload, expired, desk, schedules)
    return ActionResult(toast=Toast("error", ctx.texts("pending.expired")), card=result.card)


@router.card_action(SuggestionConfirm, roles=("operator",))
async def confirm(
    ctx: HandlerContext,
    payload: SuggestionConfirm,
    desk: IncidentDesk,
    schedules: ScheduleDesk,
    chat: ChatDesk,
) -> ActionResult:
    say = ctx.texts
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", say("action.forged")))
    if payload.kind == "diagnose" and not admits(ctx.roles, ("approver",)):
        return ActionResult(toast=Toast("error", refusal(say, "approver")))
    if payload.expired():
        return await _expired(ctx, payload, desk, schedules)
    if not await chat.claim(payload.nonce):
        return ActionResult(toast=Toast("error", say("chat.confirm.already")))
    try:
        return await _confirm(ctx, payload, desk, schedules, chat)
    except BaseException:
        await chat.release(payload.nonce)
        raise


async def _confirm(
    ctx: HandlerContext,
    payload: SuggestionConfirm,
    desk: IncidentDesk,
    schedules: ScheduleDesk,
    chat: ChatDesk,
) -> ActionResult:
    say = ctx.texts
    if payload.kind == "diagnose":
        if not await desk.diagnose(payload.target, requester=ctx.user):
            failed = say("chat.confirm.failed", reason=f"#{payload.target}")
            return await _decided(ctx, payload, failed, desk, schedules)
        done = say("chat.confirm.done", who=mention(ctx.user))
        return await _decided(ctx, payload, done, desk, schedules)
    try:
        admin = admits(ctx.roles, ("admin",))
        await schedules.change(payload.target, ctx.user, payload.change, ctx.chat_id, admin=admin)
    except ScheduleRefused as exc:
        await chat.release(payload.nonce)
        return ActionResult(toast=Toast("error", str(exc)))
    done = say("chat.confirm.done", who=mention(ctx.user))
    return await _decided(ctx, payload, done, desk, schedules)


@router.card_action(SuggestionCancel, roles=("operator",))
async def cancel(
    ctx: HandlerContext,
    payload: SuggestionCancel,
    desk: IncidentDesk,
    schedules: ScheduleDesk,
    chat: ChatDesk,
) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    if payload.expired():
        return await _expired(ctx, payload, desk, schedules)
    if not await chat.claim(payload.nonce):
        return ActionResult(toast=Toast("error", ctx.texts("chat.confirm.already")))
    cancelled = ctx.texts("chat.confirm.cancelled", who=mention(ctx.user))
    return await _decided(ctx, payload, cancelled, desk, schedules)
