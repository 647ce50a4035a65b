"""The /roles card: your role in this chat and where it comes from, and the chat's and the
global grants (pure: data in, Card JSON 2.0 out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cards.basics import card, markdown
from cards.markup import fit, inline, mention
from cards.texts import Texts


@dataclass(frozen=True)
class GrantRow:
    """`member` ("ou_…", "dept:<id>", "chat:<id>" or "*" for everybody) holds `role`, as
    configured at `source` (a setting's name, or "" for the built-in default)."""

    role: str
    member: str
    source: str


@dataclass(frozen=True)
class RolesView:
    chat_id: str
    role: str | None  # the caller's highest role here
    mine: tuple[GrantRow, ...]  # the grants that give it
    here: tuple[GrantRow, ...]  # grants of this chat only
    everywhere: tuple[GrantRow, ...]  # grants of every chat
    failed: tuple[str, ...] = ()  # members whose membership could not be looked up
    configured: bool = True  # a `roles:` section exists


def who(member: str, say: Texts) -> str:
    """A member as people read it: a mention, a department, a group's members, everybody."""
    if member == "*":
        return say("roles.everyone")
    if member.startswith("dept:"):
        return say("roles.dept", id=inline(member.removeprefix("dept:"), 64))
    if member.startswith("chat:"):
        return say("roles.group", id=inline(member.removeprefix("chat:"), 64))
    return mention(member)


def _lines(rows: Sequence[GrantRow], say: Texts) -> str:
    if not rows:
        return say("roles.nothing")
    return "\n".join(
        say(
            "roles.line",
            role=say(f"role.{row.role}"),
            who=who(row.member, say),
            source=inline(row.source, 80) if row.source else say("roles.builtin"),
        )
        for row in rows
    )


def roles_card(view: RolesView, say: Texts) -> dict[str, Any]:
    role = say(f"role.{view.role}") if view.role is not None else say("roles.no_role")
    yours = [say("roles.yours", role=role)]
    if view.mine:
        yours += [say("roles.because"), _lines(view.mine, say)]
    if view.failed:
        members = ", ".join(who(member, say) for member in view.failed)
        yours.append(say("roles.lookup_failed", members=members))
    elements = [
        markdown("\n".join(yours)),
        markdown(
            say("roles.here", chat_id=inline(view.chat_id, 64)) + "\n" + _lines(view.here, say)
        ),
        markdown(say("roles.everywhere") + "\n" + _lines(view.everywhere, say)),
        markdown(say("roles.order"), size="notation"),
        markdown(say("roles.note" if view.configured else "roles.note_legacy"), size="notation"),
    ]
    return fit(card(say("roles.title"), elements))
