"""/postmortem <id>: draft a resolved incident's postmortem (again) as a Feishu document; the
button that makes its action items Feishu tasks (an approver confirms)."""

from __future__ import annotations

from bot.commands.incidents import incident_id_of, refused
from bot.context import ActionResult, HandlerContext, Toast
from bot.errors import UserFacingError
from bot.incidents.desk import IncidentDesk, IncidentRefused
from bot.lark.api import LarkApiError
from bot.router import Router
from cards.postmortem import TasksConfirm, tasks_card

router = Router("postmortems")


@router.command("/postmortem", usage="<id>", roles=("operator",))
async def postmortem(ctx: HandlerContext, args: str, desk: IncidentDesk) -> None:
    """为已恢复的事件生成复盘草稿（飞书文档），并链接到事件卡片。
    Draft a resolved incident's postmortem as a Feishu document, linked on its card."""
    incident_id = incident_id_of(ctx, args, "/postmortem")
    try:
        url = await desk.postmortem(incident_id, by=ctx.user)
    except IncidentRefused as exc:
        raise UserFacingError(refused(ctx.texts, exc)) from None
    except LarkApiError as exc:
        raise UserFacingError(ctx.texts("postmortem.failed", reason=exc.msg[:200])) from None
    await ctx.reply_text(ctx.texts("postmortem.done", id=incident_id, url=url))


@router.card_action(TasksConfirm, roles=("approver",))
async def confirm_tasks(
    ctx: HandlerContext, payload: TasksConfirm, desk: IncidentDesk
) -> ActionResult:
    try:
        made = await desk.postmortems.make_tasks(payload.incident_id, by=ctx.user)
    except LarkApiError as exc:
        text = ctx.texts("postmortem.failed", reason=exc.msg[:200])
        return ActionResult(toast=Toast("error", text))
    if made is None:
        return ActionResult(toast=Toast("info", ctx.texts("pm.tasks.already")))
    return ActionResult(
        toast=Toast("success", ctx.texts("pm.tasks.done", count=made.made)),
        card=tasks_card(made, ctx.texts, None),
    )
