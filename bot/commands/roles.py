"""/roles: your role in this chat and where it comes from, and who holds which role here and
in every chat (see `bot.roles`). Open to everybody, so someone refused can see why."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.roles import BUILTIN, EVERYONE, AccessControl, Grant
from bot.router import Router
from cards.roles import GrantRow, RolesView, roles_card

router = Router("roles")


def _row(grant: Grant) -> GrantRow:
    return GrantRow(grant.role, grant.member, "" if grant.source == BUILTIN else grant.source)


@router.command("/roles", roles=(EVERYONE,))
async def show_roles(ctx: HandlerContext, access: AccessControl) -> None:
    """查看你在本群的角色及来源，以及本群和全局的授权。
    Show your role in this chat and where it comes from, and this chat's and the global grants."""
    found = await access.resolve(ctx.user, ctx.chat_id)
    grants = access.grants(ctx.chat_id)
    view = RolesView(
        chat_id=ctx.chat_id,
        role=found.role,
        mine=tuple(_row(g) for g in found.grants),
        here=tuple(_row(g) for g in grants if g.chat_id is not None),
        everywhere=tuple(_row(g) for g in grants if g.chat_id is None),
        failed=found.failed,
        configured=access.configured,
    )
    await ctx.reply_card(roles_card(view, ctx.texts))
