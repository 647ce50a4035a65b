"""Scheduled jobs in the chat: /schedule (or a sentence, through `bot.commands.free_text`) →
confirmation card → job; /jobs, /job, and the buttons of the cards.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Literal, get_args

from bot.commands.numbers import number_of
from bot.context import ActionResult, HandlerContext, Toast
from bot.errors import UserFacingError
from bot.lark.events import CardAction
from bot.roles import admits, refusal
from bot.router import Router
from bot.scheduling.desk import Draft, DraftExpired, ScheduleDesk, ScheduleRefused
from cards.actions import ActionPayload
from cards.schedules import (
    AbilitiesView,
    ChoiceView,
    RunView,
    TrendView,
    choice_card,
    confirm_card,
    edit_form_card,
    expired_choice_card,
    job_card,
    jobs_card,
    unable_card,
)
from workflows.schedule.spec import SpecError, from_json, to_json

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


class ScheduleChoose(ActionPayload, action="schedule.choose"):
    """One option of a question (am or pm, once or every hour…): the job it names."""

    chat_id: str
    spec: str  # the spec's JSON (`workflows.schedule.to_json`), signed with the rest
    task: str
    text: str
    asked: int = 0  # when the question was asked (Unix seconds); 0 on cards older than expiry


def _buttons(ctx: HandlerContext, schedule_id: int) -> dict[str, dict[str, Any]]:
    chat = ctx.chat_id
    return {
        "confirm_value": ctx.sign(ScheduleConfirm(schedule_id=schedule_id, chat_id=chat)),
        "edit_value": ctx.sign(ScheduleEdit(schedule_id=schedule_id, chat_id=chat)),
        "cancel_value": ctx.sign(ScheduleCancel(schedule_id=schedule_id, chat_id=chat)),
    }


async def post_draft(ctx: HandlerContext, draft: Draft, text: str = "") -> bool:
    """Reply to a reading; False when the text was not a schedule at all. A question whose
    answers are known comes as a card with one button per answer."""
    result, desk = draft.result, ctx.services.schedules
    if draft.unable is not None:
        abilities = desk.abilities
        unable = AbilitiesView(
            task=draft.unable,
            diagnostics=tuple(abilities.diagnostics()),
            runbooks=tuple(abilities.runbooks),
            has_model=abilities.has_model,
        )
        await ctx.reply_card(unable_card(unable, ctx.texts))
        return True
    if draft.schedule is not None:
        view = desk.view(draft.schedule, runs=3)
        view = replace(view, by_model=result.source == "llm")
        card = confirm_card(view, ctx.texts, **_buttons(ctx, draft.schedule.id))
        await desk.shown(draft.schedule.id, await ctx.reply_card(card))
        return True
    if result.status == "clarify":
        question = result.question or ctx.texts("schedule.clarify_generic")
        choices = desk.choices(result)
        if not choices:  # answered in its thread, until it expires
            hours = desk.pending_hours
            await ctx.reply_text(f"{question} {ctx.texts('schedule.clarify_expires', hours=hours)}")
            return True
        views = [
            ChoiceView(
                rule=rule,
                first=first,
                timezone=spec.timezone,
                value=ctx.sign(
                    ScheduleChoose(
                        chat_id=ctx.chat_id,
                        spec=json.dumps(to_json(spec), ensure_ascii=False),
                        task=(result.task or "")[:300],
                        text=text[:500],
                        asked=int(time.time()),
                    )
                ),
            )
            for spec, rule, first in choices
        ]
        hours = desk.pending_hours
        await ctx.reply_card(choice_card(question, views, ctx.texts, expires_hours=hours))
        return True
    return False


@router.command("/schedule", "/remind", usage="<when> <what>", roles=("operator",))
async def schedule(ctx: HandlerContext, args: str, schedules: ScheduleDesk) -> None:
    """用一句话创建定时任务，例如 /schedule 每个工作日早上9点检查服务器健康。
    Create a scheduled job from a sentence, e.g. /schedule every Friday at 5pm check disk."""
    if not args.strip():
        raise UserFacingError(ctx.texts("schedule.usage"))
    draft = await schedules.draft(ctx.chat_id, ctx.user, args)
    if not await post_draft(ctx, draft, args):
        await ctx.reply_text(ctx.texts("schedule.not_a_schedule"))


async def _changed(
    ctx: HandlerContext, payload: ScheduleButton, what: str, schedules: ScheduleDesk
) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    try:
        row = await schedules.change(
            payload.schedule_id, ctx.user, what, ctx.chat_id, admin=_admin(ctx)
        )
    except DraftExpired as exc:  # the card says so, without its buttons
        card = confirm_card(schedules.view(exc.row), ctx.texts, **_buttons(ctx, exc.row.id))
        return ActionResult(toast=Toast("error", str(exc)), card=card)
    except ScheduleRefused as exc:
        return ActionResult(toast=Toast("error", str(exc)))
    card = confirm_card(schedules.view(row, runs=3), ctx.texts, **_buttons(ctx, row.id))
    return ActionResult(
        toast=Toast("success", ctx.texts(f"schedule.done.{what}", id=row.id)), card=card
    )


@router.card_action(ScheduleConfirm, roles=("operator",))
async def confirm(
    ctx: HandlerContext, payload: ScheduleConfirm, schedules: ScheduleDesk
) -> ActionResult:
    return await _changed(ctx, payload, "confirm", schedules)


@router.card_action(ScheduleCancel, roles=("operator",))
async def cancel(
    ctx: HandlerContext, payload: ScheduleCancel, schedules: ScheduleDesk
) -> ActionResult:
    return await _changed(ctx, payload, "cancel", schedules)


@router.card_action(ScheduleChoose, roles=("operator",))
async def choose(
    ctx: HandlerContext, payload: ScheduleChoose, schedules: ScheduleDesk
) -> ActionResult:
    """A question's option: the job it names is created and enabled; the card shows it."""
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    if payload.asked and schedules.question_expired(payload.asked):
        card = expired_choice_card(payload.text, schedules.pending_hours, ctx.texts)
        return ActionResult(toast=Toast("error", ctx.texts("pending.expired")), card=card)
    try:
        spec = from_json(json.loads(payload.spec))
        row = await schedules.choose(ctx.chat_id, ctx.user, payload.text, spec, payload.task)
    except (SpecError, ValueError, ScheduleRefused) as exc:
        return ActionResult(toast=Toast("error", str(exc)[:200]))
    card = confirm_card(schedules.view(row, runs=3), ctx.texts, **_buttons(ctx, row.id))
    return ActionResult(
        toast=Toast("success", ctx.texts("schedule.done.choose", id=row.id)), card=card
    )


