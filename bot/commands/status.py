"""/status: the bot's own health in the chat — the figures of the dashboard, from this replica.

The chat agent's `system_health` tool reads the same `StatusView` (`LarkRuntime.status`), so
what a person sees here and what the agent answers agree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot.context import HandlerContext
from bot.router import Router
from cards.status import StatusView, status_card

router = Router("status")


@router.command("/status")
async def show_status(ctx: HandlerContext, status: Callable[[], Awaitable[StatusView]]) -> None:
    """显示机器人的运行状态：连接、队列、数据库、调度器、模型与进行中的事件。
    Show the bot's health: connection, queue, database, scheduler, model and open incidents."""
    view = await status()
    # this /status message is itself an inbox row until its handler returns: not a backlog
    view = replace(view, inbox_pending=max(0, view.inbox_pending - 1))
    await ctx.reply_card(status_card(view, ctx.texts))
