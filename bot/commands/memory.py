"""Incident memory in the chat: /similar (what looked like this before) and /note (teach it)."""

from __future__ import annotations

from bot.commands.numbers import number_of
from bot.context import HandlerContext
from bot.errors import UserFacingError
from bot.router import Router
from cards.lists import similar_card
from cards.views import SeenBefore
from workflows.memory.recall import IncidentMemory

router = Router("memory")


def _incident_id(ctx: HandlerContext, word: str, command: str) -> int:
    number = number_of(word)
    if number is None:
        raise UserFacingError(ctx.texts("incident.usage_id", command=command))
    return number


@router.command("/similar", usage="<id>", roles=("viewer",))
async def similar(ctx: HandlerContext, args: str, memory: IncidentMemory) -> None:
    """列出与某个事件相似的历史事件及当时的处理方式。
    List past incidents like this one and what fixed them."""
    words = args.split()
    if not words:
        raise UserFacingError(ctx.texts("incident.usage_id", command="/similar"))
    incident_id = _incident_id(ctx, words[0], "/similar")
    found = await memory.similar(incident_id, limit=5)
    rows = [
        SeenBefore(
            incident_id=item.incident_id or 0,
            title=item.title,
            similarity=item.similarity,
            fix=item.fix if item.kind == "incident" else item.snippet,
            outcome=item.outcome if item.kind == "incident" else ctx.texts("memory.note_kind"),
        )
        for item in found
    ]
    await ctx.reply_card(similar_card(incident_id, rows, ctx.texts))


@router.command("/note", usage="<id> <text>", roles=("approver",))
async def note(ctx: HandlerContext, args: str, memory: IncidentMemory) -> None:
    """为事件添加一条经验记录，之后相似事件会看到它。
    Add a note to an incident; similar incidents will show it."""
    words = args.split(maxsplit=1)
    if len(words) < 2:
        raise UserFacingError(ctx.texts("memory.note_usage"))
    incident_id = _incident_id(ctx, words[0], "/note")
    try:
        await memory.add_note(incident_id, ctx.user, words[1], trace_id=ctx.trace_id)
    except LookupError:
        raise UserFacingError(ctx.texts("incident.not_found", id=incident_id)) from None
    except ValueError:
        raise UserFacingError(ctx.texts("memory.note_usage")) from None
    await ctx.reply_text(ctx.texts("memory.noted", id=incident_id))