@router.card_action(ScheduleEdit, roles=("operator",))
async def edit(ctx: HandlerContext, payload: ScheduleEdit, schedules: ScheduleDesk) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    try:
        row = await schedules.get(payload.schedule_id, ctx.chat_id)
        await schedules.refuse_expired(row)
    except DraftExpired as exc:
        card = confirm_card(schedules.view(exc.row), ctx.texts, **_buttons(ctx, exc.row.id))
        return ActionResult(toast=Toast("error", str(exc)), card=card)
    except ScheduleRefused as exc:
        return ActionResult(toast=Toast("error", str(exc)))
    submit = ctx.sign(ScheduleEditSubmit(schedule_id=row.id, chat_id=ctx.chat_id))
    return ActionResult(card=edit_form_card(schedules.view(row), ctx.texts, submit_value=submit))


@router.card_action(ScheduleEditSubmit, roles=("operator",))
async def edit_submit(
    ctx: HandlerContext, event: CardAction, payload: ScheduleEditSubmit, schedules: ScheduleDesk
) -> ActionResult:
    if payload.chat_id != ctx.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    form = event.form_value or {}
    when, task = str(form.get("when", "")).strip(), str(form.get("task", "")).strip()
    try:
        draft = await schedules.edit(
            payload.schedule_id, ctx.user, ctx.chat_id, when[:300], task[:300], admin=_admin(ctx)
        )
    except ScheduleRefused as exc:
        return ActionResult(toast=Toast("error", str(exc)))
    if draft.schedule is None:
        question = draft.result.question or ctx.texts("schedule.not_a_schedule")
        return ActionResult(toast=Toast("warning", question[:200]))
    view = schedules.view(draft.schedule, runs=3)
    card = confirm_card(view, ctx.texts, **_buttons(ctx, draft.schedule.id))
    await schedules.shown(draft.schedule.id, event.message_id)  # the new draft, on the same card
    return ActionResult(toast=Toast("info", ctx.texts("schedule.edited")), card=card)


