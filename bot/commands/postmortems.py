"""/postmortem <id>: draft a resolved incident's postmortem (again) as a Feishu document."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.errors import UserFacingError
from bot.lark.api import LarkApiError
from bot.router import Router
from storage import incidents

router = Router("postmortems")


@router.command("/postmortem", usage="<id>", roles=("operator",))
async def postmortem(ctx: HandlerContext, args: str) -> None:
    """为已恢复的事件生成复盘草稿（飞书文档），并链接到事件卡片。
    Draft a resolved incident's postmortem as a Feishu document, linked on its card."""
    value = args.split(" ", 1)[0].lstrip("#")
    if not value.isdigit() or len(value) > 12:
        raise UserFacingError(ctx.texts("incident.usage_id", command="/postmortem"))
    incident = await incidents.get_incident(ctx.services.db, int(value))
    desk = ctx.services.desk
    if incident is None or desk is None:
        raise UserFacingError(ctx.texts("incident.not_found", id=int(value)))
    if incident.status != "resolved":
        raise UserFacingError(ctx.texts("postmortem.not_resolved", id=incident.id))
    try:
        url = await desk.postmortems.publish(incident.id, by=ctx.user)
    except LarkApiError as exc:
        raise UserFacingError(ctx.texts("postmortem.failed", reason=exc.msg[:200])) from None
    await ctx.reply_text(ctx.texts("postmortem.done", id=incident.id, url=url))
