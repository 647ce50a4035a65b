"""/help, /whoami, /ping: what the bot can do, who you are to it, and how fast it answers."""

from __future__ import annotations

import time
from datetime import datetime

from bot.context import ActionResult, HandlerContext, Toast
from bot.lark.events import CardAction, MessageEvent
from bot.latency import Latency
from bot.roles import top_role
from bot.router import Router
from cards.actions import ActionPayload
from cards.basics import ping_card
from cards.markup import mention

router = Router("basics")


class PingRefresh(ActionPayload, action="ping.refresh"):
    """The "measure again" button of a /ping card; only valid in the chat it was sent to."""

    chat_id: str


@router.command("/help", "/h", roles=("viewer",))
async def show_help(ctx: HandlerContext) -> None:
    """列出所有命令。
    List every command."""
    say, language = ctx.texts, ctx.texts.language
    lines = [say("help.title"), say("help.intro")]
    root = ctx.services.router
    for spec in sorted(root.iter_commands(), key=lambda s: s.name):
        usage = f" {spec.usage}" if spec.usage else ""
        lines.append(f"{spec.name}{usage} — {spec.summary(language)}")
    await ctx.reply_text("\n".join(lines))


@router.command("/whoami", roles=("viewer",))
async def whoami(ctx: HandlerContext) -> None:
    """显示你的 open_id 和角色。
    Show your open_id and roles."""
    say = ctx.texts
    top = top_role(ctx.roles)  # the highest: it includes every lower one (see /roles)
    roles = say(f"role.{top}") if top is not None else say("role.none")
    await ctx.reply_text(say("whoami.text", open_id=ctx.user, roles=roles, chat_id=ctx.chat_id))


async def _local_figures(ctx: HandlerContext, latency: Latency) -> list[str]:
    say = ctx.texts
    figures: list[str] = []
    if isinstance(ctx.event, MessageEvent) and ctx.event.create_time_ms:
        delivery = max(0, round(time.time() * 1000) - ctx.event.create_time_ms)
        figures.append(say("ping.event_latency", ms=delivery))
    figures.append(say("ping.database", ms=await latency.database()))
    coordination = await latency.coordinator()
    figures.append(say("ping.coordination", backend=latency.backend, ms=coordination))
    return figures


def _card(ctx: HandlerContext, figures: list[str]) -> dict[str, object]:
    say = ctx.texts
    note = say(
        "ping.measured_by", name=mention(ctx.user), time=datetime.now(ctx.zone).strftime("%H:%M:%S")
    )
    refresh = ctx.sign(PingRefresh(chat_id=ctx.chat_id))
    return ping_card(say("ping.title"), figures, say("ping.refresh"), refresh, note)


@router.command("/ping", roles=("viewer",))
async def ping(ctx: HandlerContext, latency: Latency) -> None:
    """检查机器人是否在线，并显示各环节延迟。
    Check the bot is alive and show latency figures."""
    figures = await _local_figures(ctx, latency)
    figures.append(ctx.texts("ping.lark", ms=await latency.lark()))
    await ctx.reply_card(_card(ctx, figures))


@router.card_action(PingRefresh, roles=("viewer",))
async def refresh_ping(
    ctx: HandlerContext, event: CardAction, payload: PingRefresh, latency: Latency
) -> ActionResult:
    """Fast figures now; the Lark round trip is measured afterwards and the card updated with
    the action's token (the delayed-update path)."""
    if payload.chat_id != event.chat_id:
        return ActionResult(toast=Toast("error", ctx.texts("action.forged")))
    figures = await _local_figures(ctx, latency)

    async def measure_lark() -> None:
        complete = [*figures, ctx.texts("ping.lark", ms=await latency.lark())]
        await ctx.services.api.update_card(event.token, _card(ctx, complete))

    return ActionResult(
        toast=Toast("success", ctx.texts("ping.refreshed")),
        card=_card(ctx, figures),
        later=measure_lark if event.token else None,
    )
