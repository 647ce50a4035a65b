"""Scheduled jobs in the chat: a sentence (or /schedule) → confirmation card → job; /jobs, /job.

An @bot message that is not a command is read as a schedule; when it is not one the bot says
what it can do. A clarifying question is answered by replying in the thread (with the bot
mentioned): the reply is read together with the thread's first message.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot.context import ActionResult, HandlerContext, Toast
from bot.errors import UserFacingError
from bot.lark.events import CardAction, MessageEvent, normalise, parse_envelope
from bot.roles import admits, refusal
from bot.router import Router
from bot.scheduling.desk import Draft, ScheduleDesk, ScheduleRefused
from cards.actions import ActionPayload
from cards.schedules import RunView, confirm_card, edit_form_card, job_card, jobs_card
from storage import schedules
from storage.models import InboundEvent

router = Router("schedules")


class ScheduleButton(ActionPayload):
    schedule_id: int
    chat_id: str


class ScheduleConfirm(ScheduleButton, action="schedule.confirm"):
    """Make the pending job real."""


class ScheduleEdit(ScheduleButton, action="schedule.edit"):
    """Open the edit form."""


class ScheduleCancel(ScheduleButton, action="schedule.cancel"):
    """Drop the pending job."""


class ScheduleEditSubmit(ScheduleButton, action="schedule.edit_submit"):
    """The edit form's answer (in `form_value`)."""


def _desk(ctx: HandlerContext) -> ScheduleDesk:
    desk = ctx.services.schedules
    if desk is None:
        raise UserFacingError(ctx.texts("schedule.unavailable"))
    return desk


def _buttons(ctx: HandlerContext, schedule_id: int) -> dict[str, dict[str, Any]]:
    chat = ctx.chat_id
    return {
        "confirm_value": ctx.sign(ScheduleConfirm(schedule_id=schedule_id, chat_id=chat)),
        "edit_value": ctx.sign(ScheduleEdit(schedule_id=schedule_id, chat_id=chat)),
        "cancel_value": ctx.sign(ScheduleCancel(schedule_id=schedule_id, chat_id=chat)),
    }


async def post_draft(ctx: HandlerContext, draft: Draft) -> bool:
    """Reply to a reading; False when the text was not a schedule at all."""
    result = draft.result
    if draft.schedule is not None:
        view = _desk(ctx).view(draft.schedule, runs=3)
        await ctx.reply_card(confirm_card(view, ctx.texts, **_buttons(ctx, draft.schedule.id)))
        return True
    if result.status == "clarify":
        await ctx.reply_text(result.question or ctx.texts("schedule.clarify_generic"))
        return True
    return False


@router.command("/schedule", "/remind", usage="<when> <what>", roles=("operator",))
async def schedule(ctx: HandlerContext, args: str) -> None:
    """用一句话创建定时任务，例如 /schedule 每个工作日早上9点检查服务器健康。
    Create a scheduled job from a sentence, e.g. /schedule every Friday at 5pm check disk."""
    if not args.strip():
        raise UserFacingError(ctx.texts("schedule.usage"))
    draft = await _desk(ctx).draft(ctx.chat_id, ctx.user, args)
    if not await post_draft(ctx, draft):
        await ctx.reply_text(ctx.texts("schedule.not_a_schedule"))


