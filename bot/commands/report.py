"""The alert-hygiene report in the chat: `/report [7d|24h|30d]`, and its suggestion buttons.

A suggestion's button shows what exactly applying it would do (Confirm / Cancel); Confirm by an
approver of the chat applies it and the card says what was done; Cancel brings the report back.
A click from another chat, an expired confirmation, a second Confirm of the same card or a
click by someone who may not approve gets an error toast and changes nothing.
"""

from __future__ import annotations

import re
import time

from bot.context import ActionResult, HandlerContext, Toast
from bot.errors import UserFacingError
from bot.reports import (
    ReportButton,
    ReportCancel,
    ReportConfirm,
    ReportDesk,
    ReportSuggest,
    confirm_payload,
    row_of,
)
from bot.roles import decider, gate_policy
from bot.router import Router
from cards.report import applied_card, confirm_card
from storage.incidents import record_event
from workflows.silences import SilenceError

router = Router("report")
MAX_HOURS = 30 * 24
_WINDOW = re.compile(r"^(\d{1,3})([dh])$")
DONE_TTL = 2 * 24 * 3600.0  # seconds a confirmation's nonce is remembered (it expires sooner)


def hours_of(args: str) -> int | None:
    """`7d` / `24h` (default 7 days) as hours, at most 30 days; None when it does not read."""
    text = args.strip().lower() or "7d"
    match = _WINDOW.fullmatch(text)
    if match is None:
        return None
    hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1)
    return hours if 1 <= hours <= MAX_HOURS else None


@router.command("/report", usage="[7d|24h|30d]", roles=("viewer",))
async def report(ctx: HandlerContext, args: str, reports: ReportDesk) -> None:
    """告警健康报告：告警量、最吵和抖动的告警、MTTA/MTTR、超时审批、自动修复、失败任务和建议。
    Alert hygiene: volume, noisy and flapping alerts, MTTA/MTTR, timeouts, fixes, suggestions."""
    hours = hours_of(args)
    if hours is None:
        raise UserFacingError(ctx.texts("report.usage"))
    await ctx.reply_card(await reports.report(ctx.chat_id, hours))


async def _refuse(
    ctx: HandlerContext, payload: ReportButton, reason: str, key: str
) -> ActionResult:
    await record_event(
        ctx.services.db,
        None,
        "click.refused",
        actor=ctx.user,
        message=reason,
        data={"report": payload.action, "chat_id": payload.chat_id, "reason": reason},
        trace_id=ctx.trace_id,
    )
    return ActionResult(toast=Toast("error", ctx.texts(key)))


async def _checked(ctx: HandlerContext, payload: ReportButton) -> ActionResult | None:
    """A refusal for a click from another chat or by someone who may not approve, else None."""
    if payload.chat_id != ctx.chat_id:
        return await _refuse(ctx, payload, "forged chat", "action.forged")
    approver = decider(ctx.roles, ctx.user)
    if not gate_policy(ctx.services.settings).approves(approver, ctx.chat_id):
        return await _refuse(ctx, payload, "not an approver", "report.toast.not_approver")
    return None


@router.card_action(ReportSuggest)
async def suggestion(
    ctx: HandlerContext, payload: ReportSuggest, reports: ReportDesk
) -> ActionResult:
    refused = await _checked(ctx, payload)
    if refused is not None:
        return refused
    card = confirm_card(
        row_of(payload, reports.redactor),
        ctx.texts,
        confirm_value=ctx.sign(confirm_payload(payload)),
        cancel_value=ctx.sign(ReportCancel(chat_id=payload.chat_id, hours=payload.hours)),
    )
    return ActionResult(card=card)


@router.card_action(ReportConfirm)
async def confirm(ctx: HandlerContext, payload: ReportConfirm, reports: ReportDesk) -> ActionResult:
    refused = await _checked(ctx, payload)
    if refused is not None:
        return refused
    if payload.exp < time.time():
        return await _refuse(ctx, payload, "expired", "report.toast.expired")
    if not await ctx.services.coordination.first_seen(f"report:{payload.nonce}", DONE_TTL):
        return await _refuse(ctx, payload, "already applied", "report.toast.done_already")
    try:
        done = await reports.apply(payload, ctx.user, ctx.trace_id, message_id=ctx.event.message_id)
    except SilenceError as exc:
        await ctx.services.coordination.forget(f"report:{payload.nonce}")
        text = ctx.texts(f"silence.error.{exc.code}", **exc.values)
        return ActionResult(toast=Toast("error", text))
    except ValueError as exc:
        await ctx.services.coordination.forget(f"report:{payload.nonce}")
        text = ctx.texts("report.toast.invalid", reason=str(exc)[:120])
        return ActionResult(toast=Toast("error", text))
    if done.request is not None:  # waits for another approver, on the card clicked
        toast = Toast("info", ctx.texts("report.toast.needs_confirmation"))
        return ActionResult(toast=toast, card=done.request)
    card = applied_card(
        row_of(payload, reports.redactor),
        ctx.texts,
        reports.zone,
        person=ctx.user,
        silence_id=done.silence_id,
        until=done.until,
    )
    key = "report.toast.applied" if payload.kind in ("silence", "dedupe") else "report.toast.posted"
    return ActionResult(toast=Toast("success", ctx.texts(key)), card=card)


@router.card_action(ReportCancel)
async def cancel(ctx: HandlerContext, payload: ReportCancel, reports: ReportDesk) -> ActionResult:
    refused = await _checked(ctx, payload)
    if refused is not None:
        return refused
    card = await reports.report(ctx.chat_id, payload.hours, words=False)
    return ActionResult(toast=Toast("info", ctx.texts("report.toast.cancelled")), card=card)