@router.command("/jobs", roles=("viewer",))
async def jobs(ctx: HandlerContext, schedules: ScheduleDesk) -> None:
    """列出本群的定时任务（下次运行、上次结果）。
    List this chat's scheduled jobs (next run, last result)."""
    await ctx.reply_card(jobs_card(await schedules.jobs(ctx.chat_id), ctx.texts))


JobChange = Literal["pause", "resume", "run", "delete"]
# what /job does to a job, as written in English or Chinese
JOB_VERBS: dict[str, JobChange] = {
    **{verb: verb for verb in get_args(JobChange)},
    **dict.fromkeys(("暂停", "停用"), "pause"),
    **dict.fromkeys(("恢复", "继续", "启用"), "resume"),
    **dict.fromkeys(("运行", "执行", "立即执行", "跑一次"), "run"),
    **dict.fromkeys(("删除", "删掉"), "delete"),
}


@router.command("/job", usage="<id> | pause|resume|run|delete <id>", roles=("viewer",))
async def job(ctx: HandlerContext, args: str, schedules: ScheduleDesk) -> None:
    """查看或管理一个定时任务：/job 3、/job pause 3、/job run 3、/job delete 3。
    Show or manage a job: /job 3, /job pause 3, /job resume 3, /job run 3, /job delete 3."""
    words = args.split()
    if len(words) == 1 and (shown := number_of(words[0])) is not None:
        row = await _get(schedules, shown, ctx.chat_id)
        latest, finished = await schedules.history(row.id)
        runs = [
            RunView(
                schedule_id=row.id,
                task=row.task,
                fire_time=run.fire_time,
                ok=run.status == "succeeded",
                summary=(run.error or run.output or run.status or "")[:200],
            )
            for run in latest
        ]
        trend = [
            TrendView(
                ok=run.status == "succeeded",
                seconds=(run.finished_at - run.created_at).total_seconds()
                if run.finished_at
                else None,
            )
            for run in reversed(finished)
        ]
        await ctx.reply_card(job_card(schedules.view(row), ctx.texts, runs, trend))
        return
    if len(words) == 2 and number_of(words[0]) is not None:
        words.reverse()  # /job 3 pause
    verb = JOB_VERBS.get(words[0].lower()) if len(words) == 2 else None
    number = number_of(words[1]) if len(words) == 2 else None
    if verb is None or number is None:
        raise UserFacingError(ctx.texts("schedule.job_usage"))
    if not admits(ctx.roles, ("operator",)):  # looking is a viewer's, changing an operator's
        raise UserFacingError(refusal(ctx.texts, "operator"))
    try:
        row = await schedules.change(number, ctx.user, verb, ctx.chat_id, admin=_admin(ctx))
    except ScheduleRefused as exc:
        raise UserFacingError(str(exc)) from None
    await ctx.reply_text(ctx.texts(f"schedule.done.{verb}", id=row.id))


def _admin(ctx: HandlerContext) -> bool:
    """Admins may change anyone's jobs (the desk also knows LARKOPS_ADMINS)."""
    return admits(ctx.roles, ("admin",))


async def _get(schedules: ScheduleDesk, schedule_id: int, chat_id: str) -> Any:
    try:
        return await schedules.get(schedule_id, chat_id)
    except ScheduleRefused as exc:
        raise UserFacingError(str(exc)) from None
