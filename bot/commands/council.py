"""Asking the council of models in the chat: /ask [models] <question>."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.errors import UserFacingError
from bot.lark.events import MessageEvent
from bot.router import Router
from cards.council import ask_card, council_view
from plugins.contract import AlertContext
from workflows.llm.council import Council

router = Router("council")
MAX_QUESTION = 300


def _members(ctx: HandlerContext, council: Council, args: str) -> tuple[list[str], str]:
    """The members named by the first word (`gpt,claude`), else all of them; the question."""
    first, _, rest = args.strip().partition(" ")
    names = [name.strip().lower() for name in first.split(",") if name.strip()]
    if rest.strip() and names and any(name in council.names for name in names):
        unknown = [name for name in names if name not in council.names]
        if unknown:
            raise UserFacingError(
                ctx.texts("council.ask.unknown", name=unknown[0], names=", ".join(council.names))
            )
        if len(names) < 2:
            raise UserFacingError(ctx.texts("council.ask.two", names=", ".join(council.names)))
        return names, rest.strip()
    return list(council.names), args.strip()


@router.command("/ask", usage="[model,model…] <question>", roles=("operator",))
async def ask(ctx: HandlerContext, args: str, council: Council) -> None:
    """同时询问多个模型（模型会审），合并它们的回答并显示分歧。
    Ask several models at once (the council) and see their merged answer and disagreements.
    Without `llm.council` the dispatcher answers (`bot.context.OPTIONAL`)."""
    members, question = _members(ctx, council, args)
    if not question:
        raise UserFacingError(ctx.texts("council.ask.usage"))
    question = question[:MAX_QUESTION]
    shown = ask_card(question, members, None, ctx.texts, seconds=council.seconds)
    message_id = await ctx.reply_card(shown)
    key = ctx.event.message_id if isinstance(ctx.event, MessageEvent) else message_id
    verdict = await council.convene(
        key=f"ask:{key}",
        purpose="question",
        alert=AlertContext(question, "info", {}, {}, None),
        members=members,
    )
    view = council_view({**verdict.merged, "members": list(verdict.members)})
    answered = ask_card(
        question,
        members,
        view,
        ctx.texts,
        seconds=council.seconds,
        summary=str(verdict.merged.get("summary", "")),
    )
    await ctx.services.api.patch_card(message_id, answered)
