"""Who may decide an approval gate: the rules (from the configuration) and the decider (from
the bot's roles). Pure values, no storage: `workflows.gates` applies them to clicks, and the bot
builds them in one place each (`bot.roles.gate_policy`, `bot.roles.decider`).

    policy = GatePolicy(approvers=("ou_bob",), by_chat={"oc_ops": ("ou_carol",)})
    policy.usual("oc_ops")                                   # ("ou_bob", "ou_carol")
    policy.may_decide(gate_row, Decider("ou_sre", approver=True), "oc_ops")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol


class Gate(Protocol):
    """What a decision needs of a gate (a `storage.models.Approval`)."""

    allowed_approvers: list[object]
    approvers_named: bool


@dataclass(frozen=True)
class Decider:
    """The person clicking, as the bot's roles see them in the gate's chat."""

    open_id: str
    admin: bool = False
    approver: bool = False


@dataclass(frozen=True)
class GatePolicy:
    """Who may decide gates, for how long, and whether requesters may approve their own runs.

    `approvers` (LARKOPS_APPROVERS) and `by_chat` (incidents.approvers_by_chat) are the usual
    approvers; `admins` may decide every gate; `roles_configured`: a `roles:` section exists
    (without one, a chat with no approver and no admin at all lets anyone decide, as before
    roles existed)."""

    ttl: timedelta = timedelta(minutes=30)
    approvers: tuple[str, ...] = ()
    requester_may_approve: bool = False
    by_chat: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    admins: tuple[str, ...] = ()
    roles_configured: bool = False

    def usual(self, chat_id: str | None) -> tuple[str, ...]:
        """The open_ids a gate of this chat names when the policy names nobody."""
        return tuple(dict.fromkeys([*self.approvers, *self.by_chat.get(chat_id or "", ())]))

    def approves(self, decider: Decider, chat_id: str | None) -> bool:
        """An approver of this chat: the approver role here; with no `roles:` section, anyone
        when the chat has no usual approver and there is no admin at all."""
        if decider.approver or decider.admin:
            return True
        return not self.roles_configured and not self.admins and not self.usual(chat_id)

    def may_decide(self, gate: Gate, decider: Decider, chat_id: str | None) -> bool:
        """Named on the gate, an admin, or — when the gate names the chat's usual approvers
        rather than a list of the policy's — an approver of the chat."""
        listed = {str(person) for person in gate.allowed_approvers}
        if decider.open_id in listed or decider.admin:
            return True
        if gate.approvers_named:
            return False
        return self.approves(decider, chat_id)
