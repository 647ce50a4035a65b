"""Cross-cutting steps every event passes through, in this order (see `default_middlewares`):

1. `ignore_bots`   the bot's own messages and other bots' are dropped, unless the sender is a
                   configured alert sender (alerts arrive that way)
2. `dedupe`        an event id already dispatched to the end inside the window is dropped
                   (replicas share the window through the coordination backend); the durable
                   inbox already refuses repeated event and message ids, this also covers
                   card actions and webhook deliveries
3. `access`        the sender's roles in this chat (`bot.roles`: viewer, operator, approver,
                   admin, from configuration and Lark department/group membership); the
                   dispatcher checks them against what each command and button declares

Each is `async (ctx, call_next) -> result`.
"""

from __future__ import annotations

from typing import Any

from bot.context import HandlerContext
from bot.dispatcher import IGNORED, Middleware, Next
from bot.lark.events import MessageEvent
from bot.logs import get_logger
from storage.coordination import CoordinationError

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
    handler returns, so an event whose handling was cut short by a crash is handled again.

    The mark is a second line: the durable inbox already refuses repeated event and message
    ids and approvals are claimed atomically in Postgres. So while Redis is unreachable the
    event goes on unchecked (and unmarked) rather than failing here."""
    coordination, key = ctx.services.coordination, f"dispatched:{ctx.event.event_id}"
    try:
        seen = await coordination.seen(key)
    except CoordinationError as exc:
        log.warning("event.dedupe_unavailable", event_id=ctx.event.event_id, error=str(exc))
        seen = False
    if seen:
        log.info("event.duplicate", event_id=ctx.event.event_id)
        return None if not isinstance(ctx.event, MessageEvent) else IGNORED
    result = await call_next()
    try:
        await coordination.first_seen(key, DEDUPE_WINDOW)
    except CoordinationError as exc:
        log.warning("event.dedupe_unavailable", event_id=ctx.event.event_id, error=str(exc))
    return result


async def access(ctx: HandlerContext, call_next: Next) -> Any:
    """Resolve the sender's roles here. Bots (alert senders) get what is granted to their
    open_id and the default, without membership lookups."""
    event = ctx.event
    person = not isinstance(event, MessageEvent) or event.sender_type == "user"
    found = await ctx.services.access.resolve(ctx.user, ctx.chat_id, lookups=person)
    ctx.roles = found.roles
    return await call_next()


def default_middlewares() -> list[Middleware]:
    return [ignore_bots, dedupe, access]