@router.message()
async def sentence(ctx: HandlerContext, event: MessageEvent) -> None:
    """An @bot message that is not a command: a follow-up in a conversation with the bot, a
    schedule (or the answer to a clarifying question), else a question for the chat agent.
    Questions need a viewer, schedules an operator (as /schedule)."""
    if not admits(ctx.roles, ("viewer",)):
        await ctx.reply_text(refusal(ctx.texts, "viewer"))
        return
    desk = ctx.services.schedules
    chat = ctx.services.chat
    text = event.command_text or event.text
    if chat is not None and chat.has_model:
        talk = await chat.conversation_of(event)
        if talk is not None:
            await chat.ask(ctx, event, talk)
            return
        if is_question(text):
            await chat.ask(ctx, event)  # the agent can still offer a job card (create_job)
            return
    if desk is not None and not admits(ctx.roles, ("operator",)):
        if desk.read(text).status != "not_schedule":  # a viewer's sentence is never drafted
            await ctx.reply_text(refusal(ctx.texts, "operator"))
            return
        desk = None
    if desk is not None:
        original = await _thread_start(ctx, event)
        if original:
            combined = await desk.draft(ctx.chat_id, ctx.user, f"{original} {text}")
            if await post_draft(ctx, combined):
                return
        if await post_draft(ctx, await desk.draft(ctx.chat_id, ctx.user, text)):
            return
    if chat is not None:
        await chat.ask(ctx, event)
        return
    await ctx.reply_text(ctx.texts("chat.no_agent"))


_QUESTION_START = re.compile(
    r"^(?:(?:什么|哪些|哪个|哪里|为什么|为啥|怎么|怎样|如何|是否|有没有|有什么|谁|多少|几个|能不能|"
    r"请问|帮我(?:查|看|分析)|查一下|看一下|分析)"
    r"|(?:what|which|why|how|who|when did|is|are|was|were|did|does|do|can|could|should|show|"
    r"list|tell|explain)\b)",
    re.IGNORECASE,
)

_QUESTION_INSIDE = re.compile(r"有什么|有哪些|有没有|为什么|为啥|怎么样|是不是|多少次")


def is_question(text: str) -> bool:
    """Whether a sentence asks something (rather than asks for a job): a question mark, a
    question word at the start, or 吗/呢 at the end. "明天有什么任务？" is a question, not a
    job for tomorrow."""
    stripped = text.strip()
    if stripped.endswith(("?", "？", "吗", "呢", "吗。", "呢。")):
        return True
    return bool(_QUESTION_START.match(stripped) or _QUESTION_INSIDE.search(stripped))


async def _thread_start(ctx: HandlerContext, event: MessageEvent) -> str:
    """The text of the thread's first message, when this message answers in a thread."""
    root = event.root_id or event.parent_id
    if not root or root == event.message_id:
        return ""
    async with ctx.services.db.session() as session:
        payload = await session.scalar(
            select(InboundEvent.payload).where(InboundEvent.message_id == root)
        )
    if not isinstance(payload, dict):
        return ""
    try:
        first = normalise(parse_envelope(payload), ctx.services.bot.open_id)
    except ValueError:
        return ""
    if not isinstance(first, MessageEvent):
        return ""
    return first.command_text or first.text


async def _changed(ctx: HandlerContext, payload: ScheduleButton, what: str) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    desk = _desk(ctx)
    try:
        row = await desk.change(payload.schedule_id, ctx.user, what, ctx.chat_id, admin=_admin(ctx))
    except ScheduleRefused as exc:
        return ActionResult(toast=Toast("error", str(exc)))
    card = confirm_card(desk.view(row, runs=3), ctx.texts, **_buttons(ctx, row.id))
    return ActionResult(
        toast=Toast("success", ctx.texts(f"schedule.done.{what}", id=row.id)), card=card
    )


@router.card_action(ScheduleConfirm, roles=("operator",))
async def confirm(ctx: HandlerContext, payload: ScheduleConfirm) -> ActionResult:
    return await _changed(ctx, payload, "confirm")


@router.card_action(ScheduleCancel, roles=("operator",))
async def cancel(ctx: HandlerContext, payload: ScheduleCancel) -> ActionResult:
    return await _changed(ctx, payload, "cancel")


