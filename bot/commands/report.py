"""The alert-hygiene report in the chat: `/report [7d|24h|30d]`, and its suggestion buttons.

A suggestion's button shows what exactly applying it would do (Confirm / Cancel); Confirm by an
approver of the chat applies it and the card says what was done; Cancel brings the report back.
A click from another chat, an expired confirmation, a second Confirm of the same card or a
click by someone who may not approve gets an error toast and changes nothing.
"""

from __future__ import annotations

import re

from bot.context import ActionResult, HandlerContext, Toast
from bot.errors import UserFacingError
from bot.reports import (
    Clicker,
    ReportCancel,
    ReportConfirm,
    ReportDesk,
    ReportRefused,
    ReportSuggest,
    confirm_payload,
    row_of,
)
from bot.router import Router
from cards.report import applied_card, confirm_card
from workflows.silences import SilenceError

router = Router("report")
MAX_HOURS = 30 * 24
_WINDOW = re.compile(r"^(\d{1,3})([dh])$")


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


_REFUSED_TEXT = {
    "forged": "action.forged",
    "not_approver": "report.toast.not_approver",
    "expired": "report.toast.expired",
    "done_already": "report.toast.done_already",
}


def _refused(ctx: HandlerContext, exc: ReportRefused) -> ActionResult:
    return ActionResult(toast=Toast("error", ctx.texts(_REFUSED_TEXT[exc.code])))


def _clicker(ctx: HandlerContext) -> Clicker:
    return Clicker(ctx.chat_id, ctx.user, ctx.roles)


@router.card_action(ReportSuggest)
async def suggestion(
    ctx: HandlerContext, payload: ReportSuggest, reports: ReportDesk
) -> ActionResult:
    try:
        await reports.admit(payload, _clicker(ctx), ctx.trace_id)
    except ReportRefused as exc:
        return _refused(ctx, exc)
    card = confirm_card(
        row_of(payload, reports.redactor),
        ctx.texts,
        confirm_value=ctx.sign(confirm_payload(payload)),
        cancel_value=ctx.sign(ReportCancel(chat_id=payload.chat_id, hours=payload.hours)),
    )
    return ActionResult(card=card)


@router.card_action(ReportConfirm)
async def confirm(ctx: HandlerContext, payload: ReportConfirm, reports: ReportDesk) -> ActionResult:
    message_id = ctx.event.message_id
    try:
        done = await reports.confirm(payload, _clicker(ctx), ctx.trace_id, message_id=message_id)
    except ReportRefused as exc:
        return _refused(ctx, exc)
    except SilenceError as exc:
        text = ctx.texts(f"silence.error.{exc.code}", **exc.values)
        return ActionResult(toast=Toast("error", text))
    except ValueError as exc:
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
    try:
        await reports.admit(payload, _clicker(ctx), ctx.trace_id)
    except ReportRefused as exc:
        return _refused(ctx, exc)
    card = await reports.report(ctx.chat_id, payload.hours, words=False)
    return ActionResult(toast=Toast("info", ctx.texts("report.toast.cancelled")), card=card)
