"""Cross-cutting steps every event passes through, in this order (see `default_middlewares`):

1. `ignore_bots`   the bot's own messages and other bots' are dropped, unless the sender is a
                   configured alert sender (alerts arrive that way)
2. `dedupe`        an event id already dispatched to the end inside the window is dropped
                   (replicas share the window through the coordination backend); the durable
                   inbox already refuses repeated event and message ids, this also covers
                   card actions and webhook deliveries
3. `access`        the sender's roles, from configuration: admin, approver, member

Each is `async (ctx, call_next) -> result`.
"""

from __future__ import annotations

from typing import Any

from bot.context import HandlerContext
from bot.dispatcher import IGNORED, Middleware, Next
from bot.lark.events import MessageEvent
from bot.logs import get_logger

log = get_logger(__name__)
DEDUPE_WINDOW = 24 * 3600.0


async def ignore_bots(ctx: HandlerContext, call_next: Next) -> Any:
    event = ctx.event
    if isinstance(event, MessageEvent):
        settings, bot = ctx.services.settings, ctx.services.bot
        if event.sender_open_id and event.sender_open_id == bot.open_id:
            return IGNORED
        if event.sender_type != "user" and event.sender_open_id not in settings.alert_senders:
            log.info("message.ignored_bot", sender=event.sender_open_id)
            return IGNORED
    return await call_next()


async def dedupe(ctx: HandlerContext, call_next: Next) -> Any:
    """Drop an event that was already dispatched to the end. The mark is set only after the
    handler returns, so an event whose handling was cut short by a crash is handled again."""
    coordination, key = ctx.services.coordination, f"dispatched:{ctx.event.event_id}"
    if await coordination.seen(key):
        log.info("event.duplicate", event_id=ctx.event.event_id)
        return None if not isinstance(ctx.event, MessageEvent) else IGNORED
    result = await call_next()
    await coordination.first_seen(key, DEDUPE_WINDOW)
    return result


def roles_of(open_id: str, settings: Any) -> frozenset[str]:
    roles = {"member"}
    if open_id in settings.admins:
        roles |= {"admin", "approver"}
    if open_id in settings.approvers:
        roles.add("approver")
    return frozenset(roles)


async def access(ctx: HandlerContext, call_next: Next) -> Any:
    ctx.roles = roles_of(ctx.user, ctx.services.settings)
    return await call_next()


def default_middlewares() -> list[Middleware]:
    return [ignore_bots, dedupe, access]