@router.card_action(ScheduleEdit, roles=("operator",))
async def edit(ctx: HandlerContext, payload: ScheduleEdit) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    desk = _desk(ctx)
    try:
        row = await desk.get(payload.schedule_id, ctx.chat_id)
    except ScheduleRefused as exc:
        return ActionResult(toast=Toast("error", str(exc)))
    submit = ctx.sign(ScheduleEditSubmit(schedule_id=row.id, chat_id=ctx.chat_id))
    return ActionResult(card=edit_form_card(desk.view(row), ctx.texts, submit_value=submit))


@router.card_action(ScheduleEditSubmit, roles=("operator",))
async def edit_submit(
    ctx: HandlerContext, event: CardAction, payload: ScheduleEditSubmit
) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    form = event.form_value or {}
    when, task = str(form.get("when", "")).strip(), str(form.get("task", "")).strip()
    desk = _desk(ctx)
    try:
        draft = await desk.edit(
            payload.schedule_id, ctx.user, ctx.chat_id, when[:300], task[:300], admin=_admin(ctx)
        )
    except ScheduleRefused as exc:
        return ActionResult(toast=Toast("error", str(exc)))
    if draft.schedule is None:
        question = draft.result.question or ctx.texts("schedule.not_a_schedule")
        return ActionResult(toast=Toast("warning", question[:200]))
    view = desk.view(draft.schedule, runs=3)
    card = confirm_card(view, ctx.texts, **_buttons(ctx, draft.schedule.id))
    return ActionResult(toast=Toast("info", ctx.texts("schedule.edited")), card=card)


@router.command("/jobs", roles=("viewer",))
async def jobs(ctx: HandlerContext) -> None:
    """列出本群的定时任务（下次运行、上次结果）。
    List this chat's scheduled jobs (next run, last result)."""
    await ctx.reply_card(jobs_card(await _desk(ctx).jobs(ctx.chat_id), ctx.texts))


@router.command("/job", usage="<id> | pause|resume|run|delete <id>", roles=("viewer",))
async def job(ctx: HandlerContext, args: str) -> None:
    """查看或管理一个定时任务：/job 3、/job pause 3、/job run 3、/job delete 3。
    Show or manage a job: /job 3, /job pause 3, /job resume 3, /job run 3, /job delete 3."""
    words = args.split()
    desk = _desk(ctx)
    if len(words) == 1 and words[0].lstrip("#").isdigit():
        row = await _get(desk, int(words[0].lstrip("#")), ctx.chat_id)
        runs = [
            RunView(
                schedule_id=row.id,
                task=row.task,
                fire_time=run.fire_time,
                ok=run.status == "succeeded",
                summary=(run.error or run.output or run.status or "")[:200],
            )
            for run in await schedules.runs(ctx.services.db, row.id)
        ]
        await ctx.reply_card(job_card(desk.view(row), ctx.texts, runs))
        return
    if len(words) != 2 or words[0] not in ("pause", "resume", "run", "delete"):
        raise UserFacingError(ctx.texts("schedule.job_usage"))
    if not words[1].lstrip("#").isdigit():
        raise UserFacingError(ctx.texts("schedule.job_usage"))
    if not admits(ctx.roles, ("operator",)):  # looking is a viewer's, changing an operator's
        raise UserFacingError(refusal(ctx.texts, "operator"))
    try:
        number = int(words[1].lstrip("#"))
        row = await desk.change(number, ctx.user, words[0], ctx.chat_id, admin=_admin(ctx))
    except ScheduleRefused as exc:
        raise UserFacingError(str(exc)) from None
    await ctx.reply_text(ctx.texts(f"schedule.done.{words[0]}", id=row.id))


def _admin(ctx: HandlerContext) -> bool:
    """Admins may change anyone's jobs (the desk also knows LARKOPS_ADMINS)."""
    return admits(ctx.roles, ("admin",))


async def _get(desk: ScheduleDesk, schedule_id: int, chat_id: str) -> Any:
    try:
        return await desk.get(schedule_id, chat_id)
    except ScheduleRefused as exc:
        raise UserFacingError(str(exc)) from None
